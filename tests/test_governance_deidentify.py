"""Record-level extracts: opted-out patients never appear, only agreed fields leave (generalised), identifiers
become the agreement's pseudonyms (the engine's HMAC equals Python's), and k-anonymity is reported."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutual.governance import episodes, nhs_number
from mutual.governance.deidentify import ExtractError, extract
from mutual.governance.pseudonym import agreement_key, hmac_pads, pseudonym, sql_pseudonym

SECRET = bytes(range(100, 132))
TRUSTS = ("R1H", "RAL", "RYJ")


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return episodes.generate(3000, TRUSTS, date(2020, 11, 1), 90, seed=3)


def run(table: pa.Table, **kw: object) -> tuple[pa.Table, object]:
    con = duckdb.connect()
    con.register("episodes", table)
    out, report = extract(con, "episodes", key=agreement_key(SECRET, "A1"), **kw)  # type: ignore[arg-type]
    assert out is not None
    return out, report


def test_generated_episodes_are_plausible(table: pa.Table) -> None:
    assert table.column_names == list(episodes.COLUMNS) and table.num_rows == 3000
    rows = table.slice(0, 200).to_pylist()
    assert all(nhs_number.is_valid(str(r["nhs_number"])) for r in rows)
    assert all(r["discharge_date"] >= r["admission_date"] > r["date_of_birth"] for r in rows)
    assert all(" " in r["postcode"] and r["trust"] in TRUSTS for r in rows)
    assert episodes.generate(50, TRUSTS, date(2020, 11, 1), 90, seed=3).equals(table.slice(0, 0)) is False
    assert episodes.generate(50, TRUSTS, date(2020, 11, 1), 90, seed=4).equals(
        episodes.generate(50, TRUSTS, date(2020, 11, 1), 90, seed=4))


@settings(max_examples=25, deadline=None)
@given(share=st.floats(0, 1), fields=st.lists(st.sampled_from(["sex", "trust", "postcode", "date_of_birth",
                                                               "admission_date", "primary_diagnosis"]),
                                              unique=True, max_size=6))
def test_opted_out_patients_never_appear_and_only_agreed_fields_leave(table: pa.Table, share: float,
                                                                      fields: list[str]) -> None:
    people = sorted(set(table.column("nhs_number").to_pylist()))
    opted = people[: int(len(people) * share)]
    out, report = run(table, fields=["nhs_number", *fields], optouts=pa.array(opted, pa.int64()))
    key = agreement_key(SECRET, "A1")
    forbidden = {pseudonym(key, str(n)) for n in opted}
    assert not forbidden & set(out.column("patient").to_pylist())
    assert report.rows_out == out.num_rows == sum(n not in set(opted) for n in table.column("nhs_number").to_pylist())
    assert set(out.column_names) <= {"patient", "sex", "trust", "postcode_district", "age_band", "admission_month",
                                     "primary_diagnosis"}
    text = str(out.to_pylist()[:50])
    assert not any(str(n) in text for n in people[:200]), "no raw NHS number leaves"


def test_quasi_identifiers_are_generalised(table: pa.Table) -> None:
    out, report = run(table, fields=["date_of_birth", "postcode", "admission_date", "discharge_date", "sex",
                                     "trust"])
    row = out.to_pylist()[0]
    assert row["age_band"] == "90+" or row["age_band"].split("-")[1] == str(int(row["age_band"].split("-")[0]) + 4)
    assert " " not in row["postcode_district"] and len(row["admission_month"]) == 7
    assert report.smallest_group is not None and report.below_k >= 0 and report.k == 5  # type: ignore[attr-defined]


def test_the_engines_hmac_is_the_python_pseudonym() -> None:
    key = agreement_key(SECRET, "A7")
    ipad, opad = hmac_pads(key)
    values = ["9434765919", "episode:12", "x" * 100, "é"]
    con = duckdb.connect()
    con.register("vals", pa.table({"v": values}))
    got = [r[0] for r in con.execute(f"SELECT {sql_pseudonym('v')} FROM vals", {"ipad": ipad, "opad": opad})
           .fetchall()]
    assert got == [pseudonym(key, v) for v in values]


def test_pseudonyms_differ_between_agreements(table: pa.Table) -> None:
    con = duckdb.connect()
    con.register("episodes", table)
    a, _ = extract(con, "episodes", fields=["nhs_number"], key=agreement_key(SECRET, "A1"))
    b, _ = extract(con, "episodes", fields=["nhs_number"], key=agreement_key(SECRET, "A2"))
    assert a is not None and b is not None
    assert not set(a.column("patient").to_pylist()) & set(b.column("patient").to_pylist())


def test_an_unknown_field_is_refused_by_name(table: pa.Table) -> None:
    with pytest.raises(ExtractError, match="no field ethnicity"):
        run(table, fields=["sex", "ethnicity"])
