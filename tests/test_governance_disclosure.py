"""Disclosure control: no published count is 1–7, none is off by more than rounding, and no suppressed count
can be worked out from what is published, however the table is attacked by subtraction. The attacker here is an
exact solver (fractions, Gauss-Jordan), independent of the module's own floating-point rank test."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutual.governance.disclosure import (
    PRIMARY,
    SECONDARY,
    Entry,
    protect_list,
    protect_table,
    publish_count,
    publish_rate,
    round_to,
)

small_or_not = st.one_of(st.integers(0, 9), st.integers(0, 60), st.integers(0, 5000))
tables = st.integers(1, 5).flatmap(lambda c: st.lists(st.lists(small_or_not, min_size=c, max_size=c),
                                                        min_size=1, max_size=5))


def attack(values: list[int], lines: list[tuple[list[int], int]], hidden: set[int]) -> set[int]:
    """Every hidden entry an attacker can compute exactly from the lines and the published entries (taken as
    exact): reduce the system over the hidden unknowns, then any row with a single unknown names its value."""
    rows = []
    for parts, total in lines:
        coeff = {i: Fraction(1) for i in parts}
        coeff[total] = coeff.get(total, Fraction(0)) - 1
        rows.append({i: c for i, c in coeff.items() if i in hidden and c != 0})
    unknowns = sorted(hidden)
    matrix = [[row.get(u, Fraction(0)) for u in unknowns] for row in rows]
    pivot_row = 0
    for col in range(len(unknowns)):
        found = next((r for r in range(pivot_row, len(matrix)) if matrix[r][col] != 0), None)
        if found is None:
            continue
        matrix[pivot_row], matrix[found] = matrix[found], matrix[pivot_row]
        lead = matrix[pivot_row][col]
        matrix[pivot_row] = [v / lead for v in matrix[pivot_row]]
        for r in range(len(matrix)):
            if r != pivot_row and matrix[r][col] != 0:
                factor = matrix[r][col]
                matrix[r] = [a - factor * b for a, b in zip(matrix[r], matrix[pivot_row], strict=True)]
        pivot_row += 1
    return {unknowns[next(i for i, v in enumerate(row) if v != 0)] for row in matrix
            if sum(v != 0 for v in row) == 1}


def table_system(counts: list[list[int]]) -> tuple[list[int], list[tuple[list[int], int]]]:
    n_rows, n_cols = len(counts), len(counts[0])
    flat = [v for r in counts for v in r]
    values = flat + [sum(r) for r in counts] + [sum(counts[r][c] for r in range(n_rows)) for c in range(n_cols)]
    values.append(sum(flat))
    rt, ct, grand = n_rows * n_cols, n_rows * n_cols + n_rows, n_rows * n_cols + n_rows + n_cols
    lines = [([r * n_cols + c for c in range(n_cols)], rt + r) for r in range(n_rows)]
    lines += [([r * n_cols + c for r in range(n_rows)], ct + c) for c in range(n_cols)]
    lines += [([rt + r for r in range(n_rows)], grand), ([ct + c for c in range(n_cols)], grand)]
    return values, lines


def entries_of(t) -> list[Entry]:  # type: ignore[no-untyped-def]
    return [e for row in t.cells for e in row] + t.row_totals + t.col_totals + [t.grand]


@settings(max_examples=300, deadline=None)
@given(counts=tables)
def test_a_protected_table_never_shows_1_to_7_and_hides_nothing_recoverable(counts: list[list[int]]) -> None:
    published = entries_of(protect_table(counts))
    values, lines = table_system(counts)
    for true, e in zip(values, published, strict=True):
        if e.shown is not None:
            assert e.shown not in range(1, 8)
            assert e.shown % 5 == 0 and abs(e.shown - true) <= 2.5
        else:
            assert e.reason in (PRIMARY, SECONDARY)
        if 1 <= true <= 7:
            assert e.suppressed, f"{true} published"
    hidden = {i for i, e in enumerate(published) if e.suppressed}
    assert not attack(values, lines, hidden), "a suppressed count can be computed from the published ones"


@settings(max_examples=300, deadline=None)
@given(counts=st.lists(small_or_not, min_size=1, max_size=12))
def test_a_list_with_its_total_hides_nothing_recoverable(counts: list[int]) -> None:
    shown, total = protect_list(counts)
    values = [*counts, sum(counts)]
    hidden = {i for i, e in enumerate([*shown, total]) if e.suppressed}
    assert not attack(values, [(list(range(len(counts))), len(counts))], hidden)
    assert all(e.shown not in range(1, 8) for e in [*shown, total])


def test_one_small_count_in_a_row_takes_the_smallest_other_cell_with_it() -> None:
    t = protect_table([[3, 40, 120], [50, 60, 70]])
    assert t.cells[0][0] == Entry(None, PRIMARY)
    assert t.cells[0][1] == Entry(None, SECONDARY), "40 is the row's smallest other cell"
    assert t.cells[1][0].suppressed and t.cells[1][1].suppressed, "their columns need a second suppression too"
    assert t.cells[0][2] == Entry(120, "rounded to 5") and t.grand.shown == 345


def test_counts_are_rounded_to_the_nearest_five_and_zero_stays_zero() -> None:
    assert [round_to(n) for n in (8, 12, 13, 17, 18, 22)] == [10, 10, 15, 15, 20, 20]
    assert publish_count(0) == Entry(0, "zero") and publish_count(7).suppressed and publish_count(8).shown == 10
    with pytest.raises(ValueError):
        publish_count(-1)


def test_rates_are_made_from_the_published_counts() -> None:
    assert publish_rate(publish_count(52), publish_count(98)) == pytest.approx(50 / 100)
    assert publish_rate(publish_count(5), publish_count(98)) is None
    assert publish_rate(publish_count(9), publish_count(0)) is None
