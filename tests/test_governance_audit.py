"""The audit log is append-only and hash-chained: any edit, deletion, insertion or reordering is found and
named, including one made around the database's own refusal; a cut tail is found against the anchored head."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import DBAPIError

from engines import drop_append_only
from mutual.app import open_mutual
from mutual.governance.audit import (
    GENESIS,
    AuditError,
    Event,
    append,
    canonical,
    chain_problems,
    event_hash,
    verify,
)

T0 = datetime(2026, 1, 1, 9)
ACTIONS = ["agreement.draft", "agreement.approve", "gate.allow", "gate.deny", "extract.release"]


def chain(n: int) -> list[Event]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = (seq, T0 + timedelta(minutes=seq), f"user{seq % 3}", ACTIONS[seq % len(ACTIONS)], "agreement",
                  f"A{seq % 4}", f"A{seq % 4}", {"rows": seq * 10})
        digest = event_hash(prev, canonical(*fields))
        out.append(Event(*fields, prev_hash=prev, hash=digest))
        prev = digest
    return out


def rehash(events: list[Event], start: int) -> list[Event]:
    """What a careful forger does: renumber and recompute every hash from ``start`` on."""
    out = events[:start]
    prev = out[-1].hash if out else GENESIS
    for i, e in enumerate(events[start:], start=start + 1):
        fields = (i, e.at, e.actor, e.action, e.object_type, e.object_id, e.agreement, e.details)
        digest = event_hash(prev, canonical(*fields))
        out.append(Event(*fields, prev_hash=prev, hash=digest))
        prev = digest
    return out


@given(n=st.integers(2, 25), data=st.data())
@settings(max_examples=300, deadline=None)
def test_every_kind_of_tampering_is_found_where_it_was_done(n: int, data: st.DataObject) -> None:
    events = chain(n)
    assert chain_problems(events) == []
    k = data.draw(st.integers(0, n - 1), label="position")
    kind = data.draw(st.sampled_from(["edit", "delete", "insert", "swap"]), label="kind")
    if kind == "edit":
        field = data.draw(st.sampled_from(["actor", "action", "object_id", "details", "at"]))
        value = {"actor": "mallory", "action": "gate.allow", "object_id": "B9", "details": {"rows": 999_999},
                 "at": T0 - timedelta(days=1)}[field]
        if getattr(events[k], field) == value:
            return
        tampered = [*events[:k], dataclasses.replace(events[k], **{field: value}), *events[k + 1:]]
        where = events[k].seq
    elif kind == "delete":
        if k == n - 1:
            return  # a cut tail: see the anchor test
        tampered = events[:k] + events[k + 1:]
        where = events[k].seq
    elif kind == "insert":
        forged = dataclasses.replace(events[k], actor="mallory", details={"rows": 1})
        tampered = [*events[:k], forged, *[dataclasses.replace(e, seq=e.seq + 1) for e in events[k:]]]
        where = events[k].seq
    else:
        j = data.draw(st.integers(0, n - 1), label="other")
        if j == k:
            return
        i, j = sorted((k, j))
        swapped = events.copy()
        swapped[i], swapped[j] = (dataclasses.replace(events[j], seq=events[i].seq),
                                  dataclasses.replace(events[i], seq=events[j].seq))
        tampered, where = swapped, events[i].seq
    problems = chain_problems(tampered)
    assert problems, f"{kind} at {where} went unnoticed"
    assert any(f"event {where} " in p or f"events {where} " in p for p in problems), problems


@given(n=st.integers(2, 20), cut=st.integers(1, 5), data=st.data())
@settings(max_examples=100, deadline=None)
def test_a_cut_or_rewritten_tail_is_found_against_the_anchored_head(n: int, cut: int, data: st.DataObject) -> None:
    events = chain(n)
    head = (events[-1].seq, events[-1].hash)
    shorter = events[:max(1, n - cut)]
    assert chain_problems(shorter) == [], "on its own a cut chain is whole"
    assert any("cut short" in p for p in chain_problems(shorter, head))
    k = data.draw(st.integers(0, n - 1))
    rewritten = rehash([*events[:k], dataclasses.replace(events[k], actor="mallory"), *events[k + 1:]], k)
    assert chain_problems(rewritten) == [] and chain_problems(rewritten, head) != []


def test_details_keep_counts_and_codes_never_values() -> None:
    from mutual.governance.audit import check_details

    assert check_details({"rows": 12, "dataset": "apc_episodes", "granted": True}) == {
        "rows": 12, "dataset": "apc_episodes", "granted": True}
    with pytest.raises(AuditError, match="never values of the data"):
        check_details({"patient": "Jane Smith, 12 Acacia Avenue"})
    with pytest.raises(AuditError, match="number, a boolean or a code"):
        check_details({"rows": [1, 2, 3]})


@pytest.mark.usefixtures("control_plane")
def test_the_database_refuses_changes_and_verify_finds_those_made_around_it(tmp_path: Path) -> None:
    with open_mutual(tmp_path / "ws", create=True) as m:
        with m.sessions.begin() as s:
            for i in range(5):
                append(s, actor="ig.officer", action=ACTIONS[i], object_type="agreement", object_id="A1",
                       agreement="A1", details={"rows": i})
        with m.sessions() as s:
            problems, head = verify(s)
        assert problems == [] and head is not None and head[0] == 5
        with m.sessions.begin() as s, pytest.raises(DBAPIError, match="append-only"):
            s.connection().exec_driver_sql("UPDATE audit_event SET actor = 'mallory' WHERE seq = 2")
        with m.sessions.begin() as s, pytest.raises(DBAPIError, match="append-only"):
            s.connection().exec_driver_sql("DELETE FROM audit_event WHERE seq = 5")
        # someone with the database's owner rights drops the triggers and edits the log directly
        drop_append_only(m.engine, "audit_event", "update", "delete")
        with m.engine.begin() as con:
            con.exec_driver_sql("UPDATE audit_event SET details = '{\"rows\":40}' WHERE seq = 3")
            con.exec_driver_sql("DELETE FROM audit_event WHERE seq = 5")
    with open_mutual(tmp_path / "ws") as m, m.sessions() as s:
        problems, _ = verify(s, head)
    assert any("event 3 was changed" in p for p in problems)
    assert any("cut short" in p for p in problems)


@pytest.mark.usefixtures("control_plane")
def test_the_audit_command_says_the_chain_is_intact_or_where_it_breaks(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mutual.cli import app

    home = tmp_path / "ws"
    with open_mutual(home, create=True) as m, m.sessions.begin() as s:
        for i in range(3):
            append(s, actor="ig.officer", action="agreement.approve", object_type="agreement", object_id=f"A{i}",
                   agreement=f"A{i}", details={"rows": i})
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--home", str(home)])
    assert ok.exit_code == 0 and "3 events, chain intact" in ok.output
    head = ok.output.split("head ")[1].split()[0]
    shown = runner.invoke(app, ["audit", "log", "--home", str(home)], env={"COLUMNS": "200"})
    assert "agreement.approve" in shown.output
    with open_mutual(home) as m:
        drop_append_only(m.engine, "audit_event", "update")
        with m.engine.begin() as con:
            con.exec_driver_sql("UPDATE audit_event SET actor = 'x' WHERE seq = 2")
    broken = runner.invoke(app, ["audit", "verify", "--home", str(home), "--head", head])
    assert broken.exit_code == 1 and "event 2 was changed" in broken.output
    bad = runner.invoke(app, ["audit", "verify", "--home", str(home), "--head", "nonsense"])
    assert bad.exit_code != 0 and "SEQ:HASH" in bad.output


@pytest.mark.usefixtures("control_plane")
def test_writers_in_parallel_extend_one_chain(tmp_path: Path) -> None:
    """Four writers at once (a service's processes): every event lands, numbered 1..n, and the chain verifies."""
    from concurrent.futures import ThreadPoolExecutor

    with open_mutual(tmp_path / "ws", create=True) as m:
        def write(worker: int) -> None:
            for i in range(10):
                with m.sessions.begin() as s:
                    append(s, actor=f"worker{worker}", action="agreement.approve", object_type="agreement",
                           object_id=f"A{i}", details={"rows": i})

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(write, range(4)))
        with m.sessions() as s:
            problems, head = verify(s)
    assert problems == [] and head is not None and head[0] == 40
