"""Ingest benchmark: Mutual's full ingest against DuckDB's bare CSV -> Parquet copy of the same file.

    uv run python benchmarks/ingest.py --rows 10000000

Generates an N-row long-format CSV (org, metric, date, value; about 0.1% bad rows), then times in the same run
(1) DuckDB ``read_csv`` -> Parquet, the baseline, (2) ``mutual ingest`` into a fresh workspace, and (3) the floor:
the rows read in file order and written to a DuckDB table with the observation's columns, with no checks, which
bounds what any ingest into this store can reach. Each runs in its own process so peak memory is measured per
side. ``--corrected`` also times a corrected copy ingested over the first, the path a resubmission takes.
Last line: ``ingest_ratio <baseline_seconds / mutual_seconds>``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from side import PEAK, run

ORGS = 150


def generate(path: Path, rows: int) -> None:
    """Write the CSV with DuckDB itself (fast, deterministic): trusts x metrics x days, 1 in 1000 rows bad."""
    metrics = ["ga_beds_open", "cc_adult_beds_open", "covid_patients_in_hospital", "ventilators_total",
               "beds_total", "icu_beds_open", "long_stay_patients_7d", "covid_admissions"]
    metric_list = "[" + ", ".join(f"'{m}'" for m in metrics) + "]"
    days_needed = rows // (ORGS * len(metrics)) + 1
    duckdb.sql(f"""
        COPY (
            SELECT 'T' || lpad((i % {ORGS})::VARCHAR, 3, '0') AS org,
                   {metric_list}[(i // {ORGS}) % {len(metrics)} + 1] AS metric,
                   (DATE '2000-01-01' + ((i // {ORGS * len(metrics)}) % {days_needed})::INTEGER)::VARCHAR AS date,
                   CASE WHEN i % 1000 = 999 THEN 'n/k' ELSE (hash(i) % 400 + 10)::VARCHAR END AS value
            FROM range({rows}) t(i)
        ) TO '{path}' (HEADER, DELIMITER ',')""")


def orgs_file(path: Path) -> None:
    lines = ["code,name,kind,parent,lat,lon"] + [f"T{i:03d},Trust {i},trust,Y56,," for i in range(ORGS)]
    path.write_text("\n".join(lines) + "\n")


BASELINE = f"""
import duckdb, sys, time
t = time.perf_counter()
duckdb.sql(f"COPY (SELECT * FROM read_csv('{{sys.argv[1]}}')) TO '{{sys.argv[2]}}' (FORMAT parquet)")
print(time.perf_counter() - t, {PEAK})
"""

# What storing the rows costs on this store with no checks at all: the file read in its order (for line numbers)
# and written to a DuckDB table with the observation's columns. Mutual's ingest cannot be faster than this.
FLOOR = f"""
import duckdb, sys, time
from mutual.store.base import MEMORY_LIMIT
from mutual.store.schema import ddl
con = duckdb.connect(sys.argv[2])
con.execute(f"SET memory_limit = '{{MEMORY_LIMIT}}'")
con.execute(ddl("observation"))
t = time.perf_counter()
con.execute("SET preserve_insertion_order = true")
con.execute(f"CREATE TEMP TABLE r AS SELECT * FROM read_csv('{{sys.argv[1]}}', all_varchar = true)")
con.execute("SET preserve_insertion_order = false")
con.execute(\"\"\"
    INSERT INTO observation
    SELECT org, metric, '', date::DATE, date::DATE, v, 1, NULL, line, 'value', false, TIMESTAMP '2030-01-01', NULL
    FROM (SELECT *, rowid + 2 AS line, try_cast(value AS DOUBLE) AS v FROM r) WHERE v IS NOT NULL\"\"\")
print(time.perf_counter() - t, {PEAK})
"""

MUTUAL = f"""
import sys, time
from pathlib import Path
from datetime import datetime
from mutual.app import open_mutual
with open_mutual(Path(sys.argv[2]), create=True) as m:
    m.import_orgs(Path(sys.argv[3]))
    t = time.perf_counter()
    r = m.ingest(Path(sys.argv[1]), received_at=datetime(2030, 1, 1))
    elapsed = time.perf_counter() - t
    s = r.submission
    assert s.values_read == s.accepted + s.quarantined, "counts do not add up"
    peak, again = {PEAK}, 0.0
    if len(sys.argv) > 4:  # a corrected copy, over the first
        t = time.perf_counter()
        c = m.ingest(Path(sys.argv[4]), received_at=datetime(2030, 1, 2)).submission
        again = time.perf_counter() - t
        assert c.values_read == c.accepted + c.quarantined, "counts do not add up"
print(elapsed, peak, s.rows_read, s.accepted, s.quarantined, again, {PEAK})
"""


def corrected(src: Path, dst: Path) -> None:
    """A corrected copy of the file: about 1% of its values changed and the unreadable ones now numbers."""
    duckdb.sql(f"""
        COPY (SELECT org, metric, date,
                     CASE WHEN value = 'n/k' THEN '55'
                          WHEN hash(org, metric, date) % 100 = 0 THEN (value::INTEGER + 1)::VARCHAR
                          ELSE value END AS value
              FROM read_csv('{src}', all_varchar = true)) TO '{dst}' (HEADER, DELIMITER ',')""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--corrected", action="store_true",
                        help="also time a corrected copy (1%% of values changed) ingested over the first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mutual-bench-") as tmp:
        d = Path(tmp)
        csv = d / "long.csv"
        t = time.perf_counter()
        generate(csv, args.rows)
        orgs_file(d / "orgs.csv")
        print(f"generated {args.rows:,} rows ({csv.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
        extra = []
        if args.corrected:
            corrected(csv, d / "corrected.csv")
            extra = [str(d / "corrected.csv")]
        base_s, base_kb = run(BASELINE, str(csv), str(d / "copy.parquet"))
        mut_s, mut_kb, rows, accepted, quarantined, again_s, again_kb = run(
            MUTUAL, str(csv), str(d / "ws"), str(d / "orgs.csv"), *extra)
        floor_s, floor_kb = run(FLOOR, str(csv), str(d / "floor.duckdb"))
    base, mut, floor = float(base_s), float(mut_s), float(floor_s)
    print(f"baseline duckdb read_csv -> parquet: {base:.2f} s, peak RSS {int(base_kb) / 1024:.0f} MiB")
    print(f"floor (read in file order, store the observation's columns, no checks): {floor:.2f} s, "
          f"peak RSS {int(floor_kb) / 1024:.0f} MiB; the ratio cannot exceed {base / floor:.3f} on this store")
    print(f"mutual ingest (archive, validate, harmonise, lineage, store): {mut:.2f} s, "
          f"peak RSS {int(mut_kb) / 1024:.0f} MiB; {int(rows):,} rows, {int(accepted):,} accepted, "
          f"{int(quarantined):,} quarantined")
    print(f"throughput: {int(rows) / mut / 1e6:.2f} M rows/s")
    if args.corrected:
        print(f"corrected copy ingested over the first (compared with the stored values): {float(again_s):.2f} s, "
              f"peak RSS {int(again_kb) / 1024:.0f} MiB")
    print(f"ingest_ratio {base / mut:.3f}")


if __name__ == "__main__":
    main()
