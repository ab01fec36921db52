"""Ingest: files become observations with lineage; every value is accepted or quarantined with a reason."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from mutual.app import Mutual
from mutual.ingest import rules
from mutual.store.base import ObservationQuery
from mutual.store.intake import IngestError

T0 = datetime(2020, 12, 10, 9, 0)

pytestmark = pytest.mark.usefixtures("data_plane")  # the store's specification: every engine, the same answers


def write(tmp_path: Path, name: str, text: str) -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def values(m: Mutual, metric: str, org: str | None = None, as_of: datetime | None = None) -> dict[date, float]:
    rows = m.store.observations(ObservationQuery(metric=metric, org=org, as_of=as_of)).to_pyarrow().to_pylist()
    return {r["period"]: r["value"] for r in rows}


def issues(m: Mutual, submission_id: int) -> list[dict[str, object]]:
    return m.store.issues(submission_id).to_pyarrow().to_pylist()


LONG = """org,metric,date,value
R1H,ga_beds_open,2020-12-01,1491
R1H,ga_beds_occupied,2020-12-01,1452
RAL,ga_beds_open,2020-12-01,"1,002"
RAL,ga_beds_occupied,01/12/2020,
"""


def test_a_long_file_is_stored_with_its_line_and_column(small_orgs: Mutual, tmp_path: Path) -> None:
    result = small_orgs.ingest(write(tmp_path, "long.csv", LONG), received_at=T0)
    s = result.submission
    assert (s.format, s.status, s.rows_read) == ("mutual-long", "loaded", 4)
    assert (s.values_read, s.accepted, s.quarantined, s.missing) == (3, 3, 0, 1)
    rows = small_orgs.store.observations(ObservationQuery(metric="ga_beds_occupied")).to_pyarrow().to_pylist()
    assert [(r["org"], r["period"], r["value"], r["row_num"], r["col"]) for r in rows] == [
        ("R1H", date(2020, 12, 1), 1452.0, 3, "value")]
    assert values(small_orgs, "ga_beds_open", "RAL") == {date(2020, 12, 1): 1002.0}, "thousands separator"


def test_the_same_file_twice_is_a_no_op(small_orgs: Mutual, tmp_path: Path) -> None:
    f = write(tmp_path, "long.csv", LONG)
    first = small_orgs.ingest(f, received_at=T0)
    again = small_orgs.ingest(f)
    assert again.already and again.submission.id == first.submission.id
    assert len(small_orgs.submissions()) == 1
    assert small_orgs.store.rows("SELECT count(*) FROM observation") == [(3,)]


def test_a_correction_supersedes_only_what_changed_and_as_of_sees_the_past(small_orgs: Mutual,
                                                                         tmp_path: Path) -> None:
    small_orgs.ingest(write(tmp_path, "v1.csv", LONG), received_at=T0)
    corrected = LONG.replace("1452", "1460")
    second = small_orgs.ingest(write(tmp_path, "v2.csv", corrected), received_at=datetime(2020, 12, 11, 9))
    assert second.submission.accepted == 3 and second.submission.stored == 1, "only the changed value is new"
    assert values(small_orgs, "ga_beds_occupied", "R1H") == {date(2020, 12, 1): 1460.0}
    assert values(small_orgs, "ga_beds_occupied", "R1H", as_of=datetime(2020, 12, 10, 12)) == {
        date(2020, 12, 1): 1452.0}
    assert values(small_orgs, "ga_beds_occupied", "R1H", as_of=datetime(2020, 12, 1)) == {}
    history = small_orgs.store.rows(
        "SELECT value, superseded_at FROM observation WHERE org = 'R1H' AND metric = 'ga_beds_occupied' "
        "ORDER BY recorded_at")
    assert history == [(1452.0, datetime(2020, 12, 11, 9)), (1460.0, None)], "nothing is deleted"


def test_a_late_replay_of_an_older_file_does_not_override_newer_knowledge(small_orgs: Mutual,
                                                                          tmp_path: Path) -> None:
    small_orgs.ingest(write(tmp_path, "new.csv", LONG.replace("1452", "1460")), received_at=datetime(2020, 12, 11))
    small_orgs.ingest(write(tmp_path, "old.csv", LONG), received_at=datetime(2020, 12, 10))
    assert values(small_orgs, "ga_beds_occupied", "R1H") == {date(2020, 12, 1): 1460.0}
    assert values(small_orgs, "ga_beds_occupied", "R1H", as_of=datetime(2020, 12, 10, 12)) == {
        date(2020, 12, 1): 1452.0}


BROKEN = """org,metric,date,value
R1X,ga_beds_open,2020-12-01,900
R1H,ga_beds_open,2020-12-01,95%
R1H,ga_beds_core_open,2020-12-01,1458
R1H,ga_beds_escalation_open,2020-12-01,30
R1H,ga_beds_occupied,2020-12-01,9999999
R1H,ga_beds_occupied,2020-12-02,12.5
R1H,ga_beds_occupied,2031-01-01,5
R1H,ga_beds_occupied,2020-13-45,5
R1H,no_such_metric,2020-12-01,5
RAL,ga_beds_open,2020-12-01,800
RAL,ga_beds_open,2020-12-01,800
RAL,ga_beds_occupied,2020-12-01,810
RYJ,ga_beds_open,2020-12-01,900
RYJ,ga_beds_open,2020-12-01,901
RYJ,ga_beds_occupied,2020-12-02,N/A
RYJ,ga_beds_occupied,2020-12-03,-
RYJ,staff_absent,2020-12-01,5
"""


def test_every_failure_is_reported_with_line_column_and_what_to_fix(small_orgs: Mutual, tmp_path: Path) -> None:
    s = small_orgs.ingest(write(tmp_path, "broken.csv", BROKEN), received_at=T0).submission
    found = {(i["row_num"], i["rule"]): str(i["message"]) for i in issues(small_orgs, s.id)}
    assert "did you mean R1H" in found[(2, "unknown_org")]
    assert "95% is a percentage" in found[(3, "not_a_number")]
    assert "above the highest plausible value" in found[(6, "out_of_bounds")]
    assert "not a whole number" in found[(7, "not_whole")]
    assert "after the file was received" in found[(8, "future_date")]
    assert "could not be read; expected YYYY-MM-DD" in found[(9, "bad_date")]
    assert "no_such_metric is not in the catalogue" in found[(10, "unknown_metric")]
    assert "repeats line 11" in found[(12, "duplicate")]
    assert "cannot be more" in found[(13, "over_capacity")]
    assert "different values (900 / 901) on lines 14, 15" in found[(14, "conflict")]
    assert (15, "conflict") in found
    assert all(rule not in {"not_a_number"} for (line, rule) in found if line in (16, 17)), "N/A and - are missing"
    assert (s.values_read, s.missing) == (15, 2)
    assert s.values_read == s.accepted + s.quarantined
    # accepted: R1H core 1458, escalation 30, RAL open 800 (once, plus its duplicate), RYJ staff_absent
    assert s.accepted == 5 and s.stored == 4
    assert values(small_orgs, "ga_beds_open", "RYJ") == {}, "conflicting values are all held back"


def test_a_total_that_is_not_the_sum_of_its_parts_is_accepted_with_a_warning(small_orgs: Mutual,
                                                                            tmp_path: Path) -> None:
    text = ("org,metric,date,value\nR1H,ga_beds_core_open,2020-12-01,1458\n"
            "R1H,ga_beds_escalation_open,2020-12-01,33\nR1H,ga_beds_open,2020-12-01,1500\n")
    s = small_orgs.ingest(write(tmp_path, "parts.csv", text), received_at=T0).submission
    (issue,) = issues(small_orgs, s.id)
    assert issue["rule"] == "parts_sum" and issue["severity"] == "warning" and issue["row_num"] == 4
    assert s.accepted == 3 and s.quarantined == 0
    flagged = small_orgs.store.rows("SELECT flagged FROM observation WHERE metric = 'ga_beds_open'")
    assert flagged == [(True,)]


def test_a_resubmission_corrects_a_quarantined_value(small_orgs: Mutual, tmp_path: Path) -> None:
    bad = small_orgs.ingest(write(tmp_path, "bad.csv", "org,metric,date,value\nR1H,ga_beds_open,2020-12-01,abc\n"),
                            received_at=T0).submission
    small_orgs.ingest(write(tmp_path, "good.csv", "org,metric,date,value\nR1H,ga_beds_open,2020-12-01,1491\n"),
                      received_at=datetime(2020, 12, 11))
    (issue,) = issues(small_orgs, bad.id)
    assert issue["status"] == "corrected"


WIDE_SPEC = """
name: test-wide
match: [Trust, Day, Open beds]
org: {column: Trust}
period: {column: Day, formats: ["%d/%m/%Y"]}
columns:
  Open beds: {metric: ga_beds_open}
  Occupied beds: {metric: ga_beds_occupied}
  Nurses off sick: {metric: staff_absent, dims: {staff_group: nursing, reason: other_sickness}}
