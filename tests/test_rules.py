"""Rule helpers, specified by properties."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutual.ingest.rules import _median_of_counts, one_edit_apart, suggest_codes

codes = st.text(alphabet="R0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=2, max_size=5)


@given(codes, st.integers(min_value=0, max_value=4), st.sampled_from("0123456789ABCXYZ"))
def test_one_changed_character_is_one_edit_apart(code: str, at: int, ch: str) -> None:
    at %= len(code)
    typo = code[:at] + ch + code[at + 1:]
    assert one_edit_apart(code, typo) == (typo != code)


@given(codes)
def test_a_code_is_not_one_edit_from_itself_and_the_relation_is_symmetric(code: str) -> None:
    assert not one_edit_apart(code, code)
    assert one_edit_apart(code, code + "X") and one_edit_apart(code + "X", code)


def test_swapped_neighbours_are_one_edit_apart_but_distant_swaps_are_not() -> None:
    assert one_edit_apart("R1H", "1RH")
    assert not one_edit_apart("RAH", "HAR")


def test_the_trusts_own_code_is_suggested_first() -> None:
    known = ["RTD", "RTE", "RTF", "RTG", "RTH", "RTK", "R1H"]
    assert suggest_codes("RTJ", known, in_file={"RTF"}) == ["RTF", "RTD", "RTE"]
    assert suggest_codes("R1X", known, in_file=set()) == ["R1H"]
    assert suggest_codes("ZZZZZ", known, in_file=set()) == []


# -- medians from counts (the sudden-change rule's statistics) ------------------------------------------------

levels = st.lists(st.one_of(st.integers(min_value=-50, max_value=500).map(float),
                            st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda v: round(v, 2))),
                  min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(st.lists(levels, min_size=1, max_size=4))
def test_the_median_found_from_distinct_values_and_counts_is_the_median(series: list[list[float]]) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE pts (s INTEGER, value DOUBLE)")
    con.executemany("INSERT INTO pts VALUES (?, ?)", [(i, v) for i, vs in enumerate(series) for v in vs])
    con.execute("CREATE TABLE counts AS SELECT s, value, count(*) AS c FROM pts GROUP BY ALL")
    ours = dict(con.execute(f"SELECT s, med FROM ({_median_of_counts('counts', 's', 'value')})").fetchall())
    theirs = dict(con.execute("SELECT s, median(value) FROM pts GROUP BY s").fetchall())
    assert ours.keys() == theirs.keys()
    for s, med in theirs.items():
        assert ours[s] == pytest.approx(med, rel=1e-12, abs=1e-9)
