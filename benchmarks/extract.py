"""Record-level extract benchmark: opt-out removal, minimisation, generalisation and pseudonymisation of N
synthetic episodes, against DuckDB's bare scan-and-copy of the same Parquet file in the same run.

    uv run python benchmarks/extract.py --rows 10000000

Generates N admitted-patient-care episodes (``governance.episodes``) into Parquet with 1 % of patients opted out,
then times (1) the baseline, ``COPY (SELECT * FROM read_parquet(…)) TO …`` (every column read and written once),
and (2) ``governance.deidentify.extract`` of every field to Parquet, each in its own process so peak memory is
measured per side. Last line: ``extract_seconds_10m <s>``, the extract's seconds, scaled linearly to ten million
episodes when N is not ten million (said so above it). Target: under 30 s for ten million episodes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

from side import PEAK, run

TEN_MILLION = 10_000_000

BASELINE = f"""
import duckdb, sys, time
t = time.perf_counter()
duckdb.sql(f"COPY (SELECT * FROM read_parquet('{{sys.argv[1]}}')) TO '{{sys.argv[2]}}' (FORMAT parquet)")
print(time.perf_counter() - t, {PEAK})
"""

EXTRACT = f"""
import sys, time
from pathlib import Path
import duckdb, pyarrow.parquet as pq
from mutual.governance.agreements import DATASETS
from mutual.governance.deidentify import extract
from mutual.governance.pseudonym import agreement_key
optouts = pq.read_table(sys.argv[3]).column("nhs_number")
t = time.perf_counter()
con = duckdb.connect()
_, report = extract(con, f"read_parquet('{{sys.argv[1]}}')", fields=DATASETS["apc_episodes"],
                    key=agreement_key(bytes(range(32)), "BENCH-1"), optouts=optouts, out=Path(sys.argv[2]))
elapsed = time.perf_counter() - t
print(elapsed, {PEAK}, report.rows_in, report.opted_out,
      report.rows_out, report.smallest_group, report.below_k)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mutual.governance import episodes

    with tempfile.TemporaryDirectory(prefix="mutual-extract-") as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        trusts = [f"R{i:02d}" for i in range(150)]
        table = episodes.generate(args.rows, trusts, date(2020, 4, 1), 365, seed=11)
        people = np.unique(table.column("nhs_number").to_numpy())
        opted = np.random.default_rng(5).choice(people, size=len(people) // 100, replace=False)
        pq.write_table(table, d / "episodes.parquet")
        pq.write_table(pa.table({"nhs_number": opted}), d / "optouts.parquet")
        del table
        print(f"generated {args.rows:,} episodes of {len(people):,} patients, {len(opted):,} opted out, in "
              f"{time.perf_counter() - t:.1f} s")
        base_s, base_kb = run(BASELINE, str(d / "episodes.parquet"), str(d / "copy.parquet"))
        ext_s, ext_kb, rows_in, opted_out, rows_out, smallest, below = run(
            EXTRACT, str(d / "episodes.parquet"), str(d / "extract.parquet"), str(d / "optouts.parquet"))
    base, ext = float(base_s), float(ext_s)
    print(f"baseline duckdb scan and copy of the Parquet: {base:.2f} s, peak RSS {int(base_kb) / 1024:.0f} MiB")
    print(f"extract (opt-outs, minimisation, generalisation, pseudonyms, k-anonymity): {ext:.2f} s, peak RSS "
          f"{int(ext_kb) / 1024:.0f} MiB; {int(rows_in):,} in, {int(opted_out):,} opted out, {int(rows_out):,} out; "
          f"smallest group {smallest}, {int(below):,} records in groups under k = 5")
    print(f"extract / baseline: {ext / base:.1f}x")
    scaled = ext * TEN_MILLION / args.rows
    if args.rows != TEN_MILLION:
        print(f"scaled linearly from {args.rows:,} episodes to ten million")
    print(f"extract_seconds_10m {scaled:.1f}")


if __name__ == "__main__":
    main()