ignore: [Notes]
"""


def test_missing_value_markers_are_missing_even_one_that_reads_as_a_number(small_orgs: Mutual,
                                                                           tmp_path: Path) -> None:
    spec = write(tmp_path, "spec.yaml", WIDE_SPEC + 'missing: ["", "n/k", "-999"]\n')
    f = write(tmp_path, "wide.csv", "Trust,Day,Open beds,Occupied beds,Nurses off sick\n"
                                    "R1H,01/12/2020,-999,N/K,40\n"
                                    "R1H,02/12/2020, -999 ,-1,N/A\n")
    s = small_orgs.ingest(f, spec=str(spec), received_at=T0).submission
    assert (s.values_read, s.missing, s.accepted, s.quarantined) == (3, 3, 1, 2)
    rules = sorted((i["row_num"], i["col"], i["rule"]) for i in issues(small_orgs, s.id))
    assert rules == [(3, "Nurses off sick", "not_a_number"), (3, "Occupied beds", "out_of_bounds")]


def test_a_wide_layout_is_read_through_a_spec_file(small_orgs: Mutual, tmp_path: Path) -> None:
    spec = write(tmp_path, "spec.yaml", WIDE_SPEC)
    f = write(tmp_path, "wide.csv", "Trust,Day,Open beds,Occupied beds,Nurses off sick,Notes,Extra\n"
                                    "R1H,01/12/2020,1491,1452,40,fine,x\n")
    s = small_orgs.ingest(f, spec=str(spec), received_at=T0).submission
    assert (s.format, s.accepted, s.quarantined) == ("test-wide", 3, 0)
    absent = small_orgs.store.rows("SELECT dims, value, col FROM observation WHERE metric = 'staff_absent'")
    assert absent == [("reason=other_sickness;staff_group=nursing", 40.0, "Nurses off sick")]
    (unmapped,) = issues(small_orgs, s.id)
    assert unmapped["rule"] == "unmapped_column" and "'Extra'" in str(unmapped["message"])


def test_a_layout_that_does_not_match_its_spec_is_rejected_naming_the_missing_heading(small_orgs: Mutual,
                                                                                    tmp_path: Path) -> None:
    spec = write(tmp_path, "spec.yaml", WIDE_SPEC)
    f = write(tmp_path, "wrong.csv", "Trust,Date,Open beds\nR1H,01/12/2020,1491\n")
    with pytest.raises(IngestError, match="expected a column headed 'Day'"):
        small_orgs.ingest(f, spec=str(spec))
    (sub,) = small_orgs.submissions()
    assert sub.status == "rejected" and "Day" in (sub.error or "")
    fixed_spec = write(tmp_path, "spec2.yaml", WIDE_SPEC.replace("Day", "Date"))
    retried = small_orgs.ingest(f, spec=str(fixed_spec), received_at=T0)
    assert retried.submission.status == "loaded" and retried.submission.id == sub.id


def test_an_unrecognised_header_asks_for_a_spec(small_orgs: Mutual, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no shipped spec recognises this header"):
        small_orgs.ingest(write(tmp_path, "odd.csv", "a,b,c\n1,2,3\n"))


def test_a_file_without_an_organisation_column_needs_org(small_orgs: Mutual, shared_data: Path) -> None:
    f = shared_data / "hl7-saner-examples" / "facility-import-supplies.csv"
    with pytest.raises(IngestError, match="--org CODE"):
        small_orgs.ingest(f)
    s = small_orgs.ingest(f, org="R1H", received_at=datetime(2020, 3, 31)).submission
    assert (s.accepted, s.quarantined) == (12, 0)
    rows = small_orgs.store.rows(
        "SELECT dims, value FROM observation WHERE metric = 'days_of_supply' ORDER BY dims")
    assert {("bound=lower;item=gloves", 15.0), ("bound=lower;item=n95_masks", 1.0),
            ("bound=lower;item=ventilator_supplies", 0.0)} <= set(rows)


def test_a_quarantined_value_can_be_released_once_confirmed(small_orgs: Mutual, tmp_path: Path) -> None:
    text = "org,metric,date,value\nRAL,ga_beds_open,2020-12-01,800\nRAL,ga_beds_occupied,2020-12-01,810\n"
    s = small_orgs.ingest(write(tmp_path, "over.csv", text), received_at=T0).submission
    assert values(small_orgs, "ga_beds_occupied", "RAL") == {}
    what, value = small_orgs.release(s.id, 3, "value")
    assert (what, value) == ("RAL ga_beds_occupied 2020-12-01", 810.0)
    assert values(small_orgs, "ga_beds_occupied", "RAL") == {date(2020, 12, 1): 810.0}
    (issue,) = [i for i in issues(small_orgs, s.id) if i["severity"] == "error"]
    assert issue["status"] == "released"
    with pytest.raises(ValueError, match="no open quarantined value"):
        small_orgs.release(s.id, 3, "value")


def test_an_unreadable_value_cannot_be_released(small_orgs: Mutual, tmp_path: Path) -> None:
    s = small_orgs.ingest(write(tmp_path, "nan.csv", "org,metric,date,value\nR1H,ga_beds_open,2020-12-01,lots\n"),
                          received_at=T0).submission
    with pytest.raises(ValueError, match="send a corrected file"):
        small_orgs.release(s.id, 2, "value")


def test_a_level_repeated_for_two_weeks_is_flagged_as_possibly_frozen(small_orgs: Mutual, tmp_path: Path) -> None:
    lines = [f"R1H,ga_beds_occupied,2020-11-{d:02d},{1400 + d}" for d in range(1, 11)]
    lines += [f"R1H,ga_beds_occupied,2020-11-{d:02d},530" for d in range(11, 27)]
    s = small_orgs.ingest(write(tmp_path, "frozen.csv", "org,metric,date,value\n" + "\n".join(lines) + "\n"),
                          received_at=T0).submission
    stale = [i for i in issues(small_orgs, s.id) if i["rule"] == "stale_value"]
    assert [i["period"] for i in stale] == ["2020-11-26"], "one warning per run, on its latest day"
    assert "has been 530 every day from 2020-11-11 to 2020-11-26 (16 days)" in str(stale[0]["message"])
    assert s.quarantined == 0, "a warning: the values are stored, flagged"


def test_a_level_far_from_its_usual_level_is_flagged_against_the_file_and_the_store(small_orgs: Mutual,
                                                                                    tmp_path: Path) -> None:
    lines = [f"R1H,ga_beds_occupied,2020-11-{d:02d},{1400 + d % 5}" for d in range(1, 21)]
    lines += ["R1H,ga_beds_occupied,2020-11-21,400", "RAL,ga_beds_occupied,2020-11-21,400"]
    s = small_orgs.ingest(write(tmp_path, "dip.csv", "org,metric,date,value\n" + "\n".join(lines) + "\n"),
                          received_at=T0).submission
    sudden = [i for i in issues(small_orgs, s.id) if i["rule"] == "sudden_change"]
    assert [(i["org"], i["period"]) for i in sudden] == [("R1H", "2020-11-21")], "RAL has no usual level yet"
    assert "is 400, far from its usual level (median 1402)" in str(sudden[0]["message"])
    assert s.quarantined == 0 and values(small_orgs, "ga_beds_occupied", "R1H")[date(2020, 11, 21)] == 400
    later = small_orgs.ingest(write(tmp_path, "spike.csv", "org,metric,date,value\nR1H,ga_beds_occupied,"
                                    "2020-11-22,3000\nR1H,ga_beds_occupied,2020-11-23,1410\n"),
                              received_at=T0).submission
    flagged = [(i["period"], i["rule"]) for i in issues(small_orgs, later.id)]
    assert flagged == [("2020-11-22", "sudden_change")], "judged against the store's recent history"


def stale_warning_after(m: Mutual, tmp_path: Path, stored: list[str], then: list[str]) -> str:
    """The one frozen-run warning on the file ``then`` (long-layout lines), ingested after ``stored``."""
    head = "org,metric,date,value\n"
    m.ingest(write(tmp_path, "stored.csv", head + "\n".join(stored) + "\n"), received_at=T0)
    s = m.ingest(write(tmp_path, "then.csv", head + "\n".join(then) + "\n"), received_at=T0).submission
    (stale,) = [i for i in issues(m, s.id) if i["rule"] == "stale_value"]
    return str(stale["message"])


def test_a_frozen_run_is_followed_from_the_store_into_the_file_whatever_case_the_code_is_in(
        small_orgs: Mutual, tmp_path: Path) -> None:
    stored = [f"R1H,ga_beds_occupied,2020-11-{d:02d},530" for d in range(1, 9)]
    then = [f"{'r1h' if d % 2 else 'R1H'},ga_beds_occupied,2020-11-{d:02d},530" for d in range(9, 17)]
    message = stale_warning_after(small_orgs, tmp_path, stored, then)
    assert "has been 530 every day from 2020-11-01 to 2020-11-16 (16 days)" in message


def test_days_a_file_restates_are_judged_on_the_file_not_also_on_the_store(small_orgs: Mutual,
                                                                           tmp_path: Path) -> None:
    stored = [f"R1H,ga_beds_occupied,2020-11-{d:02d},530" for d in range(1, 11)]
    then = [f"R1H,ga_beds_occupied,2020-11-{d:02d},530" for d in range(1, 17)]
    message = stale_warning_after(small_orgs, tmp_path, stored, then)
    assert "from 2020-11-01 to 2020-11-16 (16 days)" in message, "each day counted once"


STOCK_SPEC = """
name: test-stock
match: [Trust, Day, Gowns, Masks]
org: {column: Trust}
period: {column: Day, formats: ["%d/%m/%Y"]}
columns:
  Gowns: {metric: supply_stock, dims: {item: gowns}}
  Masks: {metric: supply_stock, dims: {item: n95_masks}}
