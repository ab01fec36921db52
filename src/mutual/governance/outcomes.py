"""Evidence of outcomes: did a partner's tool change an outcome at the trusts that use it?

Difference in differences on the platform's own daily series. For each trust, the change from the weeks before
the go-live date to the weeks after; the effect is the treated trusts' mean change minus that of comparison
trusts chosen, one per treated trust (with replacement), as the untreated trust nearest in pre-period level and
trend (both scaled by the treated trust's level), so the two groups were moving alike before.

Uncertainty: a bootstrap over trusts (treated and comparison resampled separately), since the trust is the unit
that adopts the tool and days within a trust are not independent; the percentile interval. With a handful of
trusts that interval is wide, as it should be. A placebo test repeats the estimate inside the pre-period (a
pretend go-live halfway through it): an effect there means the groups were not moving alike and the main
estimate should not be trusted.

The statement says what the numbers show and what they do not: association under the parallel-trends
assumption, not proof of cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

Series = Mapping[str, Mapping[date, float]]


class OutcomeError(ValueError):
    pass


@dataclass(frozen=True)
class Effect:
    estimate: float
    lo: float
    hi: float
    level: float
    treated: tuple[str, ...]
    comparison: tuple[str, ...]
    placebo: float
    placebo_lo: float
    placebo_hi: float
    statement: str


def _window(series: Mapping[date, float], start: date, days: int) -> np.ndarray:
    return np.array([series[d] for d in (start + timedelta(days=i) for i in range(days)) if d in series])


def _changes(series: Series, orgs: list[str], go_live: date, pre_days: int, post_days: int) -> np.ndarray:
    out = []
    for org in orgs:
        pre = _window(series[org], go_live - timedelta(days=pre_days), pre_days)
        post = _window(series[org], go_live, post_days)
        out.append(post.mean() - pre.mean() if len(pre) and len(post) else np.nan)
    return np.array(out)


def _profile(values: np.ndarray) -> tuple[float, float]:
    """Level and daily trend of a window (least squares)."""
    days = np.arange(len(values))
    slope = float(np.polyfit(days, values, 1)[0]) if len(values) >= 2 else 0.0
    return float(values.mean()), slope


def match(series: Series, treated: list[str], pool: list[str], go_live: date, pre_days: int) -> list[str]:
    """For each treated trust, the pool trust nearest in pre-period level and trend (scaled by its level)."""
    start = go_live - timedelta(days=pre_days)
    profiles = {o: _profile(_window(series[o], start, pre_days)) for o in [*treated, *pool]
                if len(_window(series[o], start, pre_days)) >= max(2, pre_days // 2)}
    chosen = []
    for t in treated:
        if t not in profiles:
            raise OutcomeError(f"{t} has too few days reported before the go-live date")
        level, slope = profiles[t]
        scale = abs(level) or 1.0
        candidates = [o for o in pool if o in profiles]
        if not candidates:
            raise OutcomeError("no comparison trust has enough days reported before the go-live date")
        chosen.append(min(candidates, key=lambda o: ((profiles[o][0] - level) / scale) ** 2
                          + (pre_days * (profiles[o][1] - slope) / scale) ** 2))
    return chosen


def _estimate(series: Series, treated: list[str], comparison: list[str], go_live: date, pre_days: int,
              post_days: int, reps: int, rng: np.random.Generator, level: float) -> tuple[float, float, float]:
    a = _changes(series, treated, go_live, pre_days, post_days)
    b = _changes(series, comparison, go_live, pre_days, post_days)
    if np.isnan(a).any() or np.isnan(b).any():
        raise OutcomeError("a trust has no days reported on one side of the go-live date")
    point = float(a.mean() - b.mean())
    draws = (rng.choice(a, (reps, len(a))).mean(axis=1) - rng.choice(b, (reps, len(b))).mean(axis=1))
    tail = (1 - level) / 2
    return point, float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))


def did(series: Series, treated: list[str], go_live: date, *, metric_label: str, tool: str,
        pre_days: int = 28, post_days: int = 28, level: float = 0.95, reps: int = 4000,
        seed: int = 0) -> Effect:
    """The effect on ``series`` (trust → day → value) of ``tool`` going live at ``treated`` on ``go_live``."""
    missing = [t for t in treated if t not in series]
    if missing or not treated:
        raise OutcomeError(f"no series for the treated trust(s) {', '.join(missing) or '(none given)'}")
    pool = sorted(o for o in series if o not in treated)
    comparison = match(series, treated, pool, go_live, pre_days)
    rng = np.random.default_rng(seed)
    point, lo, hi = _estimate(series, treated, comparison, go_live, pre_days, post_days, reps, rng, level)
    half = pre_days // 2
    placebo, p_lo, p_hi = _estimate(series, treated, comparison, go_live - timedelta(days=half), half, half, reps,
                                    rng, level)
    pct = round(level * 100)
    moves = "fell" if point < 0 else "rose"
    covers = lo <= 0 <= hi
    statement = (
        f"At the {len(treated)} trust(s) using {tool} from {go_live:%-d %B %Y}, {metric_label} {moves} by "
        f"{abs(point):.1f} more than at {len(set(comparison))} comparison trust(s) whose {metric_label} was at a "
        f"similar level and moving alike in the {pre_days} days before (a {pct}% interval from {lo:.1f} to "
        f"{hi:.1f}). "
        + ("The interval includes no change, so the data do not show an effect. " if covers else
           "The interval excludes no change. ")
        + ("Before go-live the groups moved alike (the placebo estimate's interval includes zero). "
           if p_lo <= 0 <= p_hi else
           "Before go-live the groups already moved differently (the placebo estimate is not zero), so this "
           "estimate is unreliable. ")
        + "This is an association, not proof that the tool caused it: other changes at the same trusts at the "
          "same time would look the same.")
    return Effect(point, lo, hi, level, tuple(treated), tuple(comparison), placebo, p_lo, p_hi, statement)
