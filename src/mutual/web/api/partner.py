"""The partner API: what a data-sharing partner's system may read, only through the policy gate.

A partner's token is bound to one agreement (``mutual tokens create --agreement``); every request is decided by
``governance.gate`` against that agreement (active, in its dates, the agreed purpose, dataset, fields,
organisations, data dates and granularity), the decision is audited allow or deny, and what is released passes
disclosure control. A refusal is a 403 listing every reason.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from mutual.governance.agreements import Granularity
from mutual.governance.gate import GateDenied, release_capacity
from mutual.governance.gate import Request as GateRequest
from mutual.web.accounts import Principal, Role
from mutual.web.api.common import check_range, error_doc, workspace
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


@router.get("/capacity", response_model=Released,
            responses={403: error_doc("The agreement does not cover this request (every reason is listed), or "
                                      "the caller is not a partner's system")},
            summary="Capacity values under the caller's agreement, through the policy gate")
def capacity(request: Request, principal: PartnerSystem,
             fields: Annotated[str, Query(max_length=500, description="Comma-separated: org, metric, dims, period, "
                                                                      "value")],
             orgs: Annotated[str, Query(max_length=5000, description="Comma-separated ODS codes")],
             start: Annotated[date, Query(alias="from", description="First day")],
             end: Annotated[date, Query(alias="to", description="Last day")],
             metrics: Annotated[str | None, Query(max_length=2000, description="Comma-separated metric codes")] = None,
             purpose: Annotated[str | None, Query(max_length=40, description="The purpose the data is for")] = None,
             granularity: Annotated[Granularity, Query()] = Granularity.AGGREGATE) -> Any:
    check_range(start, end)
    if principal.agreement is None:
        raise ApiError(403, "forbidden", "this token is not bound to an agreement")
    ask = GateRequest(agreement=principal.agreement, dataset="capacity", fields=_codes(fields, "fields"),
                      orgs=tuple(o.upper() for o in _codes(orgs, "orgs")), start=start, end=end,
                      granularity=granularity, purpose=purpose,
                      metrics=_codes(metrics, "metrics") if metrics else ())
    with workspace(request) as m:
        try:
            table = release_capacity(m.sessions, m.store, ask, actor=f"partner:{principal.username}",
                                     today=datetime.now(UTC).date())
        except GateDenied as exc:
            raise ApiError(403, "not_agreed", f"agreement {principal.agreement} does not cover this request",
                           {"reasons": exc.reasons}) from None
    rows = [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items()} for r in table.to_pylist()]
    return {"agreement": principal.agreement, "dataset": "capacity", "rows": rows}
