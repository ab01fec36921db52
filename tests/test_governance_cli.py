"""Partners and agreements from the command line: every step goes through the transition table, refusals are
one clear line, and each change lands in the audit log, which stays intact."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mutual.app import open_mutual
from mutual.cli import app

# the specification runs with the control plane on each engine (tests/engines.py)
pytestmark = pytest.mark.usefixtures("control_plane")

AGREEMENT = """id: A-2026-01
partner: uni-leeds
title: Winter pressure study
purpose: Study how bed occupancy and staff absence moved together in winter 2020-21.
purpose_category: research
legal_basis_art6: 6(1)(e) public task
confidentiality_basis: anonymised
datasets: [capacity]
fields: {capacity: [org, metric, period, value]}
granularity: aggregate
orgs: [R1H, RAL]
data_from: 2020-09-01
data_to: 2021-03-31
start: 2026-01-01
end: 2026-12-31
retention_days: 90
"""


def run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--home", str(home)], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_an_agreement_from_draft_to_active_and_suspended_with_every_step_audited(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    with open_mutual(home, create=True):
        pass
    assert run(home, "partners", "add", "uni-leeds", "--name", "University of Leeds", "--kind", "university",
               "--by", "lead.one")[0] == 0
    code, text = run(home, "partners", "add", "bigco", "--name", "BigCo", "--kind", "megacorp", "--by", "x")
    assert code == 1 and "partner kind 'megacorp'" in text
    (tmp_path / "a.yaml").write_text(AGREEMENT)
    code, text = run(home, "agreements", "draft", str(tmp_path / "a.yaml"), "--by", "lead.one")
    assert code == 0 and "deletion due 2027-03-31" in text
    (tmp_path / "bad.yaml").write_text(AGREEMENT.replace("A-2026-01", "A-2").replace("[capacity]", "[patients]"))
    code, text = run(home, "agreements", "draft", str(tmp_path / "bad.yaml"), "--by", "lead.one")
    assert code == 1 and "bad.yaml" in text and "dataset 'patients' is unknown" in text

    assert run(home, "agreements", "submit", "A-2026-01", "--by", "lead.one", "--role", "data_sharing_lead")[0] == 0
    code, text = run(home, "agreements", "approve", "A-2026-01", "--by", "lead.one", "--role", "ig_officer")
    assert code == 1 and "drafted agreement A-2026-01 and so cannot approve it" in text
    assert run(home, "agreements", "approve", "A-2026-01", "--by", "ig.two", "--role", "ig_officer")[0] == 0
    code, text = run(home, "agreements", "activate", "A-2026-01", "--by", "ig.two", "--role", "ig_officer",
                     "--on", "2026-06-01")
    assert code == 1 and "Data protection impact assessment: not on record" in text
    for item in ("dpia", "dspt", "dtac", "outcome_plan"):
        assert run(home, "partners", "check", item, "--partner", "uni-leeds", "--evidence", f"docs/{item}.pdf",
                   "--review-by", "2027-06-01", "--by", "ig.two")[0] == 0
    code, text = run(home, "agreements", "activate", "A-2026-01", "--by", "ig.two", "--role", "ig_officer",
                     "--on", "2026-06-01")
    assert code == 0 and "is active" in text, text
    code, text = run(home, "agreements", "suspend", "A-2026-01", "--by", "ig.two", "--role", "ig_officer")
    assert code == 1 and "needs a reason" in text
    assert run(home, "agreements", "suspend", "A-2026-01", "--by", "ig.two", "--role", "ig_officer",
               "--reason", "partner breached the publication terms")[0] == 0
    code, text = run(home, "agreements", "show", "A-2026-01")
    assert "(suspended)" in text and "onboarding: complete" in text

    code, text = run(home, "audit", "verify")
    assert code == 0 and "10 events, chain intact" in text, text
    log = run(home, "audit", "log")[1]
    assert "agreement.suspend" in log and "agreement.approve" in log and "onboarding.record" in log
