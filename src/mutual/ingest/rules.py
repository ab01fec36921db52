"""Data-quality rules, run in bulk over staged cells. Every failure becomes a row in ``issues``; none stops
the others. Severity ``error`` quarantines the value, ``warning`` accepts it flagged.

Input temp tables: ``cells``, ``rate_cells``, ``malformed_lines`` (from a reader; dropped once the cells are
typed) and the reference tables made by ``reference_tables``. Output: temp tables ``issues`` and ``deletions``,
the view ``accepted`` (one row per key) and ``series_dict``, which numbers each series (organisation, metric,
dimensions) the cells can have: the rules that compare cells with each other group and join on that number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa

from mutual.catalog import Catalog
from mutual.catalog.orgs import Org
from mutual.ingest.cells import release_staged
from mutual.ingest.csv_stage import q
from mutual.ingest.specs import Spec, column_maps, norm

# A value this many robust standard deviations from the series' median is flagged as a sudden change.
OUTLIER_Z = 6.0
OUTLIER_MIN_POINTS = 10
# A level unchanged for this many consecutive days is flagged as possibly frozen.
STALE_DAYS = 14
# A number written with thousands separators, such as 1,452 or 12,345.5
THOUSANDS = r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?"
ISSUE_COLUMNS = "sheet, row_num, col, org, metric, dims, period, raw, rule, severity, message"


@dataclass
class Counts:
    rows_read: int
    values_read: int
    accepted: int
    quarantined: int
    warnings: int
    missing: int


def reference_tables(con: duckdb.DuckDBPyConnection, catalog: Catalog, orgs: list[Org], spec: Spec) -> None:
    """Load the catalogue, the organisations and the spec's code maps as small temp tables, and the macro
    ``num`` that writes a number as people do (1452, not 1452.0) in messages."""
    con.execute("CREATE OR REPLACE TEMP MACRO num(v) AS CASE WHEN v = round(v) AND abs(v) < 1e15 "
                "THEN CAST(CAST(v AS BIGINT) AS VARCHAR) ELSE CAST(v AS VARCHAR) END")
    metrics = pa.table({
        "code": [m.code for m in catalog.metrics],
        "is_integer": [m.integer for m in catalog.metrics],
        "lo": [float(m.bounds[0]) for m in catalog.metrics],
        "hi": [float(m.bounds[1]) for m in catalog.metrics],
        "capacity": [m.capacity for m in catalog.metrics],
        "unit": [m.unit for m in catalog.metrics],
        "kind": [str(m.kind) for m in catalog.metrics],
        "changes_daily": [m.changes_daily for m in catalog.metrics],
    })
    metric_keys = {m.code.lower(): m.code for m in catalog.metrics}
    if spec.long:
        metric_keys.update({norm(k): v for k, v in spec.long.metric_map.items()})
    org_keys = {o.code.upper(): o.code for o in orgs}
    org_keys.update({k.strip().upper(): v for k, v in spec.org.codes.items()})
    value_maps = [(m.map_key, label, val) for m in column_maps(spec) for label, val in m.cmap.value_map.items()]
    long_map = spec.long.value_map if spec.long else {}
    tables = {
        "metric_ref": metrics,
        "metric_key": pa.table({"key": list(metric_keys), "code": list(metric_keys.values())}),
        "org_key": pa.table({"key": list(org_keys), "code": list(org_keys.values())}),
        "org_name_key": pa.table({"name": [k.strip().upper() for k in spec.org.names],
                                  "code": list(spec.org.names.values())}),
        "org_ref": pa.table({
            "code": [o.code for o in orgs], "kind": [str(o.kind) for o in orgs],
            "close_date": pa.array([o.close_date for o in orgs], pa.date32()),
            "successor": [o.successor for o in orgs]}),
        "value_maps": pa.table({
            "map_key": [h for h, _, _ in value_maps] + ["value"] * len(long_map),
            "label": [norm(lbl) for _, lbl, _ in value_maps] + [norm(k) for k in long_map],
            "value": pa.array([v for _, _, v in value_maps] + list(long_map.values()), pa.float64())},
            schema=pa.schema([("map_key", pa.string()), ("label", pa.string()), ("value", pa.float64())])),
    }
    for name, table in tables.items():
        con.register(f"_{name}", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _{name}")
        con.unregister(f"_{name}")


def _period_expr(spec: Spec) -> str:
    fmts = "[" + ", ".join(q(f) for f in spec.period.formats) + "]"
    parsed = f"try_strptime(trim(c.period_raw), {fmts})"
    if spec.period.instant_timezone:
        tz = q(spec.period.instant_timezone)
        return (f"CASE WHEN length(trim(c.period_raw)) > 10 "
                f"THEN timezone({tz}, timezone('UTC', {parsed}))::DATE ELSE {parsed}::DATE END")
    return f"{parsed}::DATE"


CELL_RULES: list[tuple[str, str, str]] = [
    # (rule, condition on a non-missing cell, message). t = typed cell, m = its metric, o = its organisation.
    ("unknown_org", "t.org IS NULL",
     "format('organisation {} is not known{}', coalesce(nullif(trim(t.org_raw), ''), "
     "'(blank; name ' || coalesce(t.org_name, 'blank') || ')'), "
     "coalesce((SELECT hint FROM org_hint h WHERE h.org_raw = t.org_raw), ''))"),
    ("closed_org", "o.close_date IS NOT NULL AND t.period > o.close_date",
     "format('{} closed on {}{}; report this value under the organisation that took over', t.org, "
     "o.close_date, CASE WHEN o.successor IS NOT NULL THEN ' (its successor is ' || o.successor || ')' "
     "ELSE '' END)"),
    ("unknown_metric", "t.metric IS NULL",
     "format('metric {} is not in the catalogue (see `mutual catalog`)', coalesce(trim(t.metric_raw), '(blank)'))"),
    ("bad_date", "t.period IS NULL",
     "format('date {} could not be read; expected {}', coalesce(t.period_raw, '(blank)'), $formats)"),
    ("future_date", "t.period > $received",
     "format('date {} is after the file was received ({})', t.period, $received)"),
    ("impossible_date", "t.period < DATE '1990-01-01'",
     "format('date {} is before 1990: check the date format', t.period)"),
    ("not_a_number", "t.value IS NULL",
     "CASE WHEN t.map_key IS NOT NULL "
     "THEN format('{} is neither a number nor one of the answers this column takes ({})', t.t, "
     "(SELECT string_agg(v.label, ', ' ORDER BY v.label) FROM value_maps v WHERE v.map_key = t.map_key)) "
     "WHEN regexp_matches(t.t, '^[+-]?[0-9.,]+\\s*%$') "
     "THEN format('{} is a percentage; this column expects a count of {}', t.t, coalesce(m.unit, 'units')) "
     "ELSE format('{} is not a number', t.t) END"),
    ("not_a_number", "NOT isfinite(t.value)", "format('{} is not a finite number', t.t)"),
    ("not_whole", "m.is_integer AND isfinite(t.value) AND t.value <> round(t.value)",
     "format('{} is not a whole number; {} counts whole {}', t.t, t.metric, m.unit)"),
    ("out_of_bounds", "t.value < m.lo", "format('{} is below the lowest possible value {}', t.t, m.lo)"),
    ("out_of_bounds", "t.value > m.hi AND (o.kind IS NULL OR o.kind IN ('trust', 'site'))",
     "format('{} is above the highest plausible value {} for one trust; check the units', t.t, m.hi)"),
    ("bad_dimension", "bd.problem IS NOT NULL", "format('{} for {}', bd.problem, t.metric)"),
]


# Rules on a value's key; the only ones a withdrawn (deleted) value must pass, since its number is not stored.
KEY_RULES = {"unknown_org", "unknown_metric", "bad_date", "impossible_date", "bad_dimension"}


def _applies(rule: str, cond: str) -> str:
    return cond if rule in KEY_RULES else f"NOT t.deleted AND ({cond})"


# grouping() in ``file_keys``: a 1 bit for each of its six columns that is not in the grouping set
ORG_SET, METRIC_SET = 0b001111, 0b110011


def _keys(con: duckdb.DuckDBPyConnection, spec: Spec) -> None:
    """The file's distinct organisation, metric and date texts, each resolved once into ``org_dict``,
    ``metric_dict`` and ``period_dict``: a ten-million-cell file has a few thousand of them, so code maps, date
    formats and lookups run on those few and the cells only join the answers. One scan of the cells.

    Each organisation and metric carries what the rules need of it as a struct, ``o`` and ``m``, so a cell's
    rules read ``o.close_date`` or ``m.hi`` without a join of their own, and a small number, ``oid`` and ``mid``
    (a metric with its dimensions), from which ``_typed`` gives each cell the number of its series."""
    missing = _missing_list(spec)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE file_keys AS
        SELECT grouping(org_raw, org_name, metric_raw, dims, period_raw, period_end_raw) AS g,
               org_raw, org_name, metric_raw, dims, coalesce(period_raw, period_end_raw) AS period_raw
        FROM cells GROUP BY GROUPING SETS ((org_raw, org_name), (metric_raw, dims), (period_raw), (period_end_raw))""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE org_dict AS
        WITH resolved AS (
            SELECT f.org_raw, f.org_name,
                   CASE WHEN f.org_raw IS NULL OR list_contains({missing}, lower(trim(f.org_raw)))
                        THEN n.code ELSE k.code END AS org
            FROM file_keys f
            LEFT JOIN org_key k ON k.key = upper(trim(f.org_raw))
            LEFT JOIN org_name_key n ON n.name = upper(trim(f.org_name))
            WHERE f.g = {ORG_SET})
        SELECT d.*, {{'kind': o.kind, 'close_date': o.close_date, 'successor': o.successor}} AS o,
               CASE WHEN d.org IS NOT NULL THEN dense_rank() OVER (ORDER BY d.org) END AS oid
        FROM resolved d LEFT JOIN org_ref o ON o.code = d.org""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE metric_dict AS
        WITH resolved AS (
            SELECT f.metric_raw, f.dims, mk.code AS metric FROM file_keys f
            LEFT JOIN metric_key mk ON mk.key = lower(trim(f.metric_raw)) WHERE f.g = {METRIC_SET})
        SELECT d.*, {{'is_integer': m.is_integer, 'lo': m.lo, 'hi': m.hi, 'unit': m.unit}} AS m,
               CASE WHEN d.metric IS NOT NULL THEN dense_rank() OVER (ORDER BY d.metric, d.dims) END AS mid
        FROM resolved d LEFT JOIN metric_ref m ON m.code = d.metric""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE period_dict AS
        SELECT DISTINCT f.period_raw, {_period_expr(spec).replace('c.period_raw', 'f.period_raw')} AS period
        FROM file_keys f WHERE f.g NOT IN ({ORG_SET}, {METRIC_SET}) AND f.period_raw IS NOT NULL""")


