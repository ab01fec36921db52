"""Rolling-origin backtest of G&A beds occupied per trust, 1-7 days ahead, on real winters of NHS England sitreps.

    uv run python benchmarks/forecast.py [--train FILE ...] [--test FILE] [--refit-every 7]

Each file (in the layout of ../shared/data/nhse-uec-sitrep-series) is ingested into a temporary workspace with the
real organisations, then ``mutual.analytics.backtest`` runs on it: the same pooled model ``mutual forecast`` uses,
fed from the store. The model learns from the training winters and from the test winter up to each origin
(origins from day 28). Default: two cases (train 2017-18 + 2018-19, test 2019-20; train 2017-18..2019-20, test
2020-21). Prints MAPE and MASE for the forecast and both naive baselines, 80%/95% interval coverage, the time of a
14-day forecast of every trust, and last ``forecast_mase_ratio`` (forecast MASE / best naive MASE, worst case).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SERIES = DATA / "nhse-uec-sitrep-series"
ORG_FILES = [DATA / "nhs-ods-trusts" / "etr.csv", DATA / "nhs-ods-trusts" / "nhs-trusts-geocoded.csv",
             DATA / "nhse-winter-sitrep-2018-19" / "Trust-STP-lookup.csv"]
METRIC = "ga_beds_occupied"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", type=Path, help="training winters (sitrep series CSVs)")
    parser.add_argument("--test", type=Path, help="the test winter")
    parser.add_argument("--orgs", nargs="+", type=Path, default=ORG_FILES, help="organisation files to import")
    parser.add_argument("--horizon", type=int, default=7)
    parser.add_argument("--first-origin", type=int, default=28)
    parser.add_argument("--refit-every", type=int, default=7, help="refit the model every N origins")
    parser.add_argument("--origins", type=int, default=None, help="at most N origins, evenly spread")
    args = parser.parse_args()
    if (args.train is None) != (args.test is None):
        parser.error("give both --train and --test, or neither")
    if args.test is None:
        w = {k: SERIES / f"sitrep{k}.csv" for k in ("1718", "1819", "1920", "2021")}
        cases = [([w["1718"], w["1819"]], w["1920"]), ([w["1718"], w["1819"], w["1920"]], w["2021"])]
    else:
        cases = [(args.train, args.test)]
    files = list(dict.fromkeys(f for train, test in cases for f in [*train, test]))
    for f in [*files, *args.orgs]:
        if not f.is_file():
            sys.exit(f"error: {f} is not a file")

    from mutual.analytics.backtest import SCALE_NOTE, backtest_ranges
    from mutual.analytics.forecast import forecast_series
    from mutual.app import open_mutual

    with tempfile.TemporaryDirectory() as tmp, open_mutual(Path(tmp) / "ws", create=True) as m:
        for f in args.orgs:
            m.import_orgs(f)
        ranges: dict[Path, tuple[date, date]] = {}
        started = time.perf_counter()
        for i, f in enumerate(files):
            sub = m.ingest(f, received_at=datetime(2030, 1, 1 + i)).submission
            lo, hi = m.store.con.execute("SELECT min(period), max(period) FROM observation WHERE submission_id = ?",
                                         [sub.id]).fetchall()[0]
            if lo is None:
                sys.exit(f"error: {f} gave no values ({sub.status})")
            ranges[f] = (lo, hi)
        print(f"ingested {len(files)} files in {time.perf_counter() - started:.1f} s")
        print(f"{METRIC}, 1-{args.horizon} days ahead, origins from day {args.first_origin}, "
              f"model refitted every {args.refit_every} origins; {SCALE_NOTE}")
        ratios = []
        for train, test in cases:
            r = backtest_ranges(m.store, METRIC, [ranges[f] for f in train], ranges[test], horizon=args.horizon,
                                first_origin=args.first_origin, refit_every=args.refit_every,
                                max_origins=args.origins)
            print(f"\ntrain {' + '.join(f.stem for f in train)}, test {test.stem} ({r.test_start}..{r.test_end}): "
                  f"{r.origins} origins, {r.series} trusts, {r.points} forecasts, {r.seconds:.0f} s")
            print(f"  {'method':<16}{'MAPE %':>8}{'MASE':>8}   MAE by horizon 1..{args.horizon}")
            for name, s in r.scores.items():
                mae = " ".join(f"{v:.1f}" for v in r.by_horizon[name])
                print(f"  {name:<16}{s.mape:>8.2f}{s.mase:>8.3f}   {mae}")
            print(f"  interval coverage: 80% -> {r.coverage['80']:.1%}, 95% -> {r.coverage['95']:.1%}")
            print(f"  MASE ratio (forecast / best naive): {r.mase_ratio:.3f}")
            ratios.append(r.mase_ratio)
        started = time.perf_counter()
        table = forecast_series(m.store, METRIC, ["all"], 14)
        print(f"\nforecast of all {table.num_rows // 14} trusts, 14 days ahead: {time.perf_counter() - started:.1f} s")
    print(f"forecast_mase_ratio {max(ratios):.3f}")


if __name__ == "__main__":
    main()
