"""Data-quality rules, run in bulk over staged cells. Every failure becomes a row in ``issues``; none stops
the others. Severity ``error`` quarantines the value, ``warning`` accepts it flagged.

Input temp tables: ``cells``, ``rate_cells``, ``malformed_lines`` (from a reader) and the reference tables
made by ``reference_tables``. Output temp tables: ``issues`` and ``accepted`` (one row per key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa

from mutual.catalog import Catalog
from mutual.catalog.orgs import Org
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
     "format('metric {} is not in the catalogue (see `mutual catalog`)', coalesce(t.metric_raw, '(blank)'))"),
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


def _typed(con: duckdb.DuckDBPyConnection, spec: Spec, received: date) -> None:
    """One pass over the cells: resolve codes, parse dates and numbers, evaluate every per-cell rule into ``err``
    (which rule failed is worked out again for the few failing cells), and hash the key into ``k``."""
    missing = "(" + ", ".join(q(m.strip().casefold()) for m in spec.missing) + ")"
    any_rule = " OR ".join(f"coalesce({_applies(rule, cond)}, false)" for rule, cond, _ in CELL_RULES)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE typed AS
        WITH base AS (
            SELECT c.*, trim(c.raw) AS t, vm.value AS mapped,
                   NOT c.deleted AND (c.raw IS NULL OR lower(trim(c.raw)) IN {missing}
                                      OR (vm.label IS NOT NULL AND vm.value IS NULL)) AS is_missing,
                   c.org_raw IS NULL OR lower(trim(c.org_raw)) IN {missing} AS org_blank
            FROM cells c
            LEFT JOIN value_maps vm ON vm.map_key = c.map_key AND vm.label = lower(trim(c.raw))),
        parsed AS (
            SELECT b.sheet, b.row_num, b.col, b.raw, b.dims, b.org_raw, b.org_name, b.period_raw, b.metric_raw,
                   b.is_missing, b.t, b.deleted, b.period_end_raw, b.map_key,
                   CASE WHEN b.org_blank THEN n.code ELSE k.code END AS org,
                   mk.code AS metric,
                   {_period_expr(spec).replace('c.period_raw', 'b.period_raw')} AS period,
                   {_period_expr(spec).replace('c.period_raw', 'b.period_end_raw')} AS period_end,
                   coalesce(b.mapped, try_cast(
                       CASE WHEN contains(b.t, ',') AND regexp_full_match(b.t, {q(THOUSANDS)})
                            THEN replace(b.t, ',', '') ELSE b.t END AS DOUBLE)) * b.scale AS value
            FROM base b
            LEFT JOIN org_key k ON k.key = upper(trim(b.org_raw))
            LEFT JOIN org_name_key n ON b.org_blank AND n.name = upper(trim(b.org_name))
            LEFT JOIN metric_key mk ON mk.key = lower(trim(b.metric_raw)))
        -- the text a message quotes is kept only for failing cells: the table stays narrow for large files
        SELECT * REPLACE (CASE WHEN err THEN org_raw END AS org_raw, CASE WHEN err THEN org_name END AS org_name,
                          CASE WHEN err THEN period_raw END AS period_raw,
                          CASE WHEN err THEN metric_raw END AS metric_raw, CASE WHEN err THEN map_key END AS map_key)
        FROM (
            SELECT t.sheet, t.row_num, t.col, t.raw, t.dims, t.org_raw, t.org_name, t.period_raw, t.metric_raw,
                   t.is_missing, t.deleted, t.map_key, t.org, t.metric, t.period,
                   CASE WHEN t.period_end_raw IS NULL THEN t.period ELSE t.period_end END AS period_end, t.value,
                   NOT t.is_missing AND ({any_rule}) AS err,
                   hash(t.org, t.metric, t.dims, t.period) AS k
            FROM parsed t
            LEFT JOIN metric_ref m ON m.code = t.metric
            LEFT JOIN org_ref o ON o.code = t.org
            LEFT JOIN bad_dims bd ON bd.metric = t.metric AND bd.dims = t.dims)""", {"received": received})


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
        "SELECT DISTINCT org_raw FROM cells WHERE org_raw IS NOT NULL AND trim(org_raw) <> '' AND "
        "upper(trim(org_raw)) NOT IN (SELECT key FROM org_key) LIMIT 1000").fetchall()]
    hints = []
    if unknown:
        in_file = {r[0] for r in con.execute(
            "SELECT DISTINCT k.code FROM (SELECT DISTINCT org_raw FROM cells) c "
            "JOIN org_key k ON k.key = upper(trim(c.org_raw))").fetchall()}
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
    pairs = con.execute("SELECT DISTINCT mk.code, c.dims FROM cells c JOIN metric_key mk "
                        "ON mk.key = lower(trim(c.metric_raw)) WHERE c.dims <> ''")
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
    """One issue row per failed per-cell rule, from the flags ``_typed`` computed."""
    formats = " or ".join(spec.period.formats).replace("%Y", "YYYY").replace("%m", "MM").replace(
        "%d", "DD").replace("%H", "hh").replace("%M", "mm").replace("%S", "ss")
    # the failing cells are few: gathered in one scan, then each rule's message is written from them alone
    con.execute("CREATE OR REPLACE TEMP TABLE failing AS SELECT *, trim(raw) AS t FROM typed WHERE err")
    failing = ("failing t LEFT JOIN metric_ref m ON m.code = t.metric LEFT JOIN org_ref o ON o.code = t.org "
               "LEFT JOIN bad_dims bd ON bd.metric = t.metric AND bd.dims = t.dims")
    parts = [
        f"SELECT t.sheet, t.row_num, t.col, t.org, t.metric, t.dims, t.period::VARCHAR, t.raw, '{rule}', 'error', "
        f"{msg} FROM {failing} WHERE coalesce({_applies(rule, cond)}, false)"
        for rule, cond, msg in CELL_RULES]
    con.execute("""CREATE OR REPLACE TEMP TABLE issues (sheet VARCHAR, row_num BIGINT, col VARCHAR, org VARCHAR,
                   metric VARCHAR, dims VARCHAR, period VARCHAR, raw VARCHAR, rule VARCHAR, severity VARCHAR,
                   message VARCHAR)""")
    if con.execute("SELECT count(*) FROM failing").fetchone()[0]:  # type: ignore[index]
        con.execute(f"INSERT INTO issues {' UNION ALL '.join(parts)}", {"formats": formats, "received": received})
    con.execute("DROP TABLE failing")
    con.execute("""
        INSERT INTO issues SELECT sheet, row_num, NULL, NULL, NULL, NULL, NULL, line, 'malformed_line', 'error',
               CASE WHEN sheet IS NULL THEN 'this line could not be read as CSV: '
                    ELSE 'this part could not be read: ' END || problem || '; nothing in it was stored'
        FROM malformed_lines""")


