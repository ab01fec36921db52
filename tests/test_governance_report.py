"""The annual public value report of a trust and of its ICS: every agreement covering them with the Data Uses
Register's fields, releases and refusals counted from the audit log through disclosure control, as public HTML,
CSV and a PDF whose pages render."""

from __future__ import annotations

import contextlib
import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from conftest import ORGS_CSV
from mutual.app import open_mutual
from mutual.cli import app
from mutual.governance.agreements import Actor, Agreement, AgreementError, Granularity, Role
from mutual.governance.gate import GateDenied, Request, release_capacity
from mutual.governance.outcomes import Effect
from mutual.governance.records import add_partner, draft, record_item, record_outcome, settle_period, step
from mutual.web.app import create_app

# the specification runs with the control plane on each engine (tests/engines.py)
pytestmark = pytest.mark.usefixtures("control_plane")

YEAR = datetime.now(UTC).year
TODAY = datetime.now(UTC).date()


def agreement(agreement_id: str, partner: str, **more: object) -> Agreement:
    return Agreement.model_validate({
        "id": agreement_id, "partner": partner, "title": "Study", "purpose_category": "service_evaluation",
        "purpose": "Find which trusts need beds moved to them first in a surge.",
        "legal_basis_art6": "6(1)(e) public task", "confidentiality_basis": "anonymised", "datasets": ["capacity"],
        "fields": {"capacity": ["org", "period", "value"]}, "granularity": "aggregate", "orgs": ["R1H", "RAL"],
        "data_from": "2021-01-01", "data_to": "2021-01-31", "start": f"{YEAR}-01-01", "end": f"{YEAR + 1}-12-31",
        "retention_days": 30, **more})