def _missing_list(spec: Spec) -> str:
    """The spec's missing-value markers as a SQL list, casefolded and trimmed as cells are compared."""
    return "[" + ", ".join(q(m.strip().casefold()) for m in spec.missing) + "]::VARCHAR[]"


def _typed(con: duckdb.DuckDBPyConnection, spec: Spec, received: date, value_maps: bool) -> None:
    """One pass over the cells: join the resolved codes and dates, parse numbers and evaluate every per-cell rule
    into ``err`` (which rule failed is worked out again for the few failing cells). Each cell with a known
    organisation and metric gets the number of its series (organisation, metric, dimensions): ``series``."""
    mids = con.execute("SELECT coalesce(max(mid), 0) + 1 FROM metric_dict").fetchone()[0]  # type: ignore[index]
    missing = _missing_list(spec)
    any_rule = " OR ".join(f"coalesce({_applies(rule, cond)}, false)" for rule, cond, _ in CELL_RULES)
    # DuckDB's cast skips the spaces around a number; a number with thousands separators is tried only after
    number = (f"coalesce(try_cast(b.raw AS DOUBLE), CASE WHEN contains(b.raw, ',') AND regexp_full_match(trim(b.raw), "
              f"{q(THOUSANDS)}) THEN try_cast(replace(trim(b.raw), ',', '') AS DOUBLE) END)")
    # A marker that reads as a number (say "nan") must be tested on every cell; otherwise only cells that are
    # not numbers can be markers, and the numbers, nearly every cell, skip the text comparison.
    numeric_marker = any(_reads_as_number(m) for m in spec.missing)
    # list_has_any, not list_contains: DuckDB turns the latter into a join that runs on every cell, numbers too
    marker = f"list_has_any({missing}, [lower(trim(b.raw))])"
    is_marker = marker if numeric_marker else f"CASE WHEN b.number IS NULL THEN {marker} ELSE false END"
    mapped_join = ("LEFT JOIN value_maps vm ON vm.map_key = c.map_key AND vm.label = lower(trim(c.raw))"
                   if value_maps else "")
    mapped, mapped_label = ("vm.value", "vm.label") if value_maps else ("NULL::DOUBLE", "NULL::VARCHAR")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE typed AS
        WITH cell AS (
            SELECT c.*, {mapped} AS mapped, {mapped_label} AS mapped_label
            FROM cells c {mapped_join}),
        base AS (SELECT b.*, {number} AS number FROM cell b),
        parsed AS (
            SELECT b.sheet, b.row_num, b.col, b.raw, b.dims, b.org_raw, b.org_name, b.period_raw, b.metric_raw,
                   NOT b.deleted AND (b.raw IS NULL OR {is_marker}
                                      OR (b.mapped_label IS NOT NULL AND b.mapped IS NULL)) AS is_missing,
                   b.deleted, b.map_key, od.org, od.o, md.metric, md.m, od.oid::BIGINT * {mids} + md.mid AS series,
                   pd.period,
                   CASE WHEN b.period_end_raw IS NULL THEN pd.period ELSE pe.period END AS period_end,
                   coalesce(b.mapped, b.number) * b.scale AS value
            FROM base b
            LEFT JOIN org_dict od ON od.org_raw IS NOT DISTINCT FROM b.org_raw
                                 AND od.org_name IS NOT DISTINCT FROM b.org_name
            LEFT JOIN metric_dict md ON md.metric_raw IS NOT DISTINCT FROM b.metric_raw
                                    AND md.dims IS NOT DISTINCT FROM b.dims
            LEFT JOIN period_dict pd ON pd.period_raw = b.period_raw
            LEFT JOIN period_dict pe ON pe.period_raw = b.period_end_raw)
        -- the texts a message quotes are kept, in one list, only for failing cells: the table stays narrow
        SELECT * EXCLUDE (org_raw, org_name, period_raw, metric_raw, map_key),
               CASE WHEN err THEN [org_raw, org_name, period_raw, metric_raw, map_key] END AS texts
        FROM (
            SELECT t.sheet, t.row_num, t.col, t.raw, t.dims, t.org_raw, t.org_name, t.period_raw, t.metric_raw,
                   t.is_missing, t.deleted, t.map_key, t.org, t.metric, t.series, t.period, t.period_end, t.value,
                   NOT t.is_missing AND ({any_rule}) AS err
            FROM parsed t  -- m and o: the struct columns of the cell's metric and organisation
            LEFT JOIN bad_dims bd ON bd.metric = t.metric AND bd.dims = t.dims)""", {"received": received})
    # every series the cells can have, with what the history rules ask of its metric (from the few resolved codes)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE series_dict AS
        SELECT DISTINCT o.oid::BIGINT * {mids} + m.mid AS series, o.org, m.metric, m.dims, r.kind, r.changes_daily
        FROM (SELECT DISTINCT oid, org FROM org_dict WHERE oid IS NOT NULL) o,
             (SELECT DISTINCT mid, metric, dims FROM metric_dict WHERE mid IS NOT NULL) m
        JOIN metric_ref r ON r.code = m.metric""")


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def one_edit_apart(a: str, b: str) -> bool:
    """True when ``b`` is ``a`` with one character changed, added, removed, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def suggest_codes(code: str, known: list[str], in_file: set[str], limit: int = 3) -> list[str]:
    """Known codes one typing slip away from ``code``; codes the same file uses elsewhere come first, since a
    trust mistypes its own code far more often than it reports for a stranger."""
    wanted = code.strip().upper()
    close = [k for k in known if one_edit_apart(wanted, k.upper())]
    return sorted(close, key=lambda k: (k not in in_file, k))[:limit]


def _suggestions(con: duckdb.DuckDBPyConnection, orgs: list[Org]) -> None:
    """A hint for each unknown organisation code: the closest known codes."""
    unknown = [r[0] for r in con.execute(
        "SELECT DISTINCT org_raw FROM org_dict WHERE org_raw IS NOT NULL AND trim(org_raw) <> '' AND "
        "upper(trim(org_raw)) NOT IN (SELECT key FROM org_key) ORDER BY org_raw LIMIT 1000").fetchall()]
    hints = []
    if unknown:
        in_file = {r[0] for r in con.execute(
            "SELECT DISTINCT k.code FROM org_dict c JOIN org_key k ON k.key = upper(trim(c.org_raw))").fetchall()}
        codes = [o.code for o in orgs]
        for code in unknown:
            close = suggest_codes(code, codes, in_file)
            hints.append(f"; did you mean {' or '.join(close)}?" if close else "; check the ODS code, or import "
                         "the organisation with `mutual orgs import`")
    con.register("_hints", pa.table({"org_raw": pa.array(unknown, pa.string()), "hint": pa.array(hints, pa.string())}))
    con.execute("CREATE OR REPLACE TEMP TABLE org_hint AS SELECT * FROM _hints")
    con.unregister("_hints")


def _dimension_check(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
    """Each distinct (metric, dims) pair is checked once against the catalogue, in Python: there are few."""
    bad = []
    pairs = con.execute("SELECT DISTINCT metric, dims FROM metric_dict WHERE metric IS NOT NULL AND dims <> ''")
    for metric, dims in pairs.fetchall():
        allowed = catalog.get(metric).dims
        for kv in dims.split(";"):
            dim, _, value = kv.partition("=")
            if dim not in allowed:
                bad.append((metric, dims, f"{metric} has no dimension {dim!r}"))
                break
            if value not in catalog.dimensions[dim]:
                bad.append((metric, dims, f"{value!r} is not a {dim} (expected one of "
                            + ", ".join(catalog.dimensions[dim]) + ")"))
                break
    con.register("_bad", pa.table({"metric": [b[0] for b in bad], "dims": [b[1] for b in bad],
                                   "problem": [b[2] for b in bad]}, schema=pa.schema(
        [("metric", pa.string()), ("dims", pa.string()), ("problem", pa.string())])))
    con.execute("CREATE OR REPLACE TEMP TABLE bad_dims AS SELECT * FROM _bad")
    con.unregister("_bad")


def _cell_issues(con: duckdb.DuckDBPyConnection, spec: Spec, received: date) -> None:
    """One issue row per failed per-cell rule, for the cells ``_typed`` found failing (run only when some are)."""
    formats = " or ".join(spec.period.formats).replace("%Y", "YYYY").replace("%m", "MM").replace(
        "%d", "DD").replace("%H", "hh").replace("%M", "mm").replace("%S", "ss")
    # the failing cells are few: gathered in one scan, then each rule's message is written from them alone
    con.execute("""CREATE OR REPLACE TEMP TABLE failing AS
                   SELECT * EXCLUDE (texts), texts[1] AS org_raw, texts[2] AS org_name, texts[3] AS period_raw,
                          texts[4] AS metric_raw, texts[5] AS map_key, trim(raw) AS t
                   FROM typed WHERE err""")
    failing = ("failing t LEFT JOIN metric_ref m ON m.code = t.metric LEFT JOIN org_ref o ON o.code = t.org "
               "LEFT JOIN bad_dims bd ON bd.metric = t.metric AND bd.dims = t.dims")
    parts = [
        f"SELECT t.sheet, t.row_num, t.col, t.org, t.metric, t.dims, t.period::VARCHAR, t.raw, '{rule}', 'error', "
        f"{msg} FROM {failing} WHERE coalesce({_applies(rule, cond)}, false)"
        for rule, cond, msg in CELL_RULES]
    con.execute(f"INSERT INTO issues {' UNION ALL '.join(parts)}", {"formats": formats, "received": received})
    con.execute("DROP TABLE failing")


def _read_issues(con: duckdb.DuckDBPyConnection) -> None:
    """The ``issues`` table, begun with the lines and parts the reader could not read at all."""
    con.execute("""CREATE OR REPLACE TEMP TABLE issues (sheet VARCHAR, row_num BIGINT, col VARCHAR, org VARCHAR,
                   metric VARCHAR, dims VARCHAR, period VARCHAR, raw VARCHAR, rule VARCHAR, severity VARCHAR,
                   message VARCHAR)""")
    con.execute("""
        INSERT INTO issues SELECT sheet, row_num, NULL, NULL, NULL, NULL, NULL, line, 'malformed_line', 'error',
               CASE WHEN sheet IS NULL THEN 'this line could not be read as CSV: '
                    ELSE 'this part could not be read: ' END || problem || '; nothing in it was stored'
        FROM malformed_lines""")


def _repeated_keys(con: duckdb.DuckDBPyConnection) -> None:
    """A duplicate (same key, same value) is a warning on every copy but the first; a conflict (same key,
    different values) an error on each."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE repeated AS
        WITH keyed AS (SELECT * FROM typed WHERE NOT err AND NOT is_missing),
             rep AS (SELECT series, period FROM keyed GROUP BY ALL HAVING count(*) > 1)
        SELECT series, period, count(*) AS n,
               count(DISTINCT CASE WHEN deleted THEN 'deleted' ELSE num(value) END) AS nv,
               arg_min((sheet, row_num, col), (row_num, sheet, col)) AS first_cell, min(row_num) AS first_row,
               string_agg(DISTINCT CASE WHEN deleted THEN 'deleted' ELSE num(value) END, ' / '
                          ORDER BY CASE WHEN deleted THEN 'deleted' ELSE num(value) END) AS vals,
               string_agg(row_num::VARCHAR, ', ' ORDER BY row_num) AS rows
        FROM keyed SEMI JOIN rep USING (series, period)
        GROUP BY series, period""")
    con.execute("""
        INSERT INTO issues
        SELECT c.sheet, c.row_num, c.col, c.org, c.metric, c.dims, c.period::VARCHAR, c.raw,
               CASE WHEN r.nv > 1 THEN 'conflict' ELSE 'duplicate' END,
               CASE WHEN r.nv > 1 THEN 'error' ELSE 'warning' END,
               CASE WHEN r.nv > 1
                    THEN format('{} {} on {} is given different values ({}) on lines {}; none was stored: '
                                || 'send one value', c.org, c.metric, c.period, r.vals, r.rows)
                    ELSE format('{} {} on {} repeats line {} with the same value; stored once',
                                c.org, c.metric, c.period, r.first_row) END
        FROM typed c JOIN repeated r USING (series, period)
        WHERE NOT c.err AND NOT c.is_missing AND (r.nv > 1 OR (c.sheet, c.row_num, c.col) <> r.first_cell)""")


# At most this many bits for the quick test of repeated keys (a bit per series and day): 32 MiB
REPEAT_BITS = 1 << 28


def _any_repeated_key(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether any key (organisation, metric, dimensions, date) occurs twice among the clean cells. Usually none
    does; then a bitmap of days per series answers it, far faster than counting the distinct keys of a large file."""
    clean = "FROM typed WHERE NOT err AND NOT is_missing"
    lo, hi, series = con.execute("SELECT min(period), max(period), (SELECT count(*) FROM series_dict) "
                                 "FROM period_dict").fetchone()  # type: ignore[misc]
    if lo is None:
        return False
    if series * ((hi - lo).days + 1) > REPEAT_BITS:
        return bool(con.execute(f"SELECT count(*) > count(DISTINCT (series, period)) {clean}")
                    .fetchone()[0])  # type: ignore[index]
    return bool(con.execute(f"""
        SELECT coalesce(bool_or(n > d), false) FROM (
            SELECT count(*) AS n, bit_count(bitstring_agg(period - $lo::DATE, 0, $span)) AS d {clean}
            GROUP BY series)""", {"lo": lo, "span": (hi - lo).days}).fetchone()[0])  # type: ignore[index]


