"""Stage a CSV file's cells in DuckDB: one row per value cell, with its line number and heading.

The fast path is DuckDB's parallel CSV reader. It is trusted only when every line of the file became exactly
one record (no rejected lines, no quoted line breaks, no blank lines), because only then are record numbers
line numbers and no valid line can have been swallowed by a broken quote. Otherwise the file is re-read line
by line, so that a damaged line costs only itself: it is quarantined with its text, and every other line
keeps its own number.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mutual.ingest.rawfile import RawFile
from mutual.ingest.specs import ColumnPlan

# Spaces around a quoted field are allowed, as DuckDB's reader (the fast path) allows them: both paths must agree.
FIELD = r' *"(?:[^"]|"")*" *|[^,"]*'
WELL_FORMED = rf"(?:{FIELD})(?:,(?:{FIELD}))*\r?"
FIELDS = r'(?:^|,)( *"(?:[^"]|"")*" *|[^,"]*)'
MAX_LINE = 1 << 20  # bytes: DuckDB reads no longer line
# When a file has a longer line, every line of more than MAX_LINE // 4 characters (at most MAX_LINE bytes of UTF-8
# each) is staged as its first CUT_KEEP characters and a note of its length; such a line is malformed anyway.
CUT_KEEP = 200


# No real return has more columns; a header far wider is damage, and would cost minutes to stage column by column.
MAX_COLUMNS = 4096


class HeaderError(ValueError):
    """A header row that cannot be read: the file is rejected whole (its bytes stay in the archive)."""


class EmptyFileError(HeaderError):
    pass


def q(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def read_header(text_path: str) -> list[str]:
    """The header row, parsed with Python's csv module from the first 1 MiB."""
    with open(text_path, encoding="utf-8-sig", errors="replace", newline="") as f:
        head = f.read(1 << 20)
        more = bool(f.read(1))
    if "\n" not in head and more:
        raise HeaderError("line 1 (the header row) is longer than 1 MiB: expected a header of column names")
    first = head.split("\n", 1)[0].rstrip("\r").replace("\r", "\ufffd")
    if not first.strip():
        raise EmptyFileError("the file is empty or its first line is blank: expected a header row")
    if first.count(",") >= MAX_COLUMNS:
        raise HeaderError(f"line 1 (the header row) has {first.count(',') + 1:,} columns; a return has at most "
                          f"{MAX_COLUMNS:,}: check that this is the right file")
    try:
        names = next(csv.reader(io.StringIO(first)))
    except csv.Error:
        names = first.split(",")
    return [h.strip() for h in names]


@dataclass
class Staged:
    rows_read: int
    malformed_lines: int
    line_based: bool


@contextmanager
def _in_file_order(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Keep records in the file's order while they are read, so a record's position is its line."""
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute("SET preserve_insertion_order = false")


def _fast_path(con: duckdb.DuckDBPyConnection, path: str, width: int, raw: RawFile) -> bool:
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    for table in ("raw_records", "csv_reject_errors", "csv_reject_scans"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    try:
        with _in_file_order(con):
            con.execute(f"""
                CREATE TEMP TABLE raw_records AS
                SELECT * FROM read_csv({q(path)}, columns={columns}, header=true, delim=',', quote='"',
                                       escape='"', auto_detect=false, store_rejects=true, strict_mode=true,
                                       rejects_table='csv_reject_errors', rejects_scan='csv_reject_scans',
                                       max_line_size={MAX_LINE + 2})""")
    except duckdb.Error:
        return False
    records = con.execute("SELECT count(*) FROM raw_records").fetchone()[0]  # type: ignore[index]
    rejects = con.execute("SELECT count(*) FROM csv_reject_errors").fetchone()[0]  # type: ignore[index]
    return rejects == 0 and records + 1 == raw.lines


def _read_lines(con: duckdb.DuckDBPyConnection, path: str) -> None:
    with _in_file_order(con):
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE lines AS
            SELECT row_number() OVER () AS row_num, rtrim(line, chr(13)) AS line
            FROM read_csv({q(path)}, columns={{'line': 'VARCHAR'}}, delim='\\0', quote='', escape='',
                          header=false, auto_detect=false, strict_mode=false, max_line_size={MAX_LINE + 2})""")


def _cut_long_lines(src: str, dst: str) -> None:
    """Copy ``src`` with every line longer than MAX_LINE // 4 characters cut to its start and a note of its
    length, keeping every line in its place. Line by line in Python: only for files that have such a line."""
    limit = MAX_LINE // 4
    with open(src, encoding="utf-8", newline="\n") as inp, open(dst, "w", encoding="utf-8", newline="\n") as out:
        while line := inp.readline(limit):
            if len(line) < limit or line.endswith("\n"):
                out.write(line)
                continue
            length, tail = len(line), line[-1:]
            while rest := inp.readline(limit):
                length, tail = length + len(rest), (tail + rest)[-2:]
                if rest.endswith("\n"):
                    break
            ending = "\r\n" if tail == "\r\n" else "\n" if tail.endswith("\n") else ""
            out.write(f"{line[:CUT_KEEP]}\ufffd... (a line of {length - len(ending)} characters, cut here){ending}")


