"""The policy gate: a request is allowed only within an active agreement's purpose, dataset, fields,
organisations, dates and granularity; every decision is audited, allow or deny; released counts pass disclosure
control and records are de-identified; and no other code path reads the data plane for a partner."""

from __future__ import annotations

import itertools
import re
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ORGS_CSV
from mutual.app import Mutual, open_mutual
from mutual.governance import audit, episodes
from mutual.governance.agreements import Actor, Agreement, Granularity, Role, Status
from mutual.governance.gate import GateDenied, Request, decide, release_capacity, release_extract
from mutual.governance.records import add_partner, draft, partners, record_item, step

# the specification runs with the control plane on each engine (tests/engines.py)
pytestmark = pytest.mark.usefixtures("control_plane", "data_plane")

TODAY = date(2026, 6, 1)
SRC = Path(__file__).resolve().parents[1] / "src" / "mutual"
TERMS = dict(partner="uni-leeds", title="Winter study",
             purpose="Study how bed occupancy and staff absence moved together in winter.",
             purpose_category="research", legal_basis_art6="6(1)(e) public task", orgs=["R1H", "RAL"],
             data_from=date(2021, 1, 1), data_to=date(2021, 1, 31), start=date(2026, 1, 1), end=date(2026, 12, 31),
             retention_days=30)
AGGREGATE = Agreement.model_validate({**TERMS, "id": "AGG", "confidentiality_basis": "anonymised",
                                      "datasets": ["capacity"], "granularity": "aggregate",
                                      "fields": {"capacity": ["org", "metric", "period", "value"]}})
RECORDS = Agreement.model_validate({**TERMS, "id": "REC", "confidentiality_basis": "section 251 support",
                                    "legal_basis_art9": "9(2)(j) research", "datasets": ["apc_episodes"],
                                    "granularity": "pseudonymised_record",
                                    "fields": {"apc_episodes": ["nhs_number", "sex", "date_of_birth", "trust",
                                                                "primary_diagnosis"]}})


def ask(**changes: object) -> Request:
    base = dict(agreement="AGG", dataset="capacity", fields=("org", "period", "value"), orgs=("R1H",),
                start=date(2021, 1, 5), end=date(2021, 1, 10), granularity=Granularity.AGGREGATE)
    return Request(**{**base, **changes})  # type: ignore[arg-type]


def test_the_authorisation_matrix_state_dataset_field_organisation_dates_granularity() -> None:
    cases = {
        "dataset": [("capacity", True), ("apc_episodes", False)],
        "fields": [(("org", "value"), True), (("org", "dims"), False), ((), False)],
        "orgs": [(("R1H",), True), (("R1H", "RYJ"), False), ((), False)],
        "dates": [((date(2021, 1, 1), date(2021, 1, 31)), True), ((date(2020, 12, 31), date(2021, 1, 3)), False)],
        "granularity": [(Granularity.AGGREGATE, True), (Granularity.PSEUDONYMISED, False)],
        "purpose": [(None, True), ("research", True), ("product_development", False)],
    }
    for status in Status:
        for (ds, d_ok), (fs, f_ok), (os_, o_ok), ((a, b), t_ok), (g, g_ok), (p, p_ok) in itertools.product(
                *cases.values()):
            reasons = decide(AGGREGATE, status, ask(dataset=ds, fields=fs, orgs=os_, start=a, end=b, granularity=g,
                                                    purpose=p), TODAY)
            allowed = status == Status.ACTIVE and d_ok and f_ok and o_ok and t_ok and g_ok and p_ok
            assert (reasons == []) == allowed, (status, ds, fs, os_, a, g, p, reasons)
    assert decide(AGGREGATE, Status.ACTIVE, ask(), date(2027, 1, 1)) != [], "not after the agreement's end"
    assert decide(RECORDS, Status.ACTIVE, ask(agreement="REC", dataset="apc_episodes", fields=("sex",),
                                              granularity=Granularity.PSEUDONYMISED), TODAY) == []


def setup(m: Mutual, tmp: Path, agreement: Agreement) -> None:
    (tmp / "orgs.csv").write_text(ORGS_CSV)
    m.import_orgs(tmp / "orgs.csv")
    if not any(p.code == "uni-leeds" for p in partners(m.sessions)):
        add_partner(m.sessions, "uni-leeds", "University of Leeds", "university", by="lead")
        for item in ("dpia", "dspt", "dtac", "outcome_plan"):
            record_item(m.sessions, "uni-leeds", item, f"{item}.pdf", date(2027, 1, 1), by="ig",
                        recorded=date(2026, 1, 2))
    draft(m.sessions, agreement, by="lead")
    step(m.sessions, agreement.id, "submit", Actor("lead", Role.LEAD), today=TODAY)
    step(m.sessions, agreement.id, "approve", Actor("ig", Role.IG), today=TODAY)
    step(m.sessions, agreement.id, "activate", Actor("ig", Role.IG), today=TODAY)


def gate_events(m: Mutual) -> list[str]:
    with m.sessions() as s:
        return [e.action for e in audit.events(s) if e.action.startswith("gate.")]


