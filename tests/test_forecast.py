"""Forecasts: the pooled model beats the naive baselines where it should, its intervals cover at the nominal rate,
and forecasts come from (and go back to) the store with their data vintage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import ORGS_CSV, import_real_orgs, shared_data_dir
from engines import engine_env
from mutual.analytics.backtest import _naive, backtest_ranges, rolling_origin
from mutual.analytics.forecast import (
    ForecastError,
    PooledForecaster,
    Segment,
    descendants,
    forecast_series,
    segments_from_points,
    store_forecast,
)
from mutual.app import Mutual, open_mutual
from mutual.cli import app

TRUSTS = ["R1H", "RAL", "RYJ"]


def synthetic(n_series: int, winters: list[int], days: int, make: object, seed: int = 0) -> list[Segment]:
    """``make(rng, level, weekdays)`` gives one winter's values for a trust of size ``level``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_series):
        level = float(rng.uniform(100, 1500))
        for w in winters:
            start = date(w, 12, 1)
            values = make(rng, level, (start.weekday() + np.arange(days)) % 7)  # type: ignore[operator]
            out.append(Segment(f"T{i:02d}", start, np.asarray(values, dtype=float), np.ones(days, dtype=bool)))
    return out


def weekly(rng: np.random.Generator, level: float, weekday: np.ndarray) -> np.ndarray:
    pattern = np.array([1.0, 1.04, 1.06, 1.05, 1.02, 0.93, 0.90])  # busy midweek, quiet weekend
    return level * pattern[weekday] + rng.normal(0, 0.005 * level, len(weekday))


def noisy(rng: np.random.Generator, level: float, weekday: np.ndarray) -> np.ndarray:
    return level + rng.normal(0, 0.03 * level, len(weekday))


def split(segments: list[Segment], test_winter: int) -> tuple[list[Segment], list[Segment]]:
    return ([s for s in segments if s.start.year != test_winter], [s for s in segments if s.start.year == test_winter])


def test_a_weekly_pattern_is_learnt_and_beats_persistence() -> None:
    train, test = split(synthetic(24, [2016, 2017, 2018], 84, weekly), 2018)
    r = rolling_origin(train, test, horizon=7, first_origin=28, refit_every=100, max_origins=8)
    assert r.scores["mutual"].mase < 0.5 * r.scores["persistence"].mase
    assert r.scores["mutual"].mase < r.scores["seasonal_naive"].mase * 1.5  # as good as the ideal naive, nearly
    assert r.mase_ratio < 1.5


def test_intervals_cover_white_noise_at_about_the_nominal_rate() -> None:
    train, test = split(synthetic(40, [2016, 2017, 2018], 70, noisy, seed=3), 2018)
    r = rolling_origin(train, test, horizon=7, first_origin=28, refit_every=100, max_origins=10)
    assert 0.72 <= r.coverage["80"] <= 0.88
    assert 0.91 <= r.coverage["95"] <= 0.985
    # on noise around a constant, persistence is the worst one can do: the model should learn to average
    assert r.scores["mutual"].mase < r.scores["persistence"].mase


def test_forecasts_have_ordered_intervals_that_widen_with_the_horizon() -> None:
    segments = synthetic(12, [2016, 2017], 60, noisy, seed=5)
    model = PooledForecaster.fit(segments, 14)
    for p in model.predict(segments[-3:]):
        assert np.all(p["lo95"] <= p["lo80"]) and np.all(p["lo80"] <= p["mean"])
        assert np.all(p["mean"] <= p["hi80"]) and np.all(p["hi80"] <= p["hi95"])
        width = p["hi95"] - p["lo95"]
        assert np.all(np.diff(width) >= -1e-9)


@given(n=st.integers(1, 40), h=st.integers(1, 14))
def test_seasonal_naive_takes_the_last_day_with_the_targets_weekday(n: int, h: int) -> None:
    seg = Segment("X", date(2020, 1, 1), np.arange(n, dtype=float), np.ones(n, dtype=bool))
    persistence, seasonal = _naive(seg, h)
    assert persistence == n - 1
    if n >= 7:
        back = n - 1 - seasonal
        assert 0 <= back < 7 and (h + back) % 7 == 0


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 60), st.floats(0, 1000, allow_nan=False)), min_size=1, max_size=40))
def test_segments_keep_every_reported_value_carry_short_gaps_and_split_long_ones(
        points: list[tuple[int, float]]) -> None:
    start = date(2020, 11, 1)
    latest = {start + timedelta(days=d): v for d, v in points}
    segments = segments_from_points(("X", start + timedelta(days=d), v) for d, v in points)
    seen = {}
    for seg in segments:
        assert seg.observed[0] and seg.observed[-1]
        for i in range(len(seg.values)):
            day = seg.start + timedelta(days=i)
            if seg.observed[i]:
                seen[day] = seg.values[i]
            else:  # carried forward from the last reported day
                last = max(d for d in latest if d < day)
                assert seg.values[i] == latest[last] and (day - last).days <= 7
    assert seen == latest
    for a, b in pairwise(segments):
        assert (b.start - a.end).days > 7


