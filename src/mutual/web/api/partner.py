"""The partner API: what a data-sharing partner's system may read, only through the policy gate.

Two datasets: ``capacity`` (aggregate values, through disclosure control) and ``apc_episodes`` (record level:
opted-out patients removed, the agreed fields only, quasi-identifiers generalised, identifiers replaced by the
agreement's own pseudonyms, with the extract's k-anonymity). A partner's token is bound to one agreement
(``mutual tokens create --agreement``); every request is decided by ``governance.gate`` against that agreement
(active, in its dates, the agreed purpose, dataset, fields, organisations, data dates and granularity), and the
decision is audited allow or deny. A refusal is a 403 listing every reason.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from mutual.governance.agreements import Granularity
from mutual.governance.gate import GateDenied, release_capacity, release_extract
from mutual.governance.gate import Request as GateRequest
from mutual.web.accounts import Principal, Role
from mutual.web.api.common import check_range, error_doc, rows, workspace
from mutual.web.api.data import PARQUET, table_response
from mutual.web.auth import require
from mutual.web.errors import ApiError

router = APIRouter(prefix="/partner", tags=["partner"])
PartnerSystem = Annotated[Principal, Depends(require(Role.PARTNER))]


def _codes(text: str, name: str) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    if not found or len(found) > 500:
        raise ApiError(422, "invalid_request", f"{name}: give 1 to 500 comma-separated values",
                       {"parameter": name})
    return found


class Released(BaseModel):
    agreement: str
    dataset: Literal["capacity"]
    rows: list[dict[str, Any]] = Field(description="The agreed fields, and how disclosure control treated each "
                                                   "value (suppressed: 1–7, rounded to 5, as reported)")


Fields = Annotated[str, Query(max_length=500, description="Comma-separated agreed fields")]
Orgs = Annotated[str, Query(max_length=5000, description="Comma-separated ODS codes")]
Start = Annotated[date, Query(alias="from", description="First day")]
End = Annotated[date, Query(alias="to", description="Last day")]
Purpose = Annotated[str | None, Query(max_length=40, description="The purpose the data is for")]
REFUSED: dict[int | str, dict[str, Any]] = {403: error_doc(
    "The agreement does not cover this request (every reason is listed), or the caller is not a partner's system")}


def _ask(principal: Principal, dataset: str, fields: str, orgs: str, start: date, end: date, purpose: str | None,
         granularity: Granularity, metrics: str | None = None) -> GateRequest:
    check_range(start, end)
    if principal.agreement is None:
        raise ApiError(403, "forbidden", "this token is not bound to an agreement")
    return GateRequest(agreement=principal.agreement, dataset=dataset, fields=_codes(fields, "fields"),
                       orgs=tuple(o.upper() for o in _codes(orgs, "orgs")), start=start, end=end,
                       granularity=granularity, purpose=purpose,
                       metrics=_codes(metrics, "metrics") if metrics else ())


def _refused(principal: Principal, exc: GateDenied) -> ApiError:
    return ApiError(403, "not_agreed", f"agreement {principal.agreement} does not cover this request",
                    {"reasons": exc.reasons})


@router.get("/capacity", response_model=Released, responses=REFUSED,
            summary="Capacity values under the caller's agreement, through the policy gate")
def capacity(request: Request, principal: PartnerSystem,
             fields: Annotated[str, Query(max_length=500, description="Comma-separated: org, metric, dims, period, "
                                                                      "value")],
             orgs: Orgs, start: Start, end: End,
             metrics: Annotated[str | None, Query(max_length=2000, description="Comma-separated metric codes")] = None,
             purpose: Purpose = None, granularity: Annotated[Granularity, Query()] = Granularity.AGGREGATE) -> Any:
    ask = _ask(principal, "capacity", fields, orgs, start, end, purpose, granularity, metrics)
    with workspace(request) as m:
        try:
            table = release_capacity(m.sessions, m.store, ask, actor=f"partner:{principal.username}",
                                     today=datetime.now(UTC).date())
        except GateDenied as exc:
            raise _refused(principal, exc) from None
    return {"agreement": principal.agreement, "dataset": "capacity", "rows": rows(table)}


class KAnonymity(BaseModel):
    k: int
    smallest_group: int | None = Field(description="The fewest records sharing one combination of the released "
                                                   "quasi-identifiers (age band, sex, postcode district, trust)")
    records_below_k: int


class Extract(BaseModel):
    agreement: str
    dataset: Literal["apc_episodes"]
    episodes_covered: int = Field(description="Episodes at the organisations and admission dates asked for")
    opted_out: int = Field(description="Of those, episodes of patients with a national data opt-out: left out")
    columns: list[str]
    k_anonymity: KAnonymity
    rows: list[dict[str, Any]]


@router.get("/episodes", response_model=Extract,
            responses={**REFUSED, 200: {"content": {PARQUET: {"schema": {"type": "string", "format": "binary"}}},
                                        "description": "The extract as JSON, or with format=parquet as a file "
                                                       "(the report in X-Mutual-* headers)"}},
            summary="A de-identified record-level extract under the caller's agreement, through the policy gate")
def episodes(request: Request, principal: PartnerSystem,
             fields: Annotated[str, Query(max_length=500, description="Comma-separated: nhs_number, episode_id, "
                                                                      "date_of_birth, sex, postcode, trust, "
                                                                      "admission_date, discharge_date, "
                                                                      "primary_diagnosis, critical_care_days, "
                                                                      "ventilated")],
             orgs: Orgs, start: Start, end: End, purpose: Purpose = None,
             format: Annotated[Literal["json", "parquet"], Query()] = "json") -> Any:
    """Episodes admitted from ``from`` to ``to`` at ``orgs``: NHS numbers become ``patient`` (the agreement's
    pseudonym), dates of birth an age band, postcodes their district and dates their month."""
    ask = _ask(principal, "apc_episodes", fields, orgs, start, end, purpose, Granularity.PSEUDONYMISED)
    with workspace(request) as m:
        try:
            table, report = release_extract(m.sessions, m.workspace.home, None, ask,
                                            actor=f"partner:{principal.username}", today=datetime.now(UTC).date(),
                                            store=m.store)
        except GateDenied as exc:
            raise _refused(principal, exc) from None
    assert table is not None
    if format == "parquet":
        response: Response = table_response(table, "parquet", f"{principal.agreement}-apc_episodes")
        response.headers.update({"X-Mutual-Episodes-Covered": str(report.rows_in),
                                 "X-Mutual-Opted-Out": str(report.opted_out),
                                 "X-Mutual-Smallest-Group": str(report.smallest_group or 0)})
        return response
    return {"agreement": principal.agreement, "dataset": "apc_episodes", "episodes_covered": report.rows_in,
            "opted_out": report.opted_out, "columns": list(report.columns),
            "k_anonymity": {"k": report.k, "smallest_group": report.smallest_group,
                            "records_below_k": report.below_k},
            "rows": rows(table)}
