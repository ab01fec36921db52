"""Forecasts of occupancy-type metrics, 1-14 days ahead, with 80% and 95% prediction intervals.

One LightGBM model is pooled across every trust and every winter (a single trust's winter is too short to learn
from): it predicts the value ``h`` days after the origin relative to the series' own recent level, so one model
serves trusts of every size, from lags, rolling means, the weekday and the distance to Christmas (the Christmas and
New Year dip, the January surge). It is direct (the horizon is a feature), so errors do not compound step by step.
Intervals are split-conformal: the model is refitted with each winter (or group of trusts) held out, its errors on
the held-out part, divided by each series' recent mean daily change, give per-horizon quantiles; an interval is the
forecast plus or minus that quantile times the series' own daily change. The backtest (``backtest.py``) measures
all of this on winters the model has not seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mutual.catalog import load_catalog
from mutual.catalog.metrics import Kind
from mutual.catalog.orgs import Org, OrgKind

if TYPE_CHECKING:
    from mutual.store.base import Store

MODEL_NAME = "pooled-lgbm-direct-v1"
MAX_HORIZON = 14
LAGS = 14  # days of history used as lag features
MIN_HISTORY = 7  # days a series needs before it can be forecast
GAP_DAYS = 7  # a longer gap splits a series into separate segments (winters)
LEVELS = (0.8, 0.95)
H_COLUMN = LAGS + 4  # where _features puts the horizon
LONG_HISTORY = 28  # days known from which intervals use the "long history" calibration band

FORECAST_SCHEMA = pa.schema([
    ("org", pa.string()), ("metric", pa.string()), ("dims", pa.string()), ("made_at", pa.timestamp("us")),
    ("vintage", pa.timestamp("us")), ("period", pa.date32()), ("horizon", pa.int32()), ("mean", pa.float64()),
    ("lo80", pa.float64()), ("hi80", pa.float64()), ("lo95", pa.float64()), ("hi95", pa.float64()),
    ("model", pa.string()),
])


class ForecastError(ValueError):
    """Bad input to a forecast (unknown metric or organisation, too little history)."""


@dataclass(frozen=True)
class Segment:
    """A contiguous daily series of one organisation; ``observed`` marks days reported (not filled in)."""

    org: str
    start: date
    values: np.ndarray
    observed: np.ndarray

    @property
    def end(self) -> date:
        return self.start + timedelta(days=len(self.values) - 1)

    def upto(self, day: date) -> Segment | None:
        n = (day - self.start).days + 1
        if n <= 0:
            return None
        return Segment(self.org, self.start, self.values[:n], self.observed[:n])


def segments_from_points(rows: Iterable[tuple[str, date, float]]) -> list[Segment]:
    """Daily series from ``(org, day, value)`` points: gaps up to ``GAP_DAYS`` are carried forward (a missed
    submission is not a drop to zero), longer ones start a new segment (the next winter)."""
    by_org: dict[str, list[tuple[date, float]]] = {}
    for org, day, value in rows:
        if value is not None and np.isfinite(value):
            by_org.setdefault(org, []).append((day, float(value)))
    out: list[Segment] = []
    for org in sorted(by_org):
        points = sorted(by_org[org], key=lambda p: p[0])  # stable: of two values for a day, the later wins
        runs: list[list[tuple[date, float]]] = [[points[0]]]
        for p in points[1:]:
            gap = (p[0] - runs[-1][-1][0]).days
            if gap == 0:
                runs[-1][-1] = p
            elif gap > GAP_DAYS:
                runs.append([p])
            else:
                runs[-1].append(p)
        for run in runs:
            start = run[0][0]
            n = (run[-1][0] - start).days + 1
            values = np.full(n, np.nan)
            for day, v in run:
                values[(day - start).days] = v
            observed = ~np.isnan(values)
            idx = np.where(observed, np.arange(n), 0)
            np.maximum.accumulate(idx, out=idx)
            out.append(Segment(org, start, values[idx], observed))
    return out


# -- features ------------------------------------------------------------------------------------------------


def _winter_christmas(days: np.ndarray) -> np.ndarray:
    """Days from the Christmas of each day's winter (July to June), for the Christmas dip and January surge."""
    dt = days.astype("datetime64[D]")
    years = dt.astype("datetime64[Y]").astype(int) + 1970
    months = dt.astype("datetime64[M]").astype(int) % 12 + 1
    winter = np.where(months >= 7, years, years - 1)
    christmas = np.array([np.datetime64(f"{y}-12-25") for y in winter], dtype="datetime64[D]") if len(winter) \
        else np.array([], dtype="datetime64[D]")
    return (dt - christmas).astype(float)


