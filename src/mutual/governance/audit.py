"""The audit log: every governance action and policy-gate decision as an append-only, hash-chained event.

Each event's hash is SHA-256 over the previous event's hash and the event's own fields in canonical JSON, and
events are numbered 1, 2, 3, … with no gaps. So ``verify`` finds, and names the place of, any edited event (its
hash no longer matches), deleted one (a gap, or a broken link), inserted one (a broken link) and reordered ones
(numbers and links disagree). Deleting the newest events leaves a shorter chain that is whole: that is caught
against an anchor, the head (number and hash) published elsewhere, as the annual report does.

Events hold who, what, which object and agreement, counts or codes, and the actor's reason in their own words
where a step needs one: never a value of the data. ``details``
accepts numbers, booleans and short codes only, so a row value cannot slip in as free text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mutual.control.models import AuditEvent

GENESIS = "0" * 64
CODE = re.compile(r"[A-Za-z0-9_.:/@+-]{0,64}")
Detail = int | float | bool | str | None


class AuditError(ValueError):
    pass


@dataclass(frozen=True)
class Event:
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    agreement: str | None
    details: Mapping[str, Detail]
    prev_hash: str
    hash: str
    reason: str | None = None


def check_details(details: Mapping[str, Any]) -> dict[str, Detail]:
    """The details as stored, or ``AuditError`` when one could carry data: only numbers, booleans and codes."""
    out: dict[str, Detail] = {}
    for key, value in details.items():
        if not CODE.fullmatch(key):
            raise AuditError(f"audit detail name {key!r} is not a short code")
        if isinstance(value, str) and not CODE.fullmatch(value):
            raise AuditError(f"audit detail {key} = {value[:20]!r}… is not a short code: the audit log keeps counts "
                             "and codes, never values of the data")
        if value is not None and not isinstance(value, (int, float, bool, str)):
            raise AuditError(f"audit detail {key} must be a number, a boolean or a code")
        out[key] = value
    return out


def canonical(seq: int, at: datetime, actor: str, action: str, object_type: str, object_id: str,
              agreement: str | None, details: Mapping[str, Detail], reason: str | None = None) -> bytes:
    return json.dumps({"seq": seq, "at": at.isoformat(), "actor": actor, "action": action,
                       "object_type": object_type, "object_id": object_id, "agreement": agreement,
                       "details": dict(details), "reason": reason}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


def event_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def chain_problems(events: Sequence[Event], head: tuple[int, str] | None = None) -> list[str]:
    """Every break in ``events`` (in stored order), in words naming the event; [] when the chain is whole.
    ``head`` is an anchor recorded earlier: the chain must still reach it, through the same event."""
    problems: list[str] = []
    expected, prev = 1, GENESIS
    by_seq: dict[int, str] = {}
    for e in events:
        if e.seq > expected:
            gone = f"event {expected}" if e.seq == expected + 1 else f"events {expected} to {e.seq - 1}"
            problems.append(f"{gone} missing: deleted from the log")
        elif e.seq < expected:
            problems.append(f"event {e.seq} appears after event {expected - 1}: events were reordered or duplicated")
        if e.prev_hash != prev:
            problems.append(f"event {e.seq} does not follow the event before it: an event before it was inserted, "
                            "removed, reordered or changed")
        body = canonical(e.seq, e.at, e.actor, e.action, e.object_type, e.object_id, e.agreement, e.details,
                         e.reason)
        if event_hash(e.prev_hash, body) != e.hash:
            problems.append(f"event {e.seq} was changed after it was written (its hash does not match)")
        by_seq[e.seq] = e.hash
        prev, expected = e.hash, max(expected, e.seq + 1)
    if head is not None:
        seq, digest = head
        if seq not in by_seq:
            problems.append(f"the anchored head, event {seq}, is not in the log: the log was cut short")
        elif by_seq[seq] != digest:
            problems.append(f"event {seq} is not the event anchored as the head: the log was rewritten")
    return problems


def _event(row: AuditEvent) -> Event:
    return Event(row.seq, row.at, row.actor, row.action, row.object_type, row.object_id, row.agreement,
                 json.loads(row.details), row.prev_hash, row.hash, row.reason)


def _one_writer(session: Session) -> None:
    """Hold the lock that lets one writer at a time extend the chain, before reading its head. PostgreSQL: a
    table lock that readers pass. SQLite: its write lock, which the driver takes only at a transaction's first
    write, so a no-op write takes it now (else two processes could read the same head)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE audit_event IN SHARE ROW EXCLUSIVE MODE"))
    else:
        session.execute(text("UPDATE control_change SET n = n WHERE id = 1"))


def append(session: Session, *, actor: str, action: str, object_type: str, object_id: str,
           agreement: str | None = None, details: Mapping[str, Any] | None = None, reason: str | None = None,
           at: datetime | None = None) -> Event:
    """Add the next event in ``session``'s transaction: it commits with the action it records, or not at all."""
    kept = check_details(details or {})
    _one_writer(session)
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last is not None else (1, GENESIS)
    when = (at or datetime.now(UTC)).replace(tzinfo=None, microsecond=0)
    digest = event_hash(prev, canonical(seq, when, actor, action, object_type, object_id, agreement, kept, reason))
    session.add(AuditEvent(seq=seq, at=when, actor=actor, action=action, object_type=object_type,
                           object_id=object_id, agreement=agreement,
                           details=json.dumps(kept, sort_keys=True, separators=(",", ":")), reason=reason,
                           prev_hash=prev, hash=digest))
    session.flush()
    return Event(seq, when, actor, action, object_type, object_id, agreement, kept, prev, digest, reason)


def events(session: Session, *, agreement: str | None = None) -> list[Event]:
    query = select(AuditEvent).order_by(AuditEvent.seq)
    if agreement is not None:
        query = query.where(AuditEvent.agreement == agreement)
    return [_event(r) for r in session.scalars(query)]


def verify(session: Session, head: tuple[int, str] | None = None) -> tuple[list[str], tuple[int, str] | None]:
    """The chain's problems and its current head (to anchor elsewhere)."""
    found = events(session)
    return chain_problems(found, head), ((found[-1].seq, found[-1].hash) if found else None)
