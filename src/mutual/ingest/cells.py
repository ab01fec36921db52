"""What every reader hands to the quality rules: the file's value cells, one row each, with where they came from.

A reader turns one format (CSV, a spreadsheet, FHIR, DHIS2) into a ``Read``: the cells as raw text, exactly as
the file gave them (the rules parse, map and check them, so every format gets the same checks and messages), the
lines or entries that could not be read at all, reported rates to check, and the ``Spec`` that says how to read
the raw text (missing-value markers, date formats, code maps). Readers never decide what is valid.

Lineage: ``sheet`` (a worksheet, a FHIR resource id or a DHIS2 file part; NULL for a plain CSV), ``row_num``
(the line, spreadsheet row or entry number, from 1) and ``col`` (the column heading or FHIR path). The pair
``(sheet, row_num, col)`` names one cell and is unique within a submission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from mutual.catalog import Catalog
from mutual.catalog.orgs import Org
from mutual.ingest.rawfile import RawFile
from mutual.ingest.specs import Spec

CELL_SCHEMA = pa.schema([
    ("sheet", pa.string()),
    ("row_num", pa.int64()),
    ("org_raw", pa.string()),       # organisation code as written (mapped through the spec and the org table)
    ("org_name", pa.string()),      # organisation name, used when the code is blank
    ("period_raw", pa.string()),    # date as written, read with the spec's period formats
    ("period_end_raw", pa.string()),  # last day of a longer period (a DHIS2 week or month); NULL: same day
    ("col", pa.string()),
    ("metric_raw", pa.string()),    # a catalogue code, or a name the spec's metric map knows
    ("dims", pa.string()),          # canonical ``k=v;k=v`` ('' when none)
    ("raw", pa.string()),           # the value as written; NULL when the cell is empty
    ("scale", pa.float64()),
    ("map_key", pa.string()),       # which value map applies (NULL: none)
    ("deleted", pa.bool_()),        # the sender withdrew this value (DHIS2 ``deleted``): it is superseded, no new one
])

MALFORMED_SCHEMA = pa.schema([
    ("sheet", pa.string()),
    ("row_num", pa.int64()),
    ("line", pa.string()),          # the unreadable text, kept so nothing is lost
    ("problem", pa.string()),       # why it could not be read, in words
])

RATE_SCHEMA = pa.schema([
    ("sheet", pa.string()),
    ("row_num", pa.int64()),
    ("col", pa.string()),
    ("raw", pa.string()),
    ("num_raw", pa.string()),
    ("den_raw", pa.string()),
])


class ReadError(ValueError):
    """A file rejected as a whole: not the format it claims, a layout its spec does not describe, unreadable.
    The message names the file's part (sheet, header row, JSON path) and says what was expected."""


@dataclass(frozen=True)
class ReadContext:
    """What a reader may use: the archived file (never modified), the caller's options and the reference data."""

    raw: RawFile            # raw.path is the archived copy; raw.sha256, raw.size, raw.utf8 ...
    filename: str           # the name the file was sent under (for messages)
    spec_name: str | None   # --spec given by the caller (a name or a path), else None
    org: str | None         # --org given by the caller: whose data this is, else None
    catalog: Catalog
    orgs: tuple[Org, ...]
    tmp_dir: Path           # scratch space for large intermediate files


@dataclass
class Read:
    """One file, read: its cells and everything else the rules need."""

    spec: Spec
    cells: pa.Table
    rows_read: int
    malformed: pa.Table = field(default_factory=lambda: MALFORMED_SCHEMA.empty_table())
    rates: pa.Table = field(default_factory=lambda: RATE_SCHEMA.empty_table())
    file_issues: list[tuple[str, str]] = field(default_factory=list)  # (rule, message) warnings about the file
    recognised: int = 0  # non-value cells recognised and deliberately not read (notes, labels, footnotes)


# JSON can escape half of a UTF-16 pair on its own; Arrow cannot hold it. It becomes U+FFFD, as undecodable bytes do.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(value: object) -> object:
    return _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def _from_rows(rows: list[dict[str, object]], schema: pa.Schema) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except UnicodeEncodeError:
        return pa.Table.from_pylist([{k: _clean(v) for k, v in r.items()} for r in rows], schema=schema)


def record_batch(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Column lists as one Arrow batch, text made safe as in ``cells_table``."""
    try:
        return pa.RecordBatch.from_pydict(columns, schema=schema)
    except UnicodeEncodeError:
        return pa.RecordBatch.from_pydict({k: [_clean(v) for v in vs] for k, vs in columns.items()}, schema=schema)


def cells_table(rows: list[dict[str, object]]) -> pa.Table:
    """Cells from Python dicts (keys of CELL_SCHEMA; missing keys are NULL, ``scale`` defaults to 1)."""
    return _from_rows([{"scale": 1.0, "dims": "", "deleted": False, **r} for r in rows], CELL_SCHEMA)


def malformed_table(rows: list[dict[str, object]]) -> pa.Table:
    return _from_rows(rows, MALFORMED_SCHEMA)


def rates_table(rows: list[dict[str, object]]) -> pa.Table:
    return _from_rows(rows, RATE_SCHEMA)


def stage_read(con: duckdb.DuckDBPyConnection, read: Read) -> None:
    """Create the temp tables ``cells``, ``rate_cells`` and ``malformed_lines`` the rules read."""
    for name, table, schema in (("cells", read.cells, CELL_SCHEMA), ("rate_cells", read.rates, RATE_SCHEMA),
                                ("malformed_lines", read.malformed, MALFORMED_SCHEMA)):
        con.register(f"_{name}", table.select(schema.names).cast(schema))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _{name}")
        con.unregister(f"_{name}")


def release_staged(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the staged ``cells``, ``rate_cells`` and ``malformed_lines``, and the records a CSV's views over them
    read (``csv_stage``): so another part can be staged on the same connection, and, once the rules have typed
    the cells, so a large file's copy is freed for the checks that follow rather than spilled to disk."""
    kinds = dict(con.execute("SELECT view_name, 'VIEW' FROM duckdb_views() WHERE temporary UNION ALL "
                             "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE temporary").fetchall())
    for name in ("cells", "rate_cells", "records", "malformed_lines", "raw_records"):  # views before their tables
        if name in kinds:
            con.execute(f"DROP {kinds[name]} {name}")
