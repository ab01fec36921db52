"""Commercial terms and the settlement ledger of a gain- and risk-share partnership.

The terms are data: the outcome's baseline and target, what one unit of improvement is worth to the NHS, the
partner's share of that value when the target is met (up to a cap), and the share of the shortfall it refunds
when the target is missed (up to a cap too). Each period's settlement is computed from the measured outcome.

The ledger is append-only: an entry is never changed; a correction is a new entry that refers to the one it
corrects and carries the difference, so the entries of a period always sum to what is owed for it now.
Positive amounts are paid to the partner, negative ones are refunds to the NHS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Terms(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    baseline: float
    target: float
    better: Literal["lower", "higher"]
    value_per_unit: float = Field(gt=0, description="£ the NHS gains for each unit of improvement")
    gain_share: float = Field(ge=0, le=1, description="Share of the value paid to the partner when on target")
    cap: float = Field(ge=0, description="Most paid for one period, £")
    risk_share: float = Field(ge=0, le=1, description="Share of the missed value the partner refunds")
    refund_cap: float = Field(ge=0, description="Most refunded for one period, £")
    schedule: Literal["monthly", "quarterly", "annual"] = "quarterly"

    @model_validator(mode="after")
    def _target_beyond_baseline(self) -> Terms:
        if (self.target >= self.baseline) if self.better == "lower" else (self.target <= self.baseline):
            raise ValueError("the target must be an improvement on the baseline")
        return self


@dataclass(frozen=True)
class Settlement:
    amount: float
    explanation: str


def settle(terms: Terms, measured: float) -> Settlement:
    """What one period's measured outcome is worth under ``terms``."""
    sign = -1.0 if terms.better == "lower" else 1.0
    improvement = sign * (measured - terms.baseline)
    on_target = sign * (measured - terms.target) >= 0
    if on_target:
        value = improvement * terms.value_per_unit
        amount = min(terms.cap, terms.gain_share * value)
        return Settlement(round(amount, 2), f"target met ({measured:g} against {terms.target:g}): "
                                            f"{terms.gain_share:.0%} of £{value:,.2f} saved, capped at "
                                            f"£{terms.cap:,.2f}")
    missed = sign * (terms.target - measured) * terms.value_per_unit
    refund = min(terms.refund_cap, terms.risk_share * missed)
    return Settlement(round(-refund, 2), f"target missed ({measured:g} against {terms.target:g}): the partner "
                                         f"refunds {terms.risk_share:.0%} of £{missed:,.2f} not achieved, capped "
                                         f"at £{terms.refund_cap:,.2f}")


@dataclass(frozen=True)
class Entry:
    seq: int
    agreement: str
    period: str
    amount: float
    explanation: str
    corrects: int | None = None


class LedgerError(ValueError):
    pass


@dataclass
class Ledger:
    """The entries in order; the only operations add entries."""

    entries: list[Entry]

    def settle(self, agreement: str, period: str, terms: Terms, measured: float) -> Entry:
        if any(e.agreement == agreement and e.period == period for e in self.entries):
            raise LedgerError(f"{agreement} {period} is settled already: correct it instead")
        s = settle(terms, measured)
        return self._add(agreement, period, s.amount, s.explanation, None)

    def correct(self, seq: int, terms: Terms, measured: float, why: str) -> Entry:
        """Re-settle the period of entry ``seq`` with a corrected measurement: a new entry with the difference."""
        original = next((e for e in self.entries if e.seq == seq), None)
        if original is None:
            raise LedgerError(f"no ledger entry {seq}")
        if not why.strip():
            raise LedgerError("say why the settlement is corrected")
        owed = settle(terms, measured)
        difference = round(owed.amount - self.owed(original.agreement, original.period), 2)
        return self._add(original.agreement, original.period, difference, f"correction ({why}): {owed.explanation}",
                         seq)

    def owed(self, agreement: str, period: str) -> float:
        return round(sum(e.amount for e in self.entries if e.agreement == agreement and e.period == period), 2)

    def balance(self, agreement: str) -> float:
        return round(sum(e.amount for e in self.entries if e.agreement == agreement), 2)

    def _add(self, agreement: str, period: str, amount: float, explanation: str, corrects: int | None) -> Entry:
        entry = Entry(len(self.entries) + 1, agreement, period, amount, explanation, corrects)
        self.entries.append(entry)
        return entry
