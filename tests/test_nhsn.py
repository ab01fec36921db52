"""CDC/NHSN facility imports: staffing-shortage flags and supplies days-on-hand, read through shipped specs.

These files name no organisation, so the caller says whose data it is with ``org=``. Values are Y/N flags and
day-range categories mapped by the spec's value maps; anything else is quarantined by the shared rules.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ORGS_CSV
from mutual.app import Mutual, open_mutual
from mutual.catalog import load_catalog
from mutual.ingest.specs import find_spec
from mutual.store.intake import IngestError

T0 = datetime(2020, 12, 10, 9, 0)
GROUPS = {"envsvc": "environmental_services", "nurse": "nursing", "rt": "respiratory_therapists",
          "phar": "pharmacists", "phys": "medical", "temp": "temporary_physicians", "oth": "other",
          "othlic": "other_licensed", "othsfy": "other_specified"}
HCW_HEADER = ",".join(["collectiondate", *(f"short{g}" for g in GROUPS), *(f"posshort{g}" for g in GROUPS)])
SUPPLY_HEADER = ("collectiondate,ventsupply,ventreuse,ventobtain,n95masksupply,n95maskreuse,n95maskobtain,"
                 "othrespsupply,othrespreuse,othrespobtain,surgmasksupply,surgmaskreuse,surgmaskobtain,shieldsupply,"
                 "shieldreuse,shieldobtain,gownsupply,gownreuse,gownobtain,glovesupply,glovereuse,gloveobtain")


def stored(m: Mutual, submission_id: int) -> dict[tuple[str, str, date], float]:
    rows = m.store.con.execute("SELECT metric, dims, period, value FROM observation WHERE submission_id = ?",
                               [submission_id]).fetchall()
    return {(metric, dims, period): value for metric, dims, period, value in rows}


def issues(m: Mutual, submission_id: int) -> list[dict[str, object]]:
    return m.store.issues(submission_id).to_pyarrow().to_pylist()


def shortage(group: str, when: str) -> str:
    return f"staff_group={group};when={when}"


def test_the_real_staffing_file_stores_each_flag_and_quarantines_the_free_text(small_orgs: Mutual,
                                                                               shared_data: Path) -> None:
    result = small_orgs.ingest(shared_data / "hl7-saner-examples" / "facility-import-hcw.csv", org="R1H",
                               received_at=T0)
    s = result.submission
    assert (s.format, s.status, s.rows_read) == ("nhsn-staffing-shortage", "loaded", 1)
    assert (s.values_read, s.accepted, s.quarantined, s.missing) == (18, 16, 2, 0)
    values = stored(small_orgs, s.id)
    day = date(2020, 3, 9)
    for group in set(GROUPS.values()) - {"other_specified"}:
        assert values[("staff_shortage", shortage(group, "now"), day)] == 1.0, group
        assert values[("staff_shortage", shortage(group, "within_week"), day)] == 0.0, group
    assert len(values) == 16
    bad = sorted((i["col"], i["raw"], i["rule"], i["message"]) for i in issues(small_orgs, s.id)
                 if i["severity"] == "error")
    assert [(col, raw, rule) for col, raw, rule, _ in bad] == [
        ("posshortothsfy", "hijklmnop", "not_a_number"), ("shortothsfy", "abcdefg", "not_a_number")]
    assert all(raw in message for _, raw, _, message in bad), "the message names the value"  # type: ignore[operator]


def test_the_real_supplies_file_stores_each_category_as_its_lower_and_upper_bound(small_orgs: Mutual,
                                                                                  shared_data: Path) -> None:
    result = small_orgs.ingest(shared_data / "hl7-saner-examples" / "facility-import-supplies.csv", org="R1H",
                               received_at=T0)
    s = result.submission
    # ">=15 days" (surgical masks, gloves) has no upper bound: two cells not reported
    assert (s.format, s.status, s.values_read, s.accepted, s.quarantined, s.missing) == (
        "nhsn-supplies-days-on-hand", "loaded", 12, 12, 0, 2)
    day = date(2020, 3, 30)
    lower = {"ventilator_supplies": 0.0, "n95_masks": 1.0, "other_respirators": 0.0, "surgical_masks": 15.0,
             "eye_protection": 4.0, "gowns": 1.0, "gloves": 15.0}
    upper = {"ventilator_supplies": 0.0, "n95_masks": 3.0, "other_respirators": 0.0, "eye_protection": 14.0,
             "gowns": 3.0}
    assert stored(small_orgs, s.id) == {
        **{("days_of_supply", f"bound=lower;item={item}", day): v for item, v in lower.items()},
        **{("days_of_supply", f"bound=upper;item={item}", day): v for item, v in upper.items()}}
    assert not issues(small_orgs, s.id), "reuse/obtain flags are recognised, not reported as unmapped"


def test_flags_are_read_case_blind_and_anything_but_a_flag_is_quarantined(small_orgs: Mutual,
                                                                          tmp_path: Path) -> None:
    cells = ["y", "N", "Yes", "no", "1", "0", "2", "", "maybe", " Y ", "0.5", "N", "N", "N", "N", "N", "N", "N"]
    f = tmp_path / "hcw.csv"
    f.write_text(HCW_HEADER + "\n2020-04-01," + ",".join(cells) + "\n")
    s = small_orgs.ingest(f, org="R1H", received_at=T0).submission
    assert (s.values_read, s.missing) == (17, 1)
    values = stored(small_orgs, s.id)
    day = date(2020, 4, 1)
    assert values[("staff_shortage", shortage("environmental_services", "now"), day)] == 1.0
    assert values[("staff_shortage", shortage("nursing", "now"), day)] == 0.0
    assert values[("staff_shortage", shortage("respiratory_therapists", "now"), day)] == 1.0
    assert values[("staff_shortage", shortage("pharmacists", "now"), day)] == 0.0
    assert values[("staff_shortage", shortage("medical", "now"), day)] == 1.0, "1 is a number within bounds"
    assert values[("staff_shortage", shortage("temporary_physicians", "now"), day)] == 0.0
    assert values[("staff_shortage", shortage("environmental_services", "within_week"), day)] == 1.0, "spaces"
    assert ("staff_shortage", shortage("other_licensed", "now"), day) not in values, "blank is missing"
    rules = {(i["col"], i["raw"], i["rule"]) for i in issues(small_orgs, s.id) if i["severity"] == "error"}
    assert rules == {("shortoth", "2", "out_of_bounds"), ("shortothsfy", "maybe", "not_a_number"),
                     ("posshortnurse", "0.5", "not_whole")}
    assert (s.accepted, s.quarantined) == (14, 3)


def test_an_unknown_supply_category_is_quarantined_and_the_rest_stored(small_orgs: Mutual, tmp_path: Path) -> None:
    f = tmp_path / "supplies.csv"
    f.write_text(SUPPLY_HEADER + "\n4/2/2020,2 weeks,Y,Y,>=15 DAYS,N,Y,0 days,N,N,,Y,Y,4-14 days,Y,Y,-1,Y,Y,"
                 "1-3 days,Y,Y\n")
    s = small_orgs.ingest(f, org="R1H", received_at=T0).submission
    # every column feeds two cells (lower and upper bound); blank surgical masks and n95's open upper bound are
    # not reported
    assert (s.values_read, s.accepted, s.quarantined, s.missing) == (11, 7, 4, 3)
    errors = [i for i in issues(small_orgs, s.id) if i["severity"] == "error"]
    assert sorted((str(i["col"]).split(" [")[0], i["rule"], i["raw"]) for i in errors) == [
        ("gownsupply", "out_of_bounds", "-1"), ("gownsupply", "out_of_bounds", "-1"),
        ("ventsupply", "not_a_number", "2 weeks"), ("ventsupply", "not_a_number", "2 weeks")]
    vent = next(i for i in errors if i["raw"] == "2 weeks")
    assert vent["col"] == "ventsupply [days_of_supply bound=lower;item=ventilator_supplies]"
    assert "nor one of the answers this column takes (0 days, 1-3 days, 4-14 days, >=15 days)" in str(vent["message"])
    values = stored(small_orgs, s.id)
    assert values[("days_of_supply", "bound=lower;item=n95_masks", date(2020, 4, 2))] == 15.0, "answers ignore case"
    assert values[("days_of_supply", "bound=upper;item=eye_protection", date(2020, 4, 2))] == 14.0


def test_without_org_the_file_is_rejected_and_says_how_to_name_it(small_orgs: Mutual, shared_data: Path) -> None:
    with pytest.raises(IngestError, match="--org"):
        small_orgs.ingest(shared_data / "hl7-saner-examples" / "facility-import-hcw.csv")


def test_every_group_and_bound_the_specs_use_is_in_the_catalogue() -> None:
    catalog = load_catalog()
    hcw, supplies = find_spec("nhsn-staffing-shortage"), find_spec("nhsn-supplies-days-on-hand")
    assert {c.dims["staff_group"] for c in hcw.columns.values()} == set(GROUPS.values())
    assert set(GROUPS.values()) <= set(catalog.dimensions["staff_group"])
    assert {c.dims["when"] for c in hcw.columns.values()} == {"now", "within_week"}
    assert {c.dims["bound"] for maps in supplies.columns.values() for c in maps} == {"lower", "upper"}  # type: ignore[union-attr]
    assert catalog.dimensions["bound"] == ["lower", "upper"] and "bound" in catalog.get("days_of_supply").dims


FLAG = st.sampled_from(["Y", "N", "y", "n", "Yes", "No", "", "1", "0"])
JUNK = st.text(st.characters(codec="utf-8", exclude_characters=',"\r\n'), min_size=1, max_size=8).filter(
    lambda s: s.strip().casefold() not in {"y", "n", "yes", "no", "", "-", "n/a", "na", "null"}
    and not _numeric(s))


def _numeric(s: str) -> bool:
    try:
        float(s.replace(",", ""))
    except ValueError:
        return False
    return True


def test_every_flag_is_stored_or_quarantined_never_lost() -> None:
    """Property: over any mix of flags and junk, each Y/N cell is stored as 1/0 and each junk cell quarantined."""
    truth = {"y": 1.0, "yes": 1.0, "1": 1.0, "n": 0.0, "no": 0.0, "0": 0.0}
    with tempfile.TemporaryDirectory() as tmp, open_mutual(Path(tmp) / "ws", create=True) as m:
        orgs = Path(tmp) / "orgs.csv"
        orgs.write_text(ORGS_CSV)
        m.import_orgs(orgs)
        counter = iter(range(10_000))

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(st.one_of(FLAG, JUNK), min_size=18, max_size=18))
        def check(cells: list[str]) -> None:
            day = date(2020, 1, 1).toordinal() + next(counter)  # a new day each time: new bytes, no no-op
            f = Path(tmp) / "hcw.csv"
            f.write_text(f"{HCW_HEADER}\n{date.fromordinal(day).isoformat()},{','.join(cells)}\n")
            s = m.ingest(f, org="RAL", received_at=datetime(2030, 1, 1)).submission
            assert s.values_read == s.accepted + s.quarantined
            assert s.missing == sum(c == "" for c in cells)
            assert s.accepted == sum(c.casefold() in truth for c in cells)
            got = {dims: v for (_, dims, _), v in stored(m, s.id).items()}
            headings = HCW_HEADER.split(",")[1:]
            for heading, cell in zip(headings, cells, strict=True):
                when = "within_week" if heading.startswith("pos") else "now"
                key = shortage(GROUPS[heading.removeprefix("posshort").removeprefix("short")], when)
                if cell.casefold() in truth:
                    assert got[key] == truth[cell.casefold()]
                else:
                    assert key not in got

        check()