def _key_issues(con: duckdb.DuckDBPyConnection) -> None:
    """Checks across cells of the file: duplicates, conflicts, and a value above its capacity.

    Repeated keys are found by a hash of the key first (one cheap aggregate), then compared exactly."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE repeated AS
        WITH rep AS (SELECT k FROM typed WHERE NOT err AND NOT is_missing GROUP BY k HAVING count(*) > 1)
        SELECT org, metric, dims, period, count(*) AS n,
               count(DISTINCT CASE WHEN deleted THEN 'deleted' ELSE num(value) END) AS nv,
               arg_min((sheet, row_num, col), (row_num, sheet, col)) AS first_cell, min(row_num) AS first_row,
               string_agg(DISTINCT CASE WHEN deleted THEN 'deleted' ELSE num(value) END, ' / '
                          ORDER BY CASE WHEN deleted THEN 'deleted' ELSE num(value) END) AS vals,
               string_agg(row_num::VARCHAR, ', ' ORDER BY row_num) AS rows
        FROM typed WHERE NOT err AND NOT is_missing AND k IN (SELECT k FROM rep)
        GROUP BY org, metric, dims, period HAVING count(*) > 1""")
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
        FROM typed c JOIN repeated r USING (org, metric, dims, period)
        WHERE NOT c.err AND NOT c.is_missing AND (r.nv > 1 OR (c.sheet, c.row_num, c.col) <> r.first_cell)""")
    # a value repeated in the file is stored once, and a conflicting one not at all
    kept = """NOT t.err AND NOT EXISTS (
        SELECT 1 FROM issues i WHERE i.rule IN ('conflict', 'duplicate') AND i.row_num = t.row_num
        AND i.col = t.col AND i.sheet IS NOT DISTINCT FROM t.sheet)"""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE accepted AS
        SELECT t.org, t.metric, t.dims, t.period, t.period_end, t.value, t.sheet, t.row_num, t.col, t.raw
        FROM typed t WHERE NOT t.is_missing AND NOT t.deleted AND {kept}""")
    # a withdrawn value is an instruction about its key, not a value: the value rules below never see it
    con.execute(f"CREATE OR REPLACE TEMP TABLE deletions AS SELECT t.org, t.metric, t.dims, t.period FROM typed t "
                f"WHERE t.deleted AND {kept}")


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
        DELETE FROM accepted a WHERE EXISTS (SELECT 1 FROM issues i WHERE i.rule = 'over_capacity'
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
    """Rules that compare a value with its series' past (``history`` staged by the store)."""
    _outlier_issues(con)
    _stale_issues(con)


def _stale_issues(con: duckdb.DuckDBPyConnection) -> None:
    """A level repeated unchanged for STALE_DAYS days or more looks frozen (a trust re-sending yesterday's
    figure). Only for levels that move daily in a real hospital (occupied beds, patients), of some size, and one
    warning per run, on its latest value in the file."""
    con.execute(f"""
        INSERT INTO issues
        WITH pts AS (
            SELECT a.org, a.metric, a.dims, a.period, a.value, a.sheet, a.row_num, a.col, a.raw FROM accepted a
            WHERE abs(a.value) >= 20 AND a.metric IN (SELECT code FROM metric_ref WHERE changes_daily)
            UNION ALL
            SELECT h.org, h.metric, h.dims, h.period, h.value, NULL, NULL, NULL, NULL FROM history h
            WHERE abs(h.value) >= 20 AND h.metric IN (SELECT code FROM metric_ref WHERE changes_daily)),
        -- a run is made only of days that repeat the day before or after: found by a hash join, so the sort
        -- below sees those few days, not the whole file
        pairs AS (
            SELECT a.org, a.metric, a.dims, a.value, a.period FROM pts a
            JOIN pts b ON a.org = b.org AND a.metric = b.metric AND a.dims = b.dims AND a.value = b.value
                      AND b.period = a.period - 1),
        member AS (
            SELECT p.* FROM pts p SEMI JOIN (SELECT org, metric, dims, value, period FROM pairs UNION ALL
                                             SELECT org, metric, dims, value, period - 1 FROM pairs) m
                                  USING (org, metric, dims, value, period)),
        runs AS (
            SELECT p.*, p.period - CAST(row_number() OVER (PARTITION BY p.org, p.metric, p.dims, p.value
                                                        ORDER BY p.period) AS INTEGER) AS grp
            FROM member p),
        sized AS (
            SELECT *, min(period) OVER run AS since, count(*) OVER run AS days,
                   max(period) FILTER (WHERE row_num IS NOT NULL) OVER run AS last_new
            FROM runs WINDOW run AS (PARTITION BY org, metric, dims, value, grp))
        SELECT sheet, row_num, col, org, metric, dims, period::VARCHAR, raw, 'stale_value', 'warning',
               format('{{}} {{}} has been {{}} every day from {{}} to {{}} ({{}} days): is it still being updated?',
                      org, metric, num(value), since, period, days)
        FROM sized WHERE row_num IS NOT NULL AND days >= {STALE_DAYS} AND period = last_new""")


def _outlier_issues(con: duckdb.DuckDBPyConnection) -> None:
    """A level far from its series' median (robust z-score over the file and the store's recent history).
    Only for point-in-time levels of some size: flows and small counts spike for real."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE series_stats AS
        WITH pts AS (SELECT org, metric, dims, value FROM accepted
                     UNION ALL SELECT org, metric, dims, value FROM history),
             med AS (SELECT org, metric, dims, median(value) AS med, count(*) AS n FROM pts
                     GROUP BY ALL HAVING count(*) >= {OUTLIER_MIN_POINTS})
        SELECT med.org, med.metric, med.dims, med.med,
               -- a robust spread, floored at 5% of the level so a series that never moves is not flagged for
               -- an ordinary change
               greatest(median(abs(p.value - med.med)) * 1.4826, 0.05 * abs(med.med), 1) AS mad
        FROM pts p JOIN med USING (org, metric, dims) GROUP BY med.org, med.metric, med.dims, med.med""")
    con.execute(f"""
        INSERT INTO issues
        SELECT a.sheet, a.row_num, a.col, a.org, a.metric, a.dims, a.period::VARCHAR, a.raw, 'sudden_change', 'warning',
               format('{{}} {{}} on {{}} is {{}}, far from its usual level (median {{}}); stored, but please '
                      || 'confirm it', a.org, a.metric, a.period, num(a.value), num(s.med))
        FROM accepted a JOIN series_stats s USING (org, metric, dims) JOIN metric_ref m ON m.code = a.metric
        WHERE m.kind = 'point_in_time' AND abs(s.med) >= 20 AND abs(a.value - s.med) / s.mad > {OUTLIER_Z}
          AND abs(a.value - s.med) >= 5""")