"""


def test_each_dimension_of_a_metric_is_a_series_of_its_own(small_orgs: Mutual, tmp_path: Path) -> None:
    spec = write(tmp_path, "spec.yaml", STOCK_SPEC)
    rows = [f"R1H,{d:02d}/11/2020,{4000 + d % 7},{300 + d % 5}" for d in range(1, 21)] + ["R1H,21/11/2020,4003,900"]
    s = small_orgs.ingest(write(tmp_path, "stock.csv", "Trust,Day,Gowns,Masks\n" + "\n".join(rows) + "\n"),
                          spec=str(spec), received_at=T0).submission
    sudden = [(i["period"], i["col"]) for i in issues(small_orgs, s.id) if i["rule"] == "sudden_change"]
    assert sudden == [("2020-11-21", "Masks")], "masks are judged against masks, gowns against gowns"


@pytest.mark.parametrize("bits", [rules.REPEAT_BITS, 0], ids=["bitmap", "distinct-count"])
def test_repeated_keys_are_found_by_either_test(small_orgs: Mutual, tmp_path: Path, bits: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "REPEAT_BITS", bits)
    s = small_orgs.ingest(write(tmp_path, "broken.csv", BROKEN), received_at=T0).submission
    found = {(i["row_num"], i["rule"]) for i in issues(small_orgs, s.id)} & {
        (r, rule) for r in range(2, 18) for rule in ("duplicate", "conflict")}
    assert found == {(12, "duplicate"), (14, "conflict"), (15, "conflict")}


def test_a_header_thousands_of_columns_wide_is_rejected_at_once(small_orgs: Mutual, tmp_path: Path) -> None:
    f = write(tmp_path, "wide.csv", "org,metric,date,value" + "," * 100_000 + "\nR1H,ga_beds_open,2020-12-01,1\n")
    with pytest.raises(IngestError, match=r"line 1 \(the header row\) has 100,004 columns"):
        small_orgs.ingest(f)
    assert small_orgs.submissions()[0].status == "rejected"


def test_a_header_line_longer_than_a_megabyte_is_rejected(small_orgs: Mutual, tmp_path: Path) -> None:
    f = write(tmp_path, "long.csv", "x" * (2 << 20) + "\nR1H,ga_beds_open,2020-12-01,1\n")
    with pytest.raises(IngestError, match="longer than 1 MiB"):
        small_orgs.ingest(f)