def _key_issues(con: duckdb.DuckDBPyConnection, repeats: bool) -> None:
    """Duplicates and conflicts across the file's cells, then ``accepted`` and ``deletions``. ``repeats``: some
    key occurs twice among the clean cells (``_any_repeated_key``); only then are the cells compared by key."""
    if repeats:
        _repeated_keys(con)
    # a value repeated in the file is stored once, and a conflicting one not at all
    repeated = """EXISTS (SELECT 1 FROM issues i WHERE i.rule IN ('conflict', 'duplicate') AND i.row_num = t.row_num
                          AND i.col = t.col AND i.sheet IS NOT DISTINCT FROM t.sheet)"""
    # a withdrawn value is an instruction about its key, not a value: the value rules below never see it
    con.execute(f"CREATE OR REPLACE TEMP TABLE deletions AS SELECT t.org, t.metric, t.dims, t.period FROM typed t "
                f"WHERE t.deleted AND NOT t.err AND NOT {repeated}")
    # what is left of ``typed`` is what is accepted: the few other cells are deleted from it rather than the
    # millions of good ones copied out
    con.execute(f"DELETE FROM typed t WHERE t.is_missing OR t.deleted OR t.err OR {repeated}")
    con.execute("CREATE OR REPLACE TEMP VIEW accepted AS SELECT org, metric, dims, period, period_end, value, sheet, "
                "row_num, col, raw, series FROM typed")


