"""NHS numbers and pseudonyms: the check digit, and keyed pseudonyms that are stable within an agreement and
differ across agreements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mutual.governance import nhs_number
from mutual.governance.pseudonym import agreement_key, pseudonym, pseudonyms

SECRET = bytes(range(32))
nine_digits = st.text("0123456789", min_size=9, max_size=9)


def test_the_published_example_number_is_valid_and_a_typo_is_caught() -> None:
    assert nhs_number.is_valid("943 476 5919") and nhs_number.display("9434765919") == "943 476 5919"
    assert nhs_number.problem("943 476 5918") == ("'943 476 5918' fails the check digit (expected 9): "
                                                  "a digit is mistyped")
    assert "has 9 digits" in (nhs_number.problem("943476591") or "")
    assert nhs_number.problem("") == "it is blank"


@given(stem=nine_digits, slip=st.integers(0, 9), at=st.integers(0, 9))
def test_changing_one_digit_of_a_valid_number_always_breaks_it(stem: str, slip: int, at: int) -> None:
    check = nhs_number.check_digit(stem)
    if check is None:
        return
    number = stem + str(check)
    changed = number[:at] + str((int(number[at]) + 1 + slip % 9) % 10) + number[at + 1:]
    assert nhs_number.is_valid(number) and not nhs_number.is_valid(changed)


def test_generated_numbers_are_valid_distinct_and_in_the_test_range() -> None:
    numbers = nhs_number.generate(20_000, np.random.default_rng(1))
    assert len(set(numbers.tolist())) == 20_000
    assert all(nhs_number.is_valid(str(n)) and str(n).startswith("9") for n in numbers[:2000].tolist())


@given(ids=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30, unique=True),
       a=st.text(min_size=1, max_size=8), b=st.text(min_size=1, max_size=8))
def test_pseudonyms_are_stable_within_an_agreement_and_differ_across_agreements(ids: list[str], a: str,
                                                                               b: str) -> None:
    key_a, key_b = agreement_key(SECRET, a), agreement_key(SECRET, b)
    first, again = pseudonyms(key_a, ids), pseudonyms(key_a, reversed(ids))
    assert first == again and first == {i: pseudonym(key_a, i) for i in ids}
    assert len(set(first.values())) == len(ids), "no two identifiers share a pseudonym"
    if a != b:
        other = pseudonyms(key_b, ids)
        assert not set(first.values()) & set(other.values()), "extracts of two agreements cannot be joined"
    assert not set(first.values()) & set(ids)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        agreement_key(b"short", "A1")


def test_an_opt_out_file_keeps_every_valid_number_and_names_every_bad_line(tmp_path: Path) -> None:
    from mutual.governance.optouts import read_optouts

    plain = tmp_path / "optouts.txt"
    plain.write_text("943 476 5919\n\n9434765918\nnot-a-number\n943-476-5919\n4010232137\n")
    found = read_optouts(plain)
    assert found.numbers.to_pylist() == [9434765919, 4010232137]
    assert found.problems == ["optouts.txt line 3: '9434765918' fails the check digit (expected 9): a digit is "
                              "mistyped", "optouts.txt line 4: 'not-a-number' has characters other than digits, "
                              "spaces and hyphens"]
    table = tmp_path / "optouts.csv"
    table.write_text("nhs_number,date\n4010232137,2020-01-01\n123,2020-01-02\n")
    found = read_optouts(table)
    assert found.numbers.to_pylist() == [4010232137] and found.problems[0].startswith("optouts.csv line 3:")