def _stats(values: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per origin ``t``: recent level (mean of the last 14 days), recent mean absolute daily change (28 days),
    and the matrix of the last ``LAGS`` values (NaN before the start)."""
    padded = np.concatenate([np.full(28, np.nan), values])
    tp = t + 28
    lags = padded[tp[:, None] - np.arange(LAGS)[None, :]]
    level = np.nanmean(lags, axis=1)
    window = padded[tp[:, None] - np.arange(29)[None, :]]
    with np.errstate(all="ignore"):
        change = np.nanmean(np.abs(np.diff(window, axis=1)), axis=1)
    floor = np.maximum(0.005 * np.abs(level), 0.5)
    change = np.where(np.isfinite(change), np.maximum(change, floor), floor)
    level = np.where(np.abs(level) < 1.0, 1.0, level)
    return level, change, lags


def _features(seg: Segment, t: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows for origins ``t`` (index of the last known day) and horizons ``h``; also each row's level and
    daily change, which turn the relative prediction back into beds and scale the interval."""
    level, change, lags = _stats(seg.values, t)
    rel = lags / level[:, None] - 1.0
    padded = np.concatenate([np.full(28, np.nan), seg.values])
    tp = t + 28
    with np.errstate(all="ignore"):
        m28 = np.nanmean(padded[tp[:, None] - np.arange(28)[None, :]], axis=1) / level - 1.0
    m7 = np.nanmean(rel[:, :7], axis=1)
    origin_day = np.datetime64(seg.start, "D") + t
    target_day = origin_day + h
    x = np.column_stack([
        rel, m7, m28, change / level, np.log(level), h.astype(float),
        (target_day.astype(int) + 3) % 7, (origin_day.astype(int) + 3) % 7,  # Monday = 0
        _winter_christmas(target_day), _winter_christmas(origin_day),
    ])
    return x, level, change


def _training_rows(segments: Sequence[Segment], horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                        np.ndarray, np.ndarray, np.ndarray]:
    """Every (segment, origin, horizon) whose target day was reported: features, target, level, change, the
    segment's index (for cross-fitting) and the days known at the origin."""
    xs, ys, levels, changes, groups, known = [], [], [], [], [], []
    for i, seg in enumerate(segments):
        n = len(seg.values)
        grid_t, grid_h = np.meshgrid(np.arange(MIN_HISTORY - 1, n), np.arange(1, horizon + 1), indexing="ij")
        t, h = grid_t.ravel(), grid_h.ravel()
        keep = t + h < n
        t, h = t[keep], h[keep]
        keep = seg.observed[t + h]
        t, h = t[keep], h[keep]
        if len(t) == 0:
            continue
        x, level, change = _features(seg, t, h)
        xs.append(x)
        ys.append(seg.values[t + h])
        levels.append(level)
        changes.append(change)
        groups.append(np.full(len(t), i))
        known.append(t + 1)
    if not xs:
        raise ForecastError(f"too little history to learn from: no series has {MIN_HISTORY} days and a later day")
    return (np.vstack(xs), np.concatenate(ys), np.concatenate(levels), np.concatenate(changes),
            np.concatenate(groups), np.concatenate(known))


# -- the model -----------------------------------------------------------------------------------------------

LGBM_PARAMS: dict[str, Any] = dict(objective="l1", n_estimators=200, learning_rate=0.06, num_leaves=31,
                                   min_child_samples=50, subsample=0.7, subsample_freq=1, colsample_bytree=0.8,
                                   max_bin=63, n_jobs=1, verbose=-1, random_state=0)
MAX_ROWS = 100_000  # training rows (series x origin x horizon) per fit: neighbouring origins add little, time a lot


def _fit_lgbm(x: np.ndarray, y: np.ndarray) -> Any:
    import lightgbm

    if len(y) > MAX_ROWS:
        keep = np.random.default_rng(0).choice(len(y), MAX_ROWS, replace=False)
        x, y = x[keep], y[keep]
    model = lightgbm.LGBMRegressor(**LGBM_PARAMS)
    model.fit(x, y)
    return model


def _winter(day: date) -> int:
    return day.year if day.month >= 7 else day.year - 1


@dataclass
class PooledForecaster:
    """A fitted pooled model and its conformal interval widths, in units of the series' daily change: per level,
    an array (short history, long history) x horizon."""

    horizon: int
    model: Any
    widths: dict[float, np.ndarray] = field(default_factory=dict)

    @classmethod
    def fit(cls, segments: Sequence[Segment], horizon: int, *, calibrate: bool = True) -> PooledForecaster:
        if not 1 <= horizon <= MAX_HORIZON:
            raise ForecastError(f"horizon {horizon} is outside 1-{MAX_HORIZON} days")
        x, y, level, change, groups, known = _training_rows(segments, horizon)
        model = _fit_lgbm(x, y / level - 1.0)
        widths = _conformal_widths(segments, x, y, level, change, groups, known, horizon) if calibrate else {}
        return cls(horizon, model, widths)

    def predict(self, segments: Sequence[Segment]) -> list[dict[str, np.ndarray]]:
        """For each segment, the forecast of the ``horizon`` days after its last day: mean and interval bounds."""
        if not segments:
            return []
        h = np.arange(1, self.horizon + 1)
        parts = [_features(seg, np.full(self.horizon, len(seg.values) - 1), h) for seg in segments]
        x = np.vstack([p[0] for p in parts])
        rel = self.model.predict(x).reshape(len(segments), self.horizon)
        out = []
        for i, ((_, level, change), seg) in enumerate(zip(parts, segments, strict=True)):
            band = int(len(seg.values) >= LONG_HISTORY)
            mean = np.maximum(level * (1.0 + rel[i]), 0.0)
            result = {"mean": mean}
            for lv, w in self.widths.items():
                tag = f"{round(lv * 100)}"
                result[f"lo{tag}"] = np.maximum(mean - w[band] * change, 0.0)
                result[f"hi{tag}"] = mean + w[band] * change
            out.append(result)
        return out


def _conformal_widths(segments: Sequence[Segment], x: np.ndarray, y: np.ndarray, level: np.ndarray,
                      change: np.ndarray, groups: np.ndarray, known: np.ndarray, horizon: int
                      ) -> dict[float, np.ndarray]:
    """Cross-fitted normalised errors: refit with one winter held out (or, with a single winter, one fifth of the
    series), score ``|error| / daily change`` on it, and take conformal quantiles per horizon and per history
    band (a forecast from the first weeks of a series knows less, and is less sure, than one from later on)."""
    winters = np.array([_winter(s.start) for s in segments])[groups]
    by_winter = len(np.unique(winters)) >= 2
    if by_winter:
        folds = winters
    else:
        orgs = sorted({s.org for s in segments})
        fold_of = {o: i % 5 for i, o in enumerate(orgs)}
        folds = np.array([fold_of[s.org] for s in segments])[groups]
    scores = np.full(len(y), np.nan)
    for f in np.unique(folds):
        held = folds == f
        if held.all():
            continue
        m = _fit_lgbm(x[~held], y[~held] / level[~held] - 1.0)
        pred = level[held] * (1.0 + m.predict(x[held]))
        scores[held] = np.abs(y[held] - np.maximum(pred, 0.0)) / change[held]
    hs = x[:, H_COLUMN].astype(int)
    widths: dict[float, np.ndarray] = {}
    long = known >= LONG_HISTORY
    ok = np.isfinite(scores)
    if not ok.any():
        raise ForecastError("too little history to calibrate prediction intervals")
    for lv in LEVELS:
        w = np.zeros((2, horizon))
        for band in (0, 1):
            for h in range(1, horizon + 1):
                for pick in ((hs == h) & (long == band), hs == h, long == band, ok):
                    if (pick & ok).sum() >= 20:
                        break
                w[band, h - 1] = _weighted_quantile(scores[pick & ok], folds[pick & ok], lv, by_winter)
        widths[lv] = np.maximum.accumulate(w, axis=1)
    return widths


def _weighted_quantile(scores: np.ndarray, folds: np.ndarray, level: float, decay: bool) -> float:
    """The ``level`` quantile with each fold (winter) weighing the same however many rows it has (a long calm
    winter must not outvote a short hard one), and, when folds are winters, each winter half as much as the next
    (winters are not exchangeable: the one in progress says most about the coming days; non-exchangeable
    conformal weighting after Barber et al. 2023)."""
    keys, inverse, counts = np.unique(folds, return_inverse=True, return_counts=True)
    fold_weight = 0.5 ** (keys.max() - keys) if decay else np.ones(len(keys))
    order = np.argsort(scores)
    weight = (fold_weight[inverse] / counts[inverse])[order]
    cum = np.cumsum(weight) / weight.sum()
    target = min(1.0, level * (1.0 + 1.0 / len(scores)))  # the finite-sample correction of split conformal
    return float(scores[order][min(int(np.searchsorted(cum, target)), len(scores) - 1)])


# -- from the store ----------------------------------------------------------------------------------------------


def check_metric(metric: str) -> None:
    catalog = load_catalog()
    if metric not in catalog.codes:
        raise ForecastError(f"unknown metric {metric!r} (see `mutual catalog`)")
    if catalog.get(metric).kind != Kind.POINT_IN_TIME:
        raise ForecastError(f"{metric} is a {catalog.get(metric).kind} metric: forecasts are for levels "
                            "(point_in_time metrics such as ga_beds_occupied)")


def trust_points(store: Store, metric: str, as_of: datetime | None = None,
                 start: date | None = None, end: date | None = None) -> tuple[list[tuple[str, date, float]],
                                                                            datetime | None]:
    """Every trust's values of ``metric`` (no dimensions) as known at ``as_of``, and the latest ``recorded_at``
    among them (the data vintage)."""
    from mutual.store.base import ObservationQuery

    trusts = [o.code for o in store.orgs() if o.kind in (OrgKind.TRUST,)]
    t = store.observations(ObservationQuery(metric=metric, as_of=as_of, start=start, end=end))
    t = t.filter(t.dims == "", t.org.isin(trusts))
    table = t.select("org", "period", "value", "recorded_at").to_pyarrow()
    recorded = table.column("recorded_at").to_pylist()
    vintage = max(recorded) if recorded else None
    rows = list(zip(table.column("org").to_pylist(), table.column("period").to_pylist(),
                    table.column("value").to_pylist(), strict=True))
    return rows, vintage


def descendants(orgs: Sequence[Org], code: str) -> set[str]:
    """The trusts under ``code`` in the hierarchy (through parents, or the trust's region)."""
    parent = {o.code: o.parent for o in orgs}
    out = set()
    for o in orgs:
        if o.kind != OrgKind.TRUST:
            continue
        node: str | None = o.code
        seen = set()
        while node is not None and node not in seen:
            if node == code:
                out.add(o.code)
                break
            seen.add(node)
            node = parent.get(node)
        if o.region == code:
            out.add(o.code)
    return out


def sum_segments(segments: Sequence[Segment], members: set[str], name: str) -> list[Segment]:
    """The roll-up series: per day, the sum of its trusts' (carried-forward) values; split where it is empty."""
    totals: dict[date, float] = {}
    for seg in segments:
        if seg.org in members:
            for i, v in enumerate(seg.values):
                day = seg.start + timedelta(days=i)
                totals[day] = totals.get(day, 0.0) + float(v)
    return segments_from_points((name, d, v) for d, v in totals.items())


def _target(code: str, known: dict[str, Org], latest: dict[str, Segment], segments: Sequence[Segment],
            metric: str) -> Segment:
    """The series to forecast for ``code``: a trust's latest segment, or the sum of a roll-up's trusts."""
    if known[code].kind == OrgKind.TRUST:
        if code not in latest:
            raise ForecastError(f"{code} has no values of {metric} to forecast from")
        seg = latest[code]
    else:
        rolled = sum_segments(segments, descendants(list(known.values()), code), code)
        if not rolled:
            raise ForecastError(f"{code} ({known[code].kind}) has no trusts with values of {metric}")
        seg = rolled[-1]
    if len(seg.values) < MIN_HISTORY:
        raise ForecastError(f"{code} has only {len(seg.values)} days of {metric} since its last gap; "
                            f"a forecast needs {MIN_HISTORY}")
    return seg


def forecast_series(store: Store, metric: str, orgs: Sequence[str], horizon: int,
                    as_of: datetime | None = None, *, made_at: datetime | None = None,
                    skip_missing: bool = False) -> pa.Table:
    """Forecast ``horizon`` days after each org's last reported day, fitted on every trust's history as of
    ``as_of``. Trusts forecast their own series; a region, STP or the nation forecasts the sum of its trusts.
    ``orgs == ["all"]`` means every trust with data. Columns as the ``forecast`` table. An org without enough
    data is an error, or left out with ``skip_missing`` (for callers that ask about many)."""
    check_metric(metric)
    if not 1 <= horizon <= MAX_HORIZON:
        raise ForecastError(f"horizon {horizon} is outside 1-{MAX_HORIZON} days")
    known = {o.code: o for o in store.orgs()}
    points, vintage = trust_points(store, metric, as_of)
    segments = segments_from_points(points)
    if not segments:
        raise ForecastError(f"no trust has values of {metric}" + (f" as of {as_of}" if as_of else ""))
    latest = {s.org: s for s in segments}  # segments are in order, so the last one per org wins
    wanted = sorted(latest) if list(orgs) == ["all"] else list(dict.fromkeys(orgs))
    targets: list[Segment] = []
    for code in wanted:
        if code not in known:
            raise ForecastError(f"unknown organisation {code!r} (see `mutual orgs list`)")
        try:
            targets.append(_target(code, known, latest, segments, metric))
        except ForecastError:
            if not skip_missing:
                raise
    if not targets:
        raise ForecastError(f"none of {', '.join(wanted)} has enough values of {metric} to forecast")
    model = PooledForecaster.fit(segments, horizon)
    preds = model.predict(targets)
    planned = planned_changes(store, metric)
    made = made_at or datetime.now(UTC).replace(tzinfo=None)
    vint = as_of or vintage
    rows: dict[str, list[Any]] = {name: [] for name in FORECAST_SCHEMA.names}
    for seg, p in zip(targets, preds, strict=True):
        for h in range(1, horizon + 1):
            rows["org"].append(seg.org)
            rows["metric"].append(metric)
            rows["dims"].append("")
            rows["made_at"].append(made)
            rows["vintage"].append(vint)
            rows["period"].append(seg.end + timedelta(days=h))
            rows["horizon"].append(h)
            shift = planned_shift(planned, seg, known, seg.end + timedelta(days=h))
            for k in ("mean", "lo80", "hi80", "lo95", "hi95"):
                rows[k].append(round(max(0.0, float(p[k][h - 1]) + shift), 2))
            rows["model"].append(MODEL_NAME)
    return pa.table(rows, schema=FORECAST_SCHEMA)


def planned_changes(store: Store, metric: str) -> list[tuple[str, date, date | None, float]]:
    """(org, first day, last day or None, change) that approved mutual-aid plans expect in ``metric``."""
    table = store.expected_changes(metric)
    if table is None:
        return []
    table = table.filter(table.dims == "")
    return [(r["org"], r["first_day"], r["last_day"], float(r["delta"]))
            for r in table.select("org", "first_day", "last_day", "delta").to_pyarrow().to_pylist()]


def planned_shift(planned: Sequence[tuple[str, date, date | None, float]], seg: Segment, known: dict[str, Org],
                  day: date) -> float:
    """The change plans expect on ``day`` for the series ``seg`` (a trust, or the trusts of a roll-up), counting
    only changes that begin after its last report: earlier ones are already in the data."""
    if not planned:
        return 0.0
    members = {seg.org} if known[seg.org].kind == OrgKind.TRUST else descendants(list(known.values()), seg.org)
    return sum(delta for org, first, last, delta in planned
               if org in members and seg.end < first <= day and (last is None or day <= last))


def store_forecast(store: Store, table: pa.Table) -> int:
    """Keep a forecast; one made again from the same data vintage replaces the earlier one for those orgs."""
    if table.num_rows == 0:
        return 0
    metric = table.column("metric")[0].as_py()
    vintage = table.column("vintage")[0].as_py()
    orgs = sorted(set(table.column("org").to_pylist()))
    return store.append("forecast", table,
                        replace_where="metric = $metric AND vintage IS NOT DISTINCT FROM $vintage "
                                      "AND org = ANY($orgs) AND model = $model",
                        params={"metric": metric, "vintage": vintage, "orgs": orgs, "model": MODEL_NAME})
