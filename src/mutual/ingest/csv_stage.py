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
from dataclasses import dataclass

import duckdb

from mutual.ingest.rawfile import RawFile
from mutual.ingest.specs import ColumnPlan, norm

FIELD = r'"(?:[^"]|"")*"|[^,"]*'
WELL_FORMED = rf"(?:{FIELD})(?:,(?:{FIELD}))*\r?"
FIELDS = r'(?:^|,)("(?:[^"]|"")*"|[^,"]*)'


class EmptyFileError(ValueError):
    pass


def q(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def read_header(text_path: str) -> list[str]:
    """The header row, parsed with Python's csv module from the first 1 MiB."""
    with open(text_path, encoding="utf-8-sig", errors="replace", newline="") as f:
        head = f.read(1 << 20)
    first = head.split("\n", 1)[0]
    if not first.strip():
        raise EmptyFileError("the file is empty or its first line is blank: expected a header row")
    return [h.strip() for h in next(csv.reader(io.StringIO(first)))]


@dataclass
class Staged:
    rows_read: int
    malformed_lines: int
    line_based: bool


def _fast_path(con: duckdb.DuckDBPyConnection, path: str, width: int, raw: RawFile) -> bool:
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    for table in ("raw_records", "csv_reject_errors", "csv_reject_scans"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    try:
        con.execute(f"""
            CREATE TEMP TABLE raw_records AS
            SELECT * FROM read_csv({q(path)}, columns={columns}, header=true, delim=',', quote='"',
                                   escape='"', auto_detect=false, store_rejects=true, strict_mode=true,
                                   rejects_table='csv_reject_errors', rejects_scan='csv_reject_scans',
                                   max_line_size=1048576)""")
    except duckdb.Error:
        return False
    records = con.execute("SELECT count(*) FROM raw_records").fetchone()[0]  # type: ignore[index]
    rejects = con.execute("SELECT count(*) FROM csv_reject_errors").fetchone()[0]  # type: ignore[index]
    return rejects == 0 and records + 1 == raw.lines


def _line_path(con: duckdb.DuckDBPyConnection, path: str, width: int) -> int:
    """Parse line by line; returns the number of malformed lines (staged in ``malformed_lines``)."""
    con.execute("DROP TABLE IF EXISTS raw_records")
    con.execute(f"""
        CREATE TEMP TABLE lines AS
        SELECT row_number() OVER () AS row_num, rtrim(line, chr(13)) AS line
        FROM read_csv({q(path)}, columns={{'line': 'VARCHAR'}}, delim='\\0', quote='', escape='',
                      header=false, auto_detect=false, strict_mode=false, max_line_size=1048576)""")
    con.execute(f"""
        CREATE TEMP TABLE split_lines AS
        SELECT row_num, line,
               CASE WHEN NOT contains(line, '"') THEN string_split(line, ',')
                    WHEN regexp_full_match(line, {q(WELL_FORMED)}) THEN regexp_extract_all(line, {q(FIELDS)}, 1)
               END AS f
        FROM lines WHERE row_num > 1 AND line IS NOT NULL AND trim(line) <> ''""")
    cols = ", ".join(
        f"""CASE WHEN starts_with(f[{i + 1}], '"') THEN replace(f[{i + 1}][2:-2], '""', '"')
                 ELSE nullif(f[{i + 1}], '') END AS c{i}"""
        for i in range(width))
    con.execute(f"CREATE TEMP TABLE raw_records AS SELECT row_num, {cols} FROM split_lines "
                f"WHERE len(f) = {width}")
    con.execute(f"""
        CREATE TEMP TABLE malformed_lines AS
        SELECT row_num, line,
               CASE WHEN f IS NULL THEN 'a quote is not closed, or stands inside a field'
                    ELSE 'expected {width} fields, found ' || len(f) END AS problem
        FROM split_lines WHERE f IS NULL OR len(f) <> {width}""")
    con.execute("DROP TABLE lines")
    con.execute("DROP TABLE split_lines")
    return con.execute("SELECT count(*) FROM malformed_lines").fetchone()[0]  # type: ignore[index]


def stage_csv(con: duckdb.DuckDBPyConnection, text_path: str, raw: RawFile, plan: ColumnPlan,
              org_override: str | None) -> Staged:
    """Create temp tables ``cells`` (one row per value cell), ``rate_cells`` (reported rates) and
    ``malformed_lines`` from the file at ``text_path``."""
    width = len(plan.header)
    line_based = not _fast_path(con, text_path, width, raw)
    if line_based:
        malformed = _line_path(con, text_path, width)
        con.execute("CREATE TEMP VIEW records AS SELECT * FROM raw_records")
    else:
        con.execute("CREATE TEMP VIEW records AS SELECT rowid + 2 AS row_num, * FROM raw_records")
        con.execute("CREATE TEMP TABLE malformed_lines (row_num BIGINT, line VARCHAR, problem VARCHAR)")
        malformed = 0
    rows = con.execute("SELECT count(*) FROM records").fetchone()[0]  # type: ignore[index]

    def col(i: int | None) -> str:
        return "NULL::VARCHAR" if i is None else f"c{i}"

    org = q(org_override) if org_override else col(plan.org)
    common = f"row_num, {org} AS org_raw, {col(plan.org_name)} AS org_name, {col(plan.period)} AS period_raw"
    selects = []
    if plan.spec.layout == "long":
        assert plan.spec.long is not None
        dim_parts = [f"CASE WHEN nullif(trim({col(i)}), '') IS NOT NULL THEN '{d}=' || trim({col(i)}) END"
                     for d, i in sorted(plan.long_dims.items())]
        dims = f"concat_ws(';', {', '.join(dim_parts)})" if dim_parts else "''"
        heading = q(plan.header[plan.long_value or 0])
        selects.append(f"SELECT {common}, {heading} AS col, trim({col(plan.long_metric)}) AS metric_raw, "
                       f"{dims} AS dims, {col(plan.long_value)} AS raw, 1.0::DOUBLE AS scale, "
                       f"{q('value') if plan.spec.long.value_map else 'NULL::VARCHAR'} AS map_key FROM records")
    for v in plan.values:
        selects.append(f"SELECT {common}, {q(v.heading)} AS col, {q(v.metric)} AS metric_raw, "
                       f"{q(v.dims)} AS dims, c{v.index} AS raw, {v.scale}::DOUBLE AS scale, "
                       f"{q(norm(v.heading)) if v.value_map else 'NULL::VARCHAR'} AS map_key FROM records")
    con.execute("CREATE TEMP TABLE cells AS " + " UNION ALL ".join(selects))
    index = {h: i for i, h in enumerate(plan.header)}
    rate_selects = [
        f"SELECT row_num, {q(plan.header[i])} AS col, c{i} AS raw, c{index[num]} AS num_raw, "
        f"c{index[den]} AS den_raw FROM records"
        for i, num, den in plan.derived]
    con.execute("CREATE TEMP TABLE rate_cells AS " + (" UNION ALL ".join(rate_selects) if rate_selects else
                "SELECT NULL::BIGINT AS row_num, NULL::VARCHAR AS col, NULL::VARCHAR AS raw, "
                "NULL::VARCHAR AS num_raw, NULL::VARCHAR AS den_raw WHERE false"))
    con.execute("DROP VIEW records")
    con.execute("DROP TABLE raw_records")
    return Staged(rows_read=rows + malformed, malformed_lines=malformed, line_based=line_based)