def _capacity_issues(con: duckdb.DuckDBPyConnection, catalog: Catalog, present: set[str]) -> None:
    """A value above its capacity metric (occupied above open) is held back; run only for pairs in the file."""
    pairs = [(m.code, m.capacity) for m in catalog.metrics if m.code in present and m.capacity in present]
    if not pairs:
        return
    con.execute(f"""
        INSERT INTO issues
        SELECT o.sheet, o.row_num, o.col, o.org, o.metric, o.dims, o.period::VARCHAR, o.raw, 'over_capacity', 'error',
               format('{{}} {{}} is {{}} but {{}} is {{}}, and it cannot be more; the {{}} value was held back: '
                      || 'check both', o.org, o.metric, num(o.value), cap.metric, num(cap.value), o.metric)
        FROM (SELECT * FROM accepted WHERE metric IN ({", ".join(q(a) for a, _ in pairs)})) o
        JOIN metric_ref m ON m.code = o.metric
        JOIN (SELECT * FROM accepted WHERE metric IN ({", ".join(q(b) for _, b in pairs if b)})) cap
          ON cap.metric = m.capacity AND cap.org = o.org AND cap.dims = o.dims AND cap.period = o.period
        WHERE o.value > cap.value""")
    con.execute("""
        DELETE FROM typed a WHERE EXISTS (SELECT 1 FROM issues i WHERE i.rule = 'over_capacity'
                                             AND i.row_num = a.row_num AND i.col = a.col
                                             AND i.sheet IS NOT DISTINCT FROM a.sheet)""")