def _line_path(con: duckdb.DuckDBPyConnection, path: str, width: int) -> int:
    """Parse line by line; returns the number of malformed lines (staged in ``malformed_lines``)."""
    con.execute("DROP TABLE IF EXISTS raw_records")
    try:
        _read_lines(con, path)
    except duckdb.InvalidInputException:
        # a line longer than DuckDB will read: stage a copy with such lines cut short
        spill = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]  # type: ignore[index]
        spill_dir = spill if spill and os.path.isdir(spill) else None
        fd, cut = tempfile.mkstemp(suffix=".csv", prefix="cut-", dir=spill_dir)
        os.close(fd)
        try:
            _cut_long_lines(path, cut)
            _read_lines(con, cut)
        finally:
            Path(cut).unlink(missing_ok=True)
    con.execute(f"""
        CREATE TEMP TABLE split_lines AS
        SELECT row_num, line,
               CASE WHEN NOT contains(line, '"') THEN string_split(line, ',')
                    WHEN regexp_full_match(line, {q(WELL_FORMED)}) THEN regexp_extract_all(line, {q(FIELDS)}, 1)
               END AS f
        FROM lines WHERE row_num > 1 AND line IS NOT NULL AND trim(line) <> ''""")
    cols = ", ".join(
        f"""CASE WHEN starts_with(ltrim(f[{i + 1}], ' '), '"') THEN replace(trim(f[{i + 1}], ' ')[2:-2], '""', '"')
                 ELSE nullif(f[{i + 1}], '') END AS c{i}"""
        for i in range(width))
    con.execute(f"CREATE TEMP TABLE raw_records AS SELECT row_num, {cols} FROM split_lines "
                f"WHERE len(f) = {width}")
    con.execute(f"""
        CREATE TEMP TABLE malformed_lines AS
        SELECT NULL::VARCHAR AS sheet, row_num, line,
               CASE WHEN f IS NULL THEN 'a quote is not closed, or stands inside a field'
                    ELSE 'expected {width} fields, found ' || len(f) END AS problem
        FROM split_lines WHERE f IS NULL OR len(f) <> {width}""")
    con.execute("DROP TABLE lines")
    con.execute("DROP TABLE split_lines")
    return con.execute("SELECT count(*) FROM malformed_lines").fetchone()[0]  # type: ignore[index]


def stage_csv(con: duckdb.DuckDBPyConnection, text_path: str, raw: RawFile, plan: ColumnPlan,
              org_override: str | None) -> Staged:
    """Create temp views ``cells`` (one row per value cell) and ``rate_cells`` (reported rates) over the parsed
    records, and the table ``malformed_lines``, from the file at ``text_path``."""
    width = len(plan.header)
    line_based = not _fast_path(con, text_path, width, raw)
    if line_based:
        malformed = _line_path(con, text_path, width)
        con.execute("CREATE TEMP VIEW records AS SELECT * FROM raw_records")
    else:
        con.execute("CREATE TEMP VIEW records AS SELECT rowid + 2 AS row_num, * FROM raw_records")
        con.execute("CREATE TEMP TABLE malformed_lines (sheet VARCHAR, row_num BIGINT, line VARCHAR, problem VARCHAR)")
        malformed = 0
    rows = con.execute("SELECT count(*) FROM records").fetchone()[0]  # type: ignore[index]

    def col(i: int | None) -> str:
        return "NULL::VARCHAR" if i is None else f"c{i}"

    org = q(org_override) if org_override else col(plan.org)
    common = (f"NULL::VARCHAR AS sheet, row_num, {org} AS org_raw, {col(plan.org_name)} AS org_name, "
              f"{col(plan.period)} AS period_raw, NULL::VARCHAR AS period_end_raw")
    selects = []
    if plan.spec.layout == "long":
        assert plan.spec.long is not None
        dim_parts = [f"CASE WHEN nullif(trim({col(i)}), '') IS NOT NULL THEN '{d}=' || trim({col(i)}) END"
                     for d, i in sorted(plan.long_dims.items())]
        dims = f"concat_ws(';', {', '.join(dim_parts)})" if dim_parts else "''"
        heading = q(plan.header[plan.long_value or 0])
        selects.append(f"SELECT {common}, {heading} AS col, {col(plan.long_metric)} AS metric_raw, "
                       f"{dims} AS dims, {col(plan.long_value)} AS raw, 1.0::DOUBLE AS scale, "
                       f"{q('value') if plan.spec.long.value_map else 'NULL::VARCHAR'} AS map_key, "
                       "false AS deleted FROM records")
    for v in plan.values:
        selects.append(f"SELECT {common}, {q(v.heading)} AS col, {q(v.metric)} AS metric_raw, "
                       f"{q(v.dims)} AS dims, c{v.index} AS raw, {v.scale}::DOUBLE AS scale, "
                       f"{q(v.map_key) if v.value_map else 'NULL::VARCHAR'} AS map_key, "
                       "false AS deleted FROM records")
    # views, not tables: the rules read the cells in one pass, so a copy of a 10-million-row file is not needed
    con.execute("CREATE TEMP VIEW cells AS " + " UNION ALL ".join(selects))
    index = {h: i for i, h in enumerate(plan.header)}
    rate_selects = [
        f"SELECT NULL::VARCHAR AS sheet, row_num, {q(plan.header[i])} AS col, c{i} AS raw, c{index[num]} AS num_raw, "
        f"c{index[den]} AS den_raw FROM records"
        for i, num, den in plan.derived]
    con.execute("CREATE TEMP VIEW rate_cells AS " + (" UNION ALL ".join(rate_selects) if rate_selects else
                "SELECT NULL::VARCHAR AS sheet, NULL::BIGINT AS row_num, NULL::VARCHAR AS col, NULL::VARCHAR AS raw, "
                "NULL::VARCHAR AS num_raw, NULL::VARCHAR AS den_raw WHERE false"))
    return Staged(rows_read=rows + malformed, malformed_lines=malformed, line_based=line_based)
