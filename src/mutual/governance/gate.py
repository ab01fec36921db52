"""The policy gate: the one door through which data leaves the platform for a partner.

``decide`` is the rule (pure): the agreement is active and in its dates today; the request's purpose, dataset,
fields, organisations, dates and granularity are all within what it agreed. ``release`` applies it: the decision,
allow or deny, is written to the audit log first (with counts, never values), and only an allowed request reads
the data, which leaves through disclosure control (aggregates) or de-identification (records). Nothing else in
Mutual reads the data plane for a partner: a test scans the code for any second path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import duckdb
import pyarrow as pa
from sqlalchemy.orm import Session, sessionmaker

from mutual.catalog import load_catalog
from mutual.control.models import AgreementRecord
from mutual.governance import audit
from mutual.governance.agreements import SHARING, Agreement, Granularity, Status
from mutual.governance.deidentify import ExtractReport, extract, extract_postgres, extract_spark
from mutual.governance.disclosure import publish_count
from mutual.governance.pseudonym import agreement_key
from mutual.store.base import ObservationQuery, Store
from mutual.workspace import workspace_secret

if TYPE_CHECKING:
    from mutual.store.postgres_store import PgStore
    from mutual.store.warehouse_store import WarehouseStore

PSEUDONYM_SECRET = "pseudonym_secret"


class GateDenied(PermissionError):
    """A request the agreement does not cover; the refusal is in the audit log."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


@dataclass(frozen=True)
class Request:
    """What a partner asks for, under which agreement."""

    agreement: str
    dataset: str
    fields: tuple[str, ...]
    orgs: tuple[str, ...]
    start: date
    end: date
    granularity: Granularity
    purpose: str | None = None  # the purpose category the partner states; must be the agreement's
    metrics: tuple[str, ...] = field(default_factory=tuple)  # capacity: which metrics (all when empty)


def decide(agreement: Agreement, status: Status, request: Request, today: date) -> list[str]:
    """Every reason to refuse ``request``, in words; [] means allow."""
    reasons = []
    if status not in SHARING:
        reasons.append(f"agreement {agreement.id} is {status.value}, not active")
    if not agreement.start <= today <= agreement.end:
        reasons.append(f"agreement {agreement.id} runs from {agreement.start} to {agreement.end}, not on {today}")
    if request.purpose is not None and request.purpose != agreement.purpose_category:
        reasons.append(f"the purpose {request.purpose} is not the agreed {agreement.purpose_category}")
    if request.dataset not in agreement.datasets:
        reasons.append(f"dataset {request.dataset} is not in the agreement")
    else:
        extra = [f for f in request.fields if f not in agreement.fields.get(request.dataset, [])]
        if extra:
            reasons.append(f"field(s) {', '.join(extra)} of {request.dataset} are not agreed")
    if not request.fields:
        reasons.append("no fields asked for")
    outside = [o for o in request.orgs if o not in agreement.orgs]
    if outside or not request.orgs:
        reasons.append(f"organisation(s) {', '.join(outside) or '(none named)'} are not covered")
    if request.start > request.end or request.start < agreement.data_from or request.end > agreement.data_to:
        reasons.append(f"dates {request.start} to {request.end} are outside the agreed {agreement.data_from} to "
                       f"{agreement.data_to}")
    if request.granularity == Granularity.PSEUDONYMISED and agreement.granularity != Granularity.PSEUDONYMISED:
        reasons.append("record-level data is not agreed: aggregates only")
    return reasons


def _decision(sessions: sessionmaker[Session], request: Request, actor: str, today: date) -> Agreement:
    """Decide and audit; raises ``GateDenied`` (after the refusal is committed to the log)."""
    with sessions.begin() as s:
        rec = s.get(AgreementRecord, request.agreement)
        if rec is None:
            reasons = [f"no agreement {request.agreement}"]
            agreement = None
        else:
            agreement = Agreement.model_validate_json(rec.document)
            reasons = decide(agreement, Status(rec.status), request, today)
        audit.append(s, actor=actor, action="gate.deny" if reasons else "gate.allow", object_type="dataset",
                     object_id=request.dataset, agreement=request.agreement if rec is not None else None,
                     details={"granularity": request.granularity.value, "fields": len(request.fields),
                              "orgs": len(request.orgs), "refusals": len(reasons)})
    if reasons or agreement is None:
        raise GateDenied(reasons)
    return agreement