def test_reports_count_releases_from_the_audit_log_through_disclosure_control(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    with open_mutual(home, create=True) as m:
        (tmp_path / "orgs.csv").write_text(ORGS_CSV)
        m.import_orgs(tmp_path / "orgs.csv")
        (tmp_path / "v.csv").write_text("org,metric,date,value\nR1H,ga_beds_occupied,2021-01-05,452\n")
        m.ingest(tmp_path / "v.csv")
        for code, kind in (("bigco", "large_technology"), ("uni", "university")):
            add_partner(m.sessions, code, code.title(), kind, by="lead")
            for item in ("dpia", "dspt", "dtac", "outcome_plan"):
                record_item(m.sessions, code, item, "doc.pdf", date(YEAR + 2, 1, 1), by="ig",
                            recorded=date(YEAR, 1, 1))
        terms = {"baseline": 40, "target": 34, "better": "lower", "value_per_unit": 1000, "gain_share": 0.2,
                 "cap": 5000, "risk_share": 0.5, "refund_cap": 2000}
        outcome = {"name": "Beds occupied", "metric": "ga_beds_occupied", "baseline": 40, "target": 34,
                   "better": "lower"}
        draft(m.sessions, agreement("BIG-1", "bigco", commercial=terms, outcomes=[outcome]), by="lead")
        draft(m.sessions, agreement("UNI-1", "uni", orgs=["RYJ"]), by="lead")
        for action, actor in (("submit", Actor("lead", Role.LEAD)), ("approve", Actor("ig", Role.IG)),
                              ("activate", Actor("ig", Role.IG))):
            step(m.sessions, "BIG-1", action, actor, today=TODAY)
        ask = Request(agreement="BIG-1", dataset="capacity", fields=("org", "value"), orgs=("R1H",),
                      start=date(2021, 1, 1), end=date(2021, 1, 31), granularity=Granularity.AGGREGATE)
        for _ in range(12):
            release_capacity(m.sessions, m.store, ask, actor="partner:bigco", today=TODAY)
        for _ in range(3):
            with contextlib.suppress(GateDenied):
                release_capacity(m.sessions, m.store, Request(**{**ask.__dict__, "orgs": ("RYJ",)}),
                                 actor="partner:bigco", today=TODAY)
        effect = Effect(-2.5, -4.0, -1.0, 0.95, ("R1H",), ("RAL",), 0.1, -1.0, 1.2, "Beds fell; not proof of cause.")
        record_outcome(m.sessions, "BIG-1", "Beds occupied", date(2021, 1, 15), effect, by="analyst")
        with pytest.raises(AgreementError, match="no outcome measure 'Deaths'"):
            record_outcome(m.sessions, "BIG-1", "Deaths", date(2021, 1, 15), effect, by="analyst")
        first = settle_period(m.sessions, "BIG-1", f"{YEAR}-Q1", 33, by="finance")
        assert first.amount == 1400.0  # 20% of 7 beds x £1,000 saved
        fix = settle_period(m.sessions, "BIG-1", f"{YEAR}-Q1", 36, by="finance", correct=first.seq,
                            why="late returns")
        assert fix.amount == -2400.0 and fix.corrects == first.seq  # now owed: a £1,000 refund
        with pytest.raises(AgreementError, match="no commercial terms"):
            settle_period(m.sessions, "UNI-1", f"{YEAR}-Q1", 30, by="finance")
        with m.sessions.begin() as sess, pytest.raises(DBAPIError, match="never changed"):
            sess.connection().exec_driver_sql("UPDATE ledger_entry SET amount = 0")
        with TestClient(create_app(mutual=m)) as client:
            page = client.get(f"/reports/R1H/{YEAR}", headers={"accept": "text/html"})
            assert page.status_code == 200, page.text  # public: no sign-in
            assert "Bigco" in page.text and "large technology firm" in page.text and "Uni" not in page.text
            assert "about 10 time(s)" in page.text and "fewer than 8 time(s)" in page.text
            assert "Beds occupied (baseline 40, target 34): Beds fell; not proof of cause." in page.text
            rows = list(csv.DictReader(io.StringIO(client.get(f"/reports/R1H/{YEAR}?format=csv").text)))
            assert [(r["agreement"], r["releases"], r["refusals"], r["commercial"], r["paid_gbp"],
                     r["refunded_gbp"]) for r in rows] == [("BIG-1", "10", "<8", "yes", "0.00", "1000.00")]
            ics = list(csv.DictReader(io.StringIO(client.get(f"/reports/E54000029/{YEAR}?format=csv").text)))
            assert [r["agreement"] for r in ics] == ["BIG-1"], "RYJ is in North West London, not East London"
            nw = list(csv.DictReader(io.StringIO(client.get(f"/reports/E54000027/{YEAR}?format=csv").text)))
            assert [r["agreement"] for r in nw] == ["UNI-1"]
            assert client.get(f"/reports/NOPE/{YEAR}").status_code == 404
            register = client.get("/register", headers={"accept": "text/html"})
            assert register.status_code == 200 and "Bigco" in register.text and "service evaluation" in register.text
            row = register.text.split('id="register"')[1].split("</table>")[0]
            assert ">10<" in row.replace(" ", ""), "12 releases, rounded to 10"
    result = CliRunner().invoke(app, ["report", "annual", "--org", "R1H", "--year", str(YEAR), "--format", "pdf",
                                      "--out", str(tmp_path / "r.pdf"), "--home", str(home)])
    assert result.exit_code == 0, result.output
    pdf = pdfium.PdfDocument(str(tmp_path / "r.pdf"))
    assert len(pdf) >= 1
    text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert "Barts Health" in text and "BIG-1" in text and "Releases / refusals: 10 / <8" in text
    image = pdf[0].render(scale=1).to_pil()
    shades = set(image.convert("L").get_flattened_data())
    assert image.size[0] > 500 and len(shades) > 2, "the page renders with content"
    pdf.close()
    html = CliRunner().invoke(app, ["report", "annual", "--org", "R1H", "--year", str(YEAR), "--home", str(home)])
    assert html.exit_code == 0 and "What Barts Health NHS Trust's data was shared for" in html.output
