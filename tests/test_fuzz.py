"""Every reader treats its input as hostile: mutated real files never crash the ingest, and damage costs only itself.

The harness is ``benchmarks/fuzz.py`` (run it with ``--files 10000`` for the long run); here a bounded number of
its cases runs in the suite, plus hypothesis properties over generated CSV. A crash is any exception other than
``IngestError``, or a loaded submission whose counts do not add up.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ORGS_CSV, ROOT
from mutual.app import Mutual, open_mutual


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutual_fuzz_harness", ROOT / "benchmarks" / "fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fuzz = _load_harness()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    shared = fuzz.shared_data_dir()
    h = fuzz.Harness(tmp_path_factory.mktemp("fuzz"), fuzz.load_seeds(shared), shared)
    yield h
    h.close()


def _report(outcomes: list[object]) -> str:
    return "\n".join(f"case {o.case} ({o.seed_name}, {'+'.join(o.mutators)}) {o.status}: {o.error}"  # type: ignore[attr-defined]
                     for o in outcomes)


def test_a_case_is_the_same_every_time_and_cases_differ() -> None:
    seeds = fuzz.load_seeds(fuzz.shared_data_dir())
    first = [fuzz.make_case(seeds, 7, n) for n in range(40)]
    again = [fuzz.make_case(seeds, 7, n) for n in range(40)]
    assert [(c.data, c.name, c.mutators) for c in first] == [(c.data, c.name, c.mutators) for c in again]
    assert len({c.data for c in first}) >= 35, "the same bytes twice would be a no-op, so cases must vary"


def test_every_mutator_returns_bytes_for_every_seed_kind() -> None:
    seeds = fuzz.load_seeds(fuzz.shared_data_dir())
    by_kind = {s.kind: s for s in seeds}
    for kind, seed in by_kind.items():
        for name, mutate in {**fuzz.AWARE.get(kind, {}), **fuzz.BYTE_MUTATORS}.items():
            if name in fuzz.RARE:
                continue  # megabytes each: exercised through the sampled cases
            for i in range(3):
                assert isinstance(mutate(random.Random(i), seed.data), bytes), (kind, name)


def test_seeds_cover_every_format_mutual_reads(shared_data: Path) -> None:
    seeds = fuzz.load_seeds(shared_data)
    kinds = Counter(s.kind for s in seeds)
    assert kinds["json"] >= 45 and kinds["xlsx"] == 1 and kinds["csv"] >= 9
    assert all(len(s.data) < 600_000 for s in seeds), "seeds are cut down so a case is fast"


def test_mutated_real_files_never_crash_the_ingest(harness: object, shared_data: Path) -> None:
    outcomes = [harness.run(2024, n) for n in range(120)]  # type: ignore[attr-defined]
    failed = [o for o in outcomes if o.failed]
    assert not failed, _report(failed)
    statuses = Counter(o.status for o in outcomes)
    assert statuses["rejected"] + statuses["loaded"] + statuses["already"] == 120
    assert {o.kind for o in outcomes} == {"csv", "json", "xlsx"}


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(base=st.integers(0, 2**31), number=st.integers(0, 10**6))
def test_any_case_hypothesis_picks_is_rejected_cleanly_or_loaded(harness: object, base: int, number: int) -> None:
    out = harness.run(base, number)  # type: ignore[attr-defined]
    assert not out.failed, _report([out])


def test_the_benchmark_prints_its_crash_count_last(capsys: pytest.CaptureFixture[str]) -> None:
    code = fuzz.main(["--files", "6", "--seed", "3"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"fuzz_crashes {0 if code == 0 else last.split()[1]} of 6"
    assert code == 0, last


# -- generated CSV: a damaged line costs only itself ---------------------------------------------------------------

ORGS = ["R1H", "RAL", "RYJ"]
METRICS = ["ga_beds_open", "cc_adult_beds_open", "ventilators_total", "covid_admissions"]
GOOD = st.tuples(st.sampled_from(ORGS), st.sampled_from(METRICS), st.integers(0, 59), st.integers(0, 400))
HOSTILE_LINE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=40).map(lambda s: "X" + s)
HOSTILE_VALUE = st.sampled_from(["-3", "12.5", "1,2,3", "=SUM(A1)", "12%", "1e309", "NaN", '"7', "n/k", "١٢", "ten"])


Entry = tuple[str, str, str, int, int]  # (hostile line or '', org, metric, day, value)


@st.composite
def long_files(draw: st.DrawFn) -> list[Entry]:
    """Valid lines (unique keys) with hostile ones before them: junk text, stray quotes, bad values."""
    entries: list[Entry] = []
    for org, metric, day, value in draw(st.lists(GOOD, min_size=1, max_size=30, unique_by=lambda g: g[:3])):
        for _ in range(draw(st.integers(0, 2))):
            bad = draw(HOSTILE_LINE) if draw(st.booleans()) else (
                f"{draw(st.sampled_from(ORGS))},{metric},2001-01-01,{draw(HOSTILE_VALUE)}")
            entries.append((bad, "", "", 0, 0))
        entries.append(("", org, metric, day, value))
    return entries


def test_valid_lines_between_hostile_ones_are_all_stored_with_their_line_numbers() -> None:
    """Property: stray quotes, junk and bad values on some lines never cost a valid line its value or its number."""
    with tempfile.TemporaryDirectory() as tmp, open_mutual(Path(tmp) / "ws", create=True) as m:
        orgs = Path(tmp) / "orgs.csv"
        orgs.write_text(ORGS_CSV)
        m.import_orgs(orgs)
        counter = iter(range(10_000))

        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        @given(long_files())
        def check(entries: list[Entry]) -> None:
            start = date(2002, 1, 1) + timedelta(days=61 * next(counter))  # fresh keys: nothing is a no-op
            lines, expect = ["org,metric,date,value"], {}
            for bad, org, metric, day, value in entries:
                lines.append(bad or f"{org},{metric},{(start + timedelta(days=day)).isoformat()},{value}")
                if not bad:
                    expect[len(lines)] = (org, metric, day, value)
            f = Path(tmp) / "long.csv"
            f.write_text("\n".join(lines) + "\n", encoding="utf-8")
            s = m.ingest(f, received_at=datetime(2030, 1, 1)).submission
            assert s.values_read == s.accepted + s.quarantined
            _assert_stored(m, s.id, start, expect)

        check()


def _assert_stored(m: Mutual, submission_id: int, start: date,
                   expect: dict[int, tuple[str, str, int, int]]) -> None:
    rows = m.store.con.execute(
        "SELECT org, metric, period, value, row_num FROM observation WHERE submission_id = ? AND period >= ?",
        [submission_id, start]).fetchall()
    got = {(org, metric, period): (value, row_num) for org, metric, period, value, row_num in rows}
    for line, (org, metric, day, value) in expect.items():
        assert got.get((org, metric, start + timedelta(days=day))) == (float(value), line), (line, org, metric)