def _released(sessions: sessionmaker[Session], request: Request, actor: str, rows: int, suppressed: int) -> None:
    with sessions.begin() as s:
        audit.append(s, actor=actor, action="gate.release", object_type="dataset", object_id=request.dataset,
                     agreement=request.agreement, details={"rows": rows, "suppressed": suppressed})


def release_capacity(sessions: sessionmaker[Session], store: Store, request: Request, *, actor: str,
                     today: date) -> pa.Table:
    """Capacity values for an aggregate request: the agreed fields only, each count through disclosure control
    (1–7 suppressed, the rest rounded to 5), with a note per value saying what was done."""
    _decision(sessions, request, actor, today)
    counts = {m.code for m in load_catalog().metrics if m.integer}
    found = store.observations(ObservationQuery(start=request.start, end=request.end))
    found = found.filter(found.org.isin(list(request.orgs)))
    if request.metrics:
        found = found.filter(found.metric.isin(list(request.metrics)))
    rows = found.select("org", "metric", "dims", "period", "value").order_by(
        ["org", "metric", "dims", "period"]).to_pyarrow().to_pylist()
    out: dict[str, list[object]] = {f: [] for f in request.fields}
    notes, suppressed = [], 0
    for r in rows:
        value, note = r["value"], "as reported"
        if r["metric"] in counts and value is not None and float(value).is_integer():
            entry = publish_count(int(value))
            value, note = entry.shown, entry.reason
            suppressed += entry.suppressed
        for f in request.fields:
            out[f].append(value if f == "value" else r[f])
        notes.append(note)
    table = pa.table({**out, "disclosure": notes}) if rows else pa.table(
        {**{f: pa.array([], pa.string()) for f in request.fields}, "disclosure": pa.array([], pa.string())})
    _released(sessions, request, actor, len(rows), suppressed)
    return table


def release_extract(sessions: sessionmaker[Session], home: Path, source: str | None, request: Request, *,
                    actor: str, today: date, optouts: pa.Array | None = None, out: Path | None = None,
                    store: Store | None = None, spark: Any = None) -> tuple[pa.Table | None, ExtractReport]:
    """A record-level extract (opt-outs removed, agreed fields, generalised, pseudonymised with the agreement's
    key) and its k-anonymity report. The episodes are ``source`` (a DuckDB relation, e.g. ``read_parquet('…')``,
    or with ``spark`` a Parquet path that Spark session reads) or, when it is None, the workspace's own
    (``store``'s ``apc_episode`` table: with ``spark``, the warehouse's episode folder as a Spark job).
    ``optouts`` defaults to the workspace's national data opt-out list (``mutual optouts import``)."""
    _decision(sessions, request, actor, today)
    key = agreement_key(workspace_secret(home / PSEUDONYM_SECRET, "every pseudonym changes"), request.agreement)
    scope: dict[str, Any] = {"fields": request.fields, "key": key, "out": out, "trusts": request.orgs,
                             "admitted": (request.start, request.end)}
    if source is None and (store is None or not store.has_table("apc_episode")):
        raise GateDenied(["this workspace holds no admitted-patient-care episodes"])
    if optouts is None and store is not None and store.has_table("optout") and (
            spark is not None or source is not None or store.engine != "postgres"):
        optouts = store.arrow("SELECT nhs_number FROM optout", {"nhs_number": "BIGINT"}).column(0).combine_chunks()
    if spark is not None:
        if source is None and store is not None and store.engine == "spark":
            source = str(cast("WarehouseStore", store).folder / "apc_episode")  # the warehouse's episodes
        if source is None:
            raise ValueError("a Spark extract reads a Parquet path: give source")
        table, report = extract_spark(spark, source, optouts=optouts, **scope)
    elif source is None and store is not None and store.engine == "postgres":
        view = cast("PgStore", store.view())  # its own connection: the extract's temp tables stay in it
        try:
            table, report = extract_postgres(view, "apc_episode", optouts=optouts, **scope)
        finally:
            view.close()
    else:
        if source is None and store is not None:
            con, relation = store.work.cursor(), "apc_episode"  # its own connection: the extract's temp tables stay
        else:
            con, relation = duckdb.connect(), str(source)
        try:
            table, report = extract(con, relation, optouts=optouts, **scope)
        finally:
            con.close()
    _released(sessions, request, actor, report.rows_out, report.opted_out)
    return table, report
