"""Rolling-origin backtest: how the forecast would have done, day by day, on a winter it had not seen.

At each origin (from day ``first_origin`` of the test winter) the model knows the training winters and the test
winter up to that day, forecasts ``horizon`` days, and is scored on the days that were then reported. The model is
refitted every ``refit_every`` origins (as often as it could be in service). Two naive baselines are scored on
the same points: persistence (the origin's value) and the same weekday last week. MASE divides each trust's mean
absolute error by the in-sample mean absolute error of the 7-day seasonal naive on that trust's training part (the
training winters plus the test winter before the first origin), then averages over trusts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from mutual.analytics.forecast import (
    MIN_HISTORY,
    ForecastError,
    PooledForecaster,
    Segment,
    _winter,
    check_metric,
    segments_from_points,
    trust_points,
)

if TYPE_CHECKING:
    from mutual.store.base import Store

METHODS = ("mutual", "persistence", "seasonal_naive")
SCALE_NOTE = "MASE scale: in-sample MAE of the 7-day seasonal naive per trust on its training part"


@dataclass
class Score:
    mape: float
    mase: float


@dataclass
class BacktestResult:
    horizon: int
    test_start: date
    test_end: date
    origins: int
    series: int
    points: int
    scores: dict[str, Score]
    coverage: dict[str, float]
    seconds: float
    by_horizon: dict[str, list[float]] = field(default_factory=dict)

    @property
    def mase_ratio(self) -> float:
        """Mutual's MASE over the better naive baseline's: below 1 beats both."""
        best = min(self.scores["persistence"].mase, self.scores["seasonal_naive"].mase)
        return self.scores["mutual"].mase / best


def _naive(seg: Segment, h: int) -> tuple[float, float]:
    """Persistence and same-weekday-last-week forecasts of ``h`` days after the segment's last day."""
    n = len(seg.values)
    back = (7 - h % 7) % 7  # days before the origin with the target's weekday
    return float(seg.values[-1]), float(seg.values[n - 1 - back]) if n - 1 - back >= 0 else float(seg.values[-1])


def _seasonal_scale(segments: Sequence[Segment]) -> float:
    diffs = []
    for seg in segments:
        if len(seg.values) > 7:
            ok = seg.observed[7:] & seg.observed[:-7]
            diffs.append(np.abs(seg.values[7:] - seg.values[:-7])[ok])
    d = np.concatenate(diffs) if diffs else np.array([])
    return float(d.mean()) if len(d) else float("nan")