def _parts_issues(con: duckdb.DuckDBPyConnection, catalog: Catalog, present: set[str]) -> None:
    """A total that differs from the sum of its parts is accepted with a warning (which one is wrong is unknown)."""
    for m in catalog.metrics:
        if not m.parts or m.code not in present or not set(m.parts) <= present:
            continue
        joins = " ".join(
            f"JOIN accepted p{i} ON p{i}.metric = '{p}' AND p{i}.org = t.org AND p{i}.dims = t.dims "
            f"AND p{i}.period = t.period" for i, p in enumerate(m.parts))
        total = " + ".join(f"p{i}.value" for i in range(len(m.parts)))
        names = " + ".join(m.parts)
        con.execute(f"""
            INSERT INTO issues
            SELECT t.sheet, t.row_num, t.col, t.org, t.metric, t.dims, t.period::VARCHAR, t.raw, 'parts_sum', 'warning',
                   format('{m.code} is {{}} but {names} = {{}}: the total does not equal its parts', num(t.value),
                          num({total}))
            FROM accepted t {joins} WHERE t.metric = '{m.code}' AND t.value <> {total}""")


def _rate_issues(con: duckdb.DuckDBPyConnection) -> None:
    """Reported rates are never stored; each is checked against the rate recomputed from its parts."""
    con.execute("""
        INSERT INTO issues
        SELECT sheet, row_num, col, NULL, NULL, NULL, NULL, raw, 'reported_rate', 'warning',
               format('the reported rate {} does not match {} / {} = {}; rates are recomputed from their parts '
                      || 'and the reported one is not stored', raw, num(n), num(d), round(n / d, 4))
        FROM (SELECT *, try_cast(num_raw AS DOUBLE) AS n, try_cast(den_raw AS DOUBLE) AS d,
                     try_cast(raw AS DOUBLE) AS rate FROM rate_cells)
        WHERE rate IS NOT NULL AND n IS NOT NULL AND d > 0 AND abs(rate - n / d) > 0.0005""")


