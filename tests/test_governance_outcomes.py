"""Outcomes and the gain/risk-share ledger: difference in differences finds an injected effect (and no effect
where there is none) with honest intervals; settlements never pass their caps; corrections net exactly."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mutual.governance.ledger import Ledger, LedgerError, Terms, settle
from mutual.governance.outcomes import OutcomeError, did

GO = date(2021, 1, 15)


def system(effect: float, seed: int, *, diverging: bool = False) -> dict[str, dict[date, float]]:
    """30 trusts of different sizes and trends; trusts T0-T4 adopt the tool on GO (changing by ``effect``)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(30):
        level, trend = rng.uniform(20, 60), rng.normal(0, 0.05)
        if diverging and i < 5:
            trend += 0.4
        days = {}
        for d in range(-28, 28):
            day = GO + timedelta(days=d)
            days[day] = level + trend * d + rng.normal(0, 1.5) + (effect if i < 5 and d >= 0 else 0.0)
        out[f"T{i}"] = days
    return out


TREATED = [f"T{i}" for i in range(5)]


def test_an_injected_effect_is_found_and_covered() -> None:
    covered = 0
    for seed in range(20):
        e = did(system(-4.0, seed), TREATED, GO, metric_label="long-stay patients", tool="the discharge app",
                reps=1000, seed=seed)
        covered += e.lo <= -4.0 <= e.hi
        assert abs(e.estimate + 4.0) < 2.5
        assert e.hi < 0, "a clear fall is not mistaken for no change"
    assert covered >= 16
    assert "fell by" in e.statement and "not proof" in e.statement


def test_no_effect_is_not_reported_as_one() -> None:
    covers = sum(did(system(0.0, s), TREATED, GO, metric_label="x", tool="t", reps=1000, seed=s).lo <= 0 <=
                 did(system(0.0, s), TREATED, GO, metric_label="x", tool="t", reps=1000, seed=s).hi
                 for s in range(20))
    assert covers >= 16


def test_groups_that_were_already_diverging_are_flagged_by_the_placebo() -> None:
    e = did(system(0.0, 3, diverging=True), TREATED, GO, metric_label="x", tool="t", reps=1000)
    assert not e.placebo_lo <= 0 <= e.placebo_hi and "unreliable" in e.statement


def test_missing_series_are_refused_by_name() -> None:
    with pytest.raises(OutcomeError, match="T99"):
        did(system(0.0, 1), ["T99"], GO, metric_label="x", tool="t")


TERMS = Terms(baseline=40, target=34, better="lower", value_per_unit=1200.0, gain_share=0.3, cap=15_000,
              risk_share=0.5, refund_cap=5_000)


@given(measured=st.floats(0, 100, allow_nan=False))
def test_a_settlement_never_passes_its_caps(measured: float) -> None:
    s = settle(TERMS, measured)
    assert -TERMS.refund_cap <= s.amount <= TERMS.cap
    assert (s.amount >= 0) == (measured <= TERMS.target)


def test_settlements_pay_on_target_and_refund_when_missed() -> None:
    assert settle(TERMS, 33).amount == 2520.0  # 30% of 7 x £1,200
    assert settle(TERMS, 10).amount == 10_800  # 30% of 30 x £1,200
    assert settle(TERMS.model_copy(update={"cap": 10_000}), 10).amount == 10_000  # capped
    assert settle(TERMS, 37).amount == -1800.0  # half of 3 x £1,200 missed


@given(first=st.floats(0, 80, allow_nan=False), fixes=st.lists(st.floats(0, 80, allow_nan=False), max_size=4))
def test_corrections_are_new_entries_that_net_to_what_is_owed(first: float, fixes: list[float]) -> None:
    ledger = Ledger([])
    entry = ledger.settle("A1", "2026-Q1", TERMS, first)
    for value in fixes:
        ledger.correct(entry.seq, TERMS, value, "late data")
    latest = fixes[-1] if fixes else first
    assert ledger.owed("A1", "2026-Q1") == pytest.approx(settle(TERMS, latest).amount, abs=0.011)
    assert ledger.entries[0] == entry, "the first entry is never changed"
    assert all(e.corrects == entry.seq for e in ledger.entries[1:])


def test_a_period_is_settled_once_and_terms_must_improve() -> None:
    ledger = Ledger([])
    ledger.settle("A1", "2026-Q1", TERMS, 35)
    with pytest.raises(LedgerError, match="settled already"):
        ledger.settle("A1", "2026-Q1", TERMS, 30)
    with pytest.raises(ValidationError, match="improvement on the baseline"):
        Terms(baseline=40, target=45, better="lower", value_per_unit=1, gain_share=0.1, cap=1, risk_share=0,
              refund_cap=0)
