"""Pure rule helpers, specified by properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mutual.ingest.rules import one_edit_apart, suggest_codes

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