def check(con: duckdb.DuckDBPyConnection, spec: Spec, catalog: Catalog, orgs: list[Org], received: date,
          rows_read: int) -> Counts:
    """Run every rule that needs only the file. ``history_issues`` runs after, once the store has staged
    ``history`` for the series in ``accepted``."""
    _suggestions(con, orgs)
    _dimension_check(con, catalog)
    _typed(con, spec, received)
    _cell_issues(con, spec, received)
    _key_issues(con)
    present = {r[0] for r in con.execute("SELECT DISTINCT metric FROM accepted").fetchall()}
    _capacity_issues(con, catalog, present)
    _parts_issues(con, catalog, present)
    _rate_issues(con)
    read, missing = con.execute(
        "SELECT count(*) FILTER (NOT is_missing), count(*) FILTER (is_missing) FROM typed").fetchone()  # type: ignore[misc]
    malformed, quarantined, warnings = con.execute("""
        SELECT count(*) FILTER (rule = 'malformed_line'),
               count(DISTINCT (sheet, row_num, col)) FILTER (severity = 'error' AND rule <> 'malformed_line'),
               count(*) FILTER (severity = 'warning') FROM issues""").fetchone()  # type: ignore[misc]
    values_read = read + malformed
    quarantined = quarantined + malformed
    return Counts(rows_read=rows_read, values_read=values_read, accepted=values_read - quarantined,
                  quarantined=quarantined, warnings=warnings, missing=missing)