def test_released_counts_pass_disclosure_control_and_every_decision_is_audited(tmp_path: Path) -> None:
    with open_mutual(tmp_path / "ws", create=True) as m:
        setup(m, tmp_path, AGGREGATE)
        (tmp_path / "v.csv").write_text("org,metric,date,value\nR1H,ga_beds_occupied,2021-01-05,452\n"
                                        "R1H,covid_admissions,2021-01-05,3\nRAL,ga_beds_occupied,2021-01-05,900\n"
                                        "R1H,ga_beds_occupied,2021-02-05,500\n")
        m.ingest(tmp_path / "v.csv")
        table = release_capacity(m.sessions, m.store, ask(), actor="partner:uni-leeds", today=TODAY)
        rows = table.to_pylist()
        assert table.column_names == ["org", "period", "value", "disclosure"]
        assert {(r["org"], r["value"], r["disclosure"]) for r in rows} == {
            ("R1H", 450, "rounded to 5"), ("R1H", None, "suppressed: 1–7")}, "RAL and February are not asked for"
        with pytest.raises(GateDenied, match=r"field\(s\) dims of capacity are not agreed"):
            release_capacity(m.sessions, m.store, ask(fields=("org", "dims")), actor="partner:uni-leeds",
                             today=TODAY)
        assert gate_events(m) == ["gate.allow", "gate.release", "gate.deny"]
        with m.sessions() as s:
            assert audit.verify(s)[0] == []
            released = next(e for e in audit.events(s) if e.action == "gate.release")
        assert released.details == {"rows": 2, "suppressed": 1}


def test_an_extract_leaves_out_opted_out_patients_and_other_trusts(tmp_path: Path) -> None:
    table = episodes.generate(4000, ("R1H", "RAL", "RYJ"), date(2021, 1, 1), 31, seed=9)
    pq.write_table(table, tmp_path / "ep.parquet")
    people = sorted(set(table.column("nhs_number").to_pylist()))
    opted = pa.array(people[::10], pa.int64())
    with open_mutual(tmp_path / "ws", create=True) as m:
        setup(m, tmp_path, RECORDS)
        request = ask(agreement="REC", dataset="apc_episodes", fields=("nhs_number", "sex", "trust"),
                      orgs=("R1H", "RAL"), start=date(2021, 1, 1), end=date(2021, 1, 31),
                      granularity=Granularity.PSEUDONYMISED)
        out, _ = release_extract(m.sessions, m.workspace.home, f"read_parquet('{tmp_path / 'ep.parquet'}')",
                                 request, actor="partner:uni-leeds", today=TODAY, optouts=opted)
        again, _ = release_extract(m.sessions, m.workspace.home, f"read_parquet('{tmp_path / 'ep.parquet'}')",
                                   request, actor="partner:uni-leeds", today=TODAY, optouts=opted)
    assert out is not None and again is not None
    assert set(out.column("trust").to_pylist()) == {"R1H", "RAL"}
    kept = [r for r in table.to_pylist() if r["trust"] != "RYJ" and r["nhs_number"] not in set(opted.to_pylist())]
    assert out.num_rows == len(kept) and out.column_names == ["patient", "sex", "trust"]
    assert sorted(out.column("patient").to_pylist()) == sorted(again.column("patient").to_pylist()), "stable"


def test_no_second_path_reads_data_for_partners() -> None:
    """Only the gate calls the extract, and no other governance module reads the data plane."""
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        rel = path.relative_to(SRC).as_posix()
        if rel not in ("governance/gate.py", "governance/deidentify.py"):
            assert not re.search(r"from mutual\.governance\.deidentify import|deidentify\.extract", text), rel
        if rel.startswith("governance/") and rel not in ("governance/gate.py", "governance/deidentify.py"):
            assert not re.search(r"\bstore\.|observations\(|read_parquet|\.con\.|duckdb", text), rel


def test_the_imported_opt_out_list_is_applied_to_every_extract(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mutual.cli import app

    table = episodes.generate(500, ("R1H", "RAL"), date(2021, 1, 1), 31, seed=2)
    pq.write_table(table, tmp_path / "ep.parquet")
    people = sorted(set(table.column("nhs_number").to_pylist()))
    (tmp_path / "optouts.txt").write_text("\n".join(str(n) for n in people[:40]) + "\n12345\n")
    with open_mutual(tmp_path / "ws", create=True) as m:
        setup(m, tmp_path, RECORDS)
    result = CliRunner().invoke(app, ["optouts", "import", str(tmp_path / "optouts.txt"), "--by", "ig",
                                      "--home", str(tmp_path / "ws")])
    assert result.exit_code == 0 and "40 patients opted out" in result.output and "line 41" in result.output
    with open_mutual(tmp_path / "ws") as m:
        request = ask(agreement="REC", dataset="apc_episodes", fields=("nhs_number",), orgs=("R1H", "RAL"),
                      start=date(2021, 1, 1), end=date(2021, 1, 31), granularity=Granularity.PSEUDONYMISED)
        out, report = release_extract(m.sessions, m.workspace.home, f"read_parquet('{tmp_path / 'ep.parquet'}')",
                                      request, actor="partner:uni-leeds", today=TODAY, store=m.store)
    assert out is not None
    assert out.num_rows == sum(n not in set(people[:40]) for n in table.column("nhs_number").to_pylist())
    assert report.opted_out == sum(n in set(people[:40]) for n in table.column("nhs_number").to_pylist())
    assert report.rows_in == table.num_rows