def history_issues(con: duckdb.DuckDBPyConnection) -> None:
    """Rules that compare a value with its series' past (``history``: series, period, value, staged by the
    store with the series numbers of ``series_dict``)."""
    _outlier_issues(con)
    _stale_issues(con)


def _stale_issues(con: duckdb.DuckDBPyConnection) -> None:
    """A level repeated unchanged for STALE_DAYS days or more looks frozen (a trust re-sending yesterday's
    figure). Only for levels that move daily in a real hospital (occupied beds, patients), of some size, and one
    warning per run, on its latest value in the file."""
    daily = "abs(value) >= 20 AND series IN (SELECT series FROM series_dict WHERE changes_daily)"
    # written out twice below rather than shared, so DuckDB streams it instead of copying millions of wide rows
    pts = f"""(SELECT series, period, value, org, metric, sheet, row_num, col, dims, raw FROM accepted WHERE {daily}
               UNION ALL
               SELECT series, period, value, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM history WHERE {daily})"""
    # a run is made only of days that repeat the day before or after: found first by a join of the series, value
    # and day, so the sort below sees those few days, not the whole file
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE repeats AS
        WITH keyed AS (SELECT series, value, period FROM {pts}),
             pairs AS (SELECT a.series, a.value, a.period FROM keyed a
                       JOIN keyed b ON a.series = b.series AND a.value = b.value AND b.period = a.period - 1)
        SELECT * FROM pairs UNION ALL SELECT series, value, period - 1 FROM pairs""")
    con.execute(f"""
        INSERT INTO issues
        WITH member AS (SELECT p.* FROM {pts} p SEMI JOIN repeats USING (series, value, period)),
        runs AS (
            SELECT p.*, p.period - CAST(row_number() OVER (PARTITION BY p.series, p.value ORDER BY p.period)
                                        AS INTEGER) AS grp
            FROM member p),
        sized AS (
            SELECT *, min(period) OVER run AS since, count(*) OVER run AS days,
                   max(period) FILTER (WHERE row_num IS NOT NULL) OVER run AS last_new
            FROM runs WINDOW run AS (PARTITION BY series, value, grp))
        SELECT sheet, row_num, col, org, metric, dims, period::VARCHAR, raw, 'stale_value', 'warning',
               format('{{}} {{}} has been {{}} every day from {{}} to {{}} ({{}} days): is it still being updated?',
                      org, metric, num(value), since, period, days)
        FROM sized WHERE row_num IS NOT NULL AND days >= {STALE_DAYS} AND period = last_new""")
    con.execute("DROP TABLE repeats")


def _median_of_counts(counts: str, key: str, value: str) -> str:
    """SQL for each ``key``'s median of ``value`` from a table of distinct values and their counts ``c``: a
    series of ten thousand days holds a few hundred distinct levels, so the median is found on those few. As
    ``median``: the middle value, or the mean of the two middle ones."""
    return f"""
        SELECT {key}, (min({value}) FILTER (WHERE below <= (n - 1) // 2 AND (n - 1) // 2 < below + c)
                       + min({value}) FILTER (WHERE below <= n // 2 AND n // 2 < below + c)) / 2 AS med,
               any_value(n) AS n
        FROM (SELECT *, sum(c) OVER (PARTITION BY {key} ORDER BY {value} ROWS UNBOUNDED PRECEDING) - c AS below,
                     sum(c) OVER (PARTITION BY {key}) AS n FROM {counts})
        GROUP BY {key}"""


def _outlier_issues(con: duckdb.DuckDBPyConnection) -> None:
    """A level far from its series' median (robust z-score over the file and the store's recent history).
    Only for point-in-time levels of some size: flows and small counts spike for real."""
    levels = "series IN (SELECT series FROM series_dict WHERE kind = 'point_in_time')"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE level_counts AS
        SELECT series, value, count(*) AS c
        FROM (SELECT series, value FROM accepted WHERE {levels}
              UNION ALL SELECT series, value FROM history WHERE {levels})
        GROUP BY ALL""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE series_stats AS
        WITH med AS ({_median_of_counts('level_counts', 'series', 'value')}),
             dev AS (SELECT series, abs(l.value - m.med) AS d, sum(l.c) AS c
                     FROM level_counts l JOIN med m USING (series)
                     WHERE m.n >= {OUTLIER_MIN_POINTS} AND abs(m.med) >= 20 GROUP BY ALL),
             spread AS ({_median_of_counts('dev', 'series', 'd')})
        -- a robust spread, floored at 5% of the level so a series that never moves is not flagged for an
        -- ordinary change
        SELECT m.series, m.med, greatest(s.med * 1.4826, 0.05 * abs(m.med), 1) AS mad
        FROM med m JOIN spread s USING (series)""")
    # the outlying levels are found among the distinct ones, then the file's cells that carry them
    con.execute(f"""
        INSERT INTO issues
        WITH outlying AS (
            SELECT l.series, l.value, s.med FROM level_counts l JOIN series_stats s USING (series)
            WHERE abs(l.value - s.med) / s.mad > {OUTLIER_Z} AND abs(l.value - s.med) >= 5)
        SELECT a.sheet, a.row_num, a.col, a.org, a.metric, a.dims, a.period::VARCHAR, a.raw, 'sudden_change', 'warning',
               format('{{}} {{}} on {{}} is {{}}, far from its usual level (median {{}}); stored, but please '
                      || 'confirm it', a.org, a.metric, a.period, num(a.value), num(o.med))
        FROM accepted a JOIN outlying o USING (series, value)""")
    con.execute("DROP TABLE level_counts")


def check(con: duckdb.DuckDBPyConnection, spec: Spec, catalog: Catalog, orgs: list[Org], received: date,
          rows_read: int) -> Counts:
    """Run every rule that needs only the file. ``history_issues`` runs after, once the store has staged
    ``history`` for the series in ``accepted``."""
    _keys(con, spec)
    _suggestions(con, orgs)
    _dimension_check(con, catalog)
    _read_issues(con)
    _rate_issues(con)
    value_maps = bool(con.execute("SELECT count(*) FROM value_maps").fetchone()[0])  # type: ignore[index]
    _typed(con, spec, received, value_maps)
    release_staged(con)
    read, missing, failing = con.execute("SELECT count(*) FILTER (NOT is_missing), count(*) FILTER (is_missing), "
                                         "count(*) FILTER (err) FROM typed").fetchone()  # type: ignore[misc]
    if failing:
        _cell_issues(con, spec, received)
    _key_issues(con, repeats=_any_repeated_key(con))
    present = {r[0] for r in con.execute("SELECT DISTINCT metric FROM series_dict WHERE series IN "
                                         "(SELECT DISTINCT series FROM accepted)").fetchall()}
    _capacity_issues(con, catalog, present)
    _parts_issues(con, catalog, present)
    malformed, quarantined, warnings = con.execute("""
        SELECT count(*) FILTER (rule = 'malformed_line'),
               count(DISTINCT (sheet, row_num, col)) FILTER (severity = 'error' AND rule <> 'malformed_line'),
               count(*) FILTER (severity = 'warning') FROM issues""").fetchone()  # type: ignore[misc]
    values_read = read + malformed
    quarantined = quarantined + malformed
    return Counts(rows_read=rows_read, values_read=values_read, accepted=values_read - quarantined,
                  quarantined=quarantined, warnings=warnings, missing=missing)