def rolling_origin(train: Sequence[Segment], test: Sequence[Segment], *, horizon: int = 7, first_origin: int = 28,
                   refit_every: int = 7, max_origins: int | None = None) -> BacktestResult:
    """Score the pooled model and the naive baselines at every origin of the ``test`` segments."""
    started = time.perf_counter()
    if not test:
        raise ForecastError("the test period has no data")
    test_start = min(s.start for s in test)
    test_end = max(s.end for s in test)
    days = [test_start + timedelta(days=first_origin - 1 + i)
            for i in range((test_end - test_start).days - first_origin - horizon + 2)]
    if not days:
        raise ForecastError(f"the test period {test_start}..{test_end} is too short for origins from day "
                            f"{first_origin} and {horizon} days ahead")
    if max_origins is not None and len(days) > max_origins:
        days = [days[round(i)] for i in np.linspace(0, len(days) - 1, max_origins)]
    scale = {org: _seasonal_scale([s for s in train if s.org == org]
                                  + [part for s in test if s.org == org and (part := s.upto(days[0])) is not None])
             for org in {s.org for s in test}}
    errors: dict[str, dict[str, list[float]]] = {m: {} for m in METHODS}
    actual: list[float] = []
    preds: dict[str, list[float]] = {m: [] for m in METHODS}
    hs: list[int] = []
    inside = {"80": 0, "95": 0}
    model: PooledForecaster | None = None
    for k, day in enumerate(days):
        if model is None or k % refit_every == 0:
            known = [*train, *(part for s in test if (part := s.upto(day)) is not None)]
            model = PooledForecaster.fit(known, horizon)
        current = [part for s in test if s.start <= day <= s.end and (part := s.upto(day)) is not None
                   and len(part.values) >= MIN_HISTORY]
        full = {s.org: s for s in test if s.start <= day <= s.end}
        for seg, p in zip(current, model.predict(current), strict=True):
            whole = full[seg.org]
            for h in range(1, horizon + 1):
                i = (day - whole.start).days + h
                if i >= len(whole.values) or not whole.observed[i]:
                    continue
                y = float(whole.values[i])
                naive = _naive(seg, h)
                values = {"mutual": float(p["mean"][h - 1]), "persistence": naive[0], "seasonal_naive": naive[1]}
                for m, v in values.items():
                    errors[m].setdefault(seg.org, []).append(abs(y - v))
                    preds[m].append(v)
                actual.append(y)
                hs.append(h)
                inside["80"] += int(p["lo80"][h - 1] <= y <= p["hi80"][h - 1])
                inside["95"] += int(p["lo95"][h - 1] <= y <= p["hi95"][h - 1])
    if not actual:
        raise ForecastError("no forecast in the test period could be scored")
    y_arr = np.array(actual)
    h_arr = np.array(hs)
    scores = {}
    by_horizon = {}
    for m in METHODS:
        e = np.abs(y_arr - np.array(preds[m]))
        pos = y_arr > 0
        mape = float(np.mean(e[pos] / y_arr[pos]) * 100)
        per_series = [np.mean(v) / scale[org] for org, v in errors[m].items()
                      if np.isfinite(scale[org]) and scale[org] > 0]
        scores[m] = Score(mape=mape, mase=float(np.mean(per_series)))
        by_horizon[m] = [float(np.mean(e[h_arr == h])) for h in range(1, horizon + 1)]
    return BacktestResult(horizon=horizon, test_start=test_start, test_end=test_end, origins=len(days),
                          series=len(errors["mutual"]), points=len(actual), scores=scores,
                          coverage={k: v / len(actual) for k, v in inside.items()},
                          seconds=time.perf_counter() - started, by_horizon=by_horizon)


def backtest_ranges(store: Store, metric: str, train: Sequence[tuple[date, date]], test: tuple[date, date],
                    *, as_of: datetime | None = None, **options: int | None) -> BacktestResult:
    """The backtest with explicit training and test date ranges (one per winter), read from the store."""
    check_metric(metric)
    train_segments: list[Segment] = []
    for lo, hi in train:
        train_segments += segments_from_points(trust_points(store, metric, as_of, lo, hi)[0])
    test_segments = segments_from_points(trust_points(store, metric, as_of, *test)[0])
    return rolling_origin(train_segments, test_segments, **options)  # type: ignore[arg-type]


def backtest_workspace(store: Store, metric: str, *, test_winter: int | None = None,
                       as_of: datetime | None = None, **options: int | None) -> BacktestResult:
    """The backtest on a workspace: test on one winter (July-June, named by its first year; default the latest),
    train on the winters before it."""
    check_metric(metric)
    segments = segments_from_points(trust_points(store, metric, as_of)[0])
    winters = sorted({_winter(s.start) for s in segments})
    if not winters:
        raise ForecastError(f"no trust has values of {metric}")
    chosen = winters[-1] if test_winter is None else test_winter
    if chosen not in winters:
        raise ForecastError(f"no values of {metric} in winter {chosen}-{(chosen + 1) % 100:02d}; winters with data: "
                            + ", ".join(f"{w}-{(w + 1) % 100:02d}" for w in winters))
    train = [s for s in segments if _winter(s.start) < chosen]
    test = [s for s in segments if _winter(s.start) == chosen]
    return rolling_origin(train, test, **options)  # type: ignore[arg-type]