# -- through the store and the command line ----------------------------------------------------------------------


def write_series(path: Path, start: date, days: int, bump: float = 0.0, seed: int = 1) -> Path:
    """A mutual-long CSV of G&A beds occupied for the three London trusts, with a weekday pattern."""
    rng = np.random.default_rng(seed)
    sizes = {"R1H": 1400, "RAL": 800, "RYJ": 950}
    lines = ["org,metric,date,value"]
    for i in range(days):
        day = start + timedelta(days=i)
        for org, size in sizes.items():
            value = size * (1.0 - 0.06 * (day.weekday() >= 5)) + rng.normal(0, 8) + bump
            lines.append(f"{org},ga_beds_occupied,{day.isoformat()},{round(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def build(tmp: Path) -> Path:
    """A workspace with two winters of the three trusts; the second winter corrected 10 days after it came."""
    orgs = tmp / "orgs.csv"
    orgs.write_text(ORGS_CSV)
    with open_mutual(tmp / "ws", create=True) as m:
        m.import_orgs(orgs)
        m.ingest(write_series(tmp / "w1.csv", date(2018, 12, 1), 90), received_at=datetime(2019, 6, 1))
        m.ingest(write_series(tmp / "w2.csv", date(2019, 12, 1), 60, seed=2), received_at=datetime(2020, 2, 1))
        m.ingest(write_series(tmp / "w2b.csv", date(2019, 12, 1), 60, bump=100, seed=2),
                 received_at=datetime(2020, 2, 10))
    return tmp / "ws"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, module_data_plane: str) -> Iterator[Mutual]:
    with engine_env(module_data_plane), open_mutual(build(tmp_path_factory.mktemp("forecast"))) as m:
        yield m


def test_forecast_from_the_store_for_trusts_and_a_region(ws: Mutual) -> None:
    table = forecast_series(ws.store, "ga_beds_occupied", ["R1H", "Y56"], 7)
    rows = table.to_pylist()
    assert len(rows) == 14
    assert {r["org"] for r in rows} == {"R1H", "Y56"}
    assert [r["period"] for r in rows if r["org"] == "R1H"] == [date(2020, 1, 29) + timedelta(days=h)
                                                                for h in range(1, 8)]
    assert all(r["vintage"] == datetime(2020, 2, 10) and r["dims"] == "" for r in rows)
    assert all(r["lo95"] <= r["lo80"] <= r["mean"] <= r["hi80"] <= r["hi95"] for r in rows)
    r1h = np.mean([r["mean"] for r in rows if r["org"] == "R1H"])
    region = np.mean([r["mean"] for r in rows if r["org"] == "Y56"])
    assert 1400 < r1h < 1600  # the corrected level (about 1,500 on weekdays)
    assert 3300 < region < 3700  # the sum of the three trusts (about 3,450)


def test_as_of_forecasts_from_what_was_known_then(ws: Mutual) -> None:
    table = forecast_series(ws.store, "ga_beds_occupied", ["R1H"], 3, as_of=datetime(2020, 2, 5))
    rows = table.to_pylist()
    assert all(r["vintage"] == datetime(2020, 2, 5) for r in rows)
    assert 1300 < np.mean([r["mean"] for r in rows]) < 1450  # before the correction added 100 beds


def test_a_forecast_made_again_from_the_same_vintage_replaces_the_earlier_one(ws: Mutual) -> None:
    ws.store.delete("forecast", "true")
    for _ in range(2):
        store_forecast(ws.store, forecast_series(ws.store, "ga_beds_occupied", ["RAL"], 5))
    store_forecast(ws.store, forecast_series(ws.store, "ga_beds_occupied", ["RAL"], 5,
                                             as_of=datetime(2020, 2, 5)))
    counts = ws.store.rows("SELECT vintage, count(*) FROM forecast GROUP BY vintage ORDER BY 1")
    assert counts == [(datetime(2020, 2, 5), 5), (datetime(2020, 2, 10), 5)]


@pytest.mark.parametrize(("metric", "orgs", "horizon", "message"), [
    ("nope", ["R1H"], 7, "unknown metric 'nope'"),
    ("ga_beds_occupied", ["XYZ"], 7, "unknown organisation 'XYZ'"),
    ("ga_beds_occupied", ["R1H"], 15, "horizon 15 is outside 1-14"),
    ("handover_delays_30_60", ["R1H"], 7, "forecasts are for levels"),
    ("cc_adult_beds_occupied", ["R1H"], 7, "no trust has values of cc_adult_beds_occupied"),
])
def test_bad_input_is_one_clear_error(ws: Mutual, metric: str, orgs: list[str], horizon: int, message: str) -> None:
    with pytest.raises(ForecastError, match=message):
        forecast_series(ws.store, metric, orgs, horizon)


def test_roll_ups_find_their_trusts_through_the_hierarchy(ws: Mutual) -> None:
    orgs = ws.orgs()
    assert descendants(orgs, "Y56") == set(TRUSTS)
    assert descendants(orgs, "E54000029") == {"R1H", "RAL"}
    assert descendants(orgs, "R1H") == {"R1H"}


def test_backtest_on_the_workspace(ws: Mutual) -> None:
    r = backtest_ranges(ws.store, "ga_beds_occupied", [(date(2018, 7, 1), date(2019, 6, 30))],
                        (date(2019, 7, 1), date(2020, 6, 30)), horizon=7, refit_every=100, max_origins=5)
    assert r.series == 3 and r.origins == 5 and r.points == 3 * 5 * 7
    assert r.scores["mutual"].mase < r.scores["persistence"].mase


runner = CliRunner()


def test_cli_forecast_and_backtest(tmp_path: Path, data_plane: str) -> None:
    home = str(build(tmp_path))
    result = runner.invoke(app, ["forecast", "--metric", "ga_beds_occupied", "--org", "RYJ", "--org", "Y56",
                                 "--horizon", "3", "--format", "csv", "--home", home])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith('"org","metric","dims","made_at","vintage","period","horizon","mean"')
    assert len(lines) == 1 + 6
    result = runner.invoke(app, ["forecast", "--metric", "ga_beds_occupied", "--org", "all", "--home", home])
    assert result.exit_code == 0 and "R1H" in result.stdout and "95% interval" in result.stdout
    with open_mutual(Path(home)) as m:
        assert m.store.rows("SELECT count(DISTINCT org) FROM forecast") == [(4,)]
    result = runner.invoke(app, ["forecast", "--metric", "ga_beds_occupied", "--org", "NOPE", "--home", home])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == ["error: unknown organisation 'NOPE' (see `mutual orgs list`)"]
    result = runner.invoke(app, ["backtest", "--metric", "ga_beds_occupied", "--origins", "3", "--format", "json",
                                 "--home", home])
    assert result.exit_code == 0, result.stderr
    assert '"method": "persistence"' in result.stdout and '"coverage95"' in result.stdout
    result = runner.invoke(app, ["backtest", "--metric", "ga_beds_occupied", "--winter", "2015", "--home", home])
    assert result.exit_code == 1 and "no values of ga_beds_occupied in winter 2015-16" in result.stderr


@pytest.mark.slow
def test_real_winters_the_pooled_model_beats_both_naive_baselines(tmp_path: Path, data_plane: str) -> None:
    data = shared_data_dir()
    if data is None:
        pytest.skip("the public test files (../shared/data) are not on this machine")
    with open_mutual(tmp_path / "ws", create=True) as m:
        import_real_orgs(m, data)
        for i, w in enumerate(["1819", "1920"]):
            m.ingest(data / "nhse-uec-sitrep-series" / f"sitrep{w}.csv", received_at=datetime(2021, 6, 1 + i))
        r = backtest_ranges(m.store, "ga_beds_occupied", [(date(2018, 7, 1), date(2019, 6, 30))],
                            (date(2019, 7, 1), date(2020, 6, 30)), refit_every=100, max_origins=6)
        assert r.series > 120
        assert r.mase_ratio < 1.0
        assert r.coverage["95"] > 0.88
        eng = forecast_series(m.store, "ga_beds_occupied", ["ENG"], 7).to_pylist()
        assert 80_000 < eng[0]["mean"] < 110_000  # English trusts' G&A beds occupied, early March 2020
