"""Organisations: ODS codes, the hierarchy site -> trust -> STP/ICS -> region -> nation, successors, places.

Pure functions: each reader turns one published layout into ``Org`` records; ``merge_orgs`` combines them.
The store persists the result; nothing here touches a database.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel


class OrgKind(StrEnum):
    NATION = "nation"
    REGION = "region"
    STP = "stp"
    TRUST = "trust"
    SITE = "site"
    AGGREGATE = "aggregate"


LEVEL = {OrgKind.NATION: 0, OrgKind.REGION: 1, OrgKind.STP: 2, OrgKind.TRUST: 3, OrgKind.SITE: 4}


class Org(BaseModel):
    code: str
    name: str
    kind: OrgKind
    parent: str | None = None
    region: str | None = None
    postcode: str | None = None
    open_date: date | None = None
    close_date: date | None = None
    successor: str | None = None
    successor_date: date | None = None
    lat: float | None = None
    lon: float | None = None


class OrgFileError(ValueError):
    """A file that is not one of the organisation layouts Mutual reads."""


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return None if value in {"", "NA", "N/A"} else value


def _ods_date(value: str | None) -> date | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError as exc:
        raise OrgFileError(f"date {value!r} is not YYYYMMDD") from exc


def _float(value: str | None) -> float | None:
    value = _blank(value)
    return None if value is None else float(value)


@cache
def reference_orgs() -> tuple[Org, ...]:
    """The nation, aggregates and regions every workspace starts with."""
    ref = yaml.safe_load(resources.files("mutual.catalog").joinpath("reference.yaml").read_text("utf-8"))
    orgs = [Org(code=n["code"], name=n["name"], kind=OrgKind.NATION) for n in ref["nations"]]
    orgs += [Org(code=a["code"], name=a["name"], kind=OrgKind.AGGREGATE, parent=a["parent"])
             for a in ref["aggregates"]]
    orgs += [Org(code=r["code"], name=r["name"], kind=OrgKind.REGION, parent=r["parent"], region=r["code"])
             for r in ref["regions"]]
    return tuple(orgs)


@cache
def reference_successors() -> tuple[tuple[str, str, date], ...]:
    ref = yaml.safe_load(resources.files("mutual.catalog").joinpath("reference.yaml").read_text("utf-8"))
    return tuple((s["code"], s["successor"], s["date"]) for s in ref["successors"])


def read_etr(text: str) -> list[Org]:
    """ODS ``etr.csv`` (no header): code, name, region Y-code, geography, address 1-5, postcode, open, close."""
    orgs = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 12:
            raise OrgFileError(f"row {n}: expected the 27-column ODS etr layout, found {len(row)} columns")
        region = _blank(row[2])
        orgs.append(Org(code=row[0].strip(), name=row[1].strip(), kind=OrgKind.TRUST, parent=region,
                        region=region, postcode=_blank(row[9]), open_date=_ods_date(row[10]),
                        close_date=_ods_date(row[11])))
    return orgs


def read_geocoded(text: str) -> list[Org]:
    """The geocoded trust list: ODS columns with a header, ``status`` and ``lat``/``long``."""
    orgs = []
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            region = _blank(row["national_grouping"])
            orgs.append(Org(code=row["org_code"].strip(), name=row["name"].strip(), kind=OrgKind.TRUST,
                            parent=region, region=region, postcode=_blank(row["postcode"]),
                            lat=_float(row["lat"]), lon=_float(row["long"])))
        except (KeyError, ValueError) as exc:
            raise OrgFileError(f"row {n}: {exc}") from exc
    return orgs


def read_stp_lookup(text: str) -> list[Org]:
    """The trust -> STP lookup (``code``, ``Trust``, ``STP``, ``STP_code``): trusts and their STPs."""
    orgs: dict[str, Org] = {}
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            stp, trust = row["STP_code"].strip(), row["code"].strip()
            orgs.setdefault(stp, Org(code=stp, name=row["STP"].strip(), kind=OrgKind.STP))
            orgs[trust] = Org(code=trust, name=row["Trust"].strip(), kind=OrgKind.TRUST, parent=stp)
        except (KeyError, AttributeError) as exc:
            raise OrgFileError(f"row {n}: missing column {exc}") from exc
    return list(orgs.values())


MUTUAL_COLUMNS = ["code", "name", "kind", "parent", "lat", "lon"]


def read_mutual_orgs(text: str) -> list[Org]:
    """Mutual's own layout, for organisations outside the ODS files: code,name,kind,parent[,lat,lon,...]."""
    orgs = []
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            orgs.append(Org.model_validate({k: _blank(v) for k, v in row.items() if k}))
        except ValueError as exc:
            raise OrgFileError(f"row {n}: {exc}") from exc
    return orgs


def read_successors(text: str) -> list[tuple[str, str, date]]:
    """ODS ``succ.csv`` (no header): old code, new code, reason, effective date YYYYMMDD."""
    out = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if len(row) < 4:
            raise OrgFileError(f"row {n}: expected old code, new code, reason, date")
        when = _ods_date(row[3])
        if when is None:
            raise OrgFileError(f"row {n}: the effective date is empty")
        out.append((row[0].strip(), row[1].strip(), when))
    return out


def read_org_file(path: Path) -> tuple[str, list[Org], list[tuple[str, str, date]]]:
    """Detect the layout of ``path`` from its first line; return (layout name, orgs, successors)."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    first = next(csv.reader(io.StringIO(text)), [])
    header = {c.strip() for c in first}
    if {"STP_code", "code", "Trust"} <= header:
        return "stp-lookup", read_stp_lookup(text), []
    if {"org_code", "lat", "long"} <= header:
        return "ods-geocoded", read_geocoded(text), []
    if {"code", "name", "kind"} <= header:
        return "mutual", read_mutual_orgs(text), []
    if len(first) >= 24:
        return "ods-etr", read_etr(text), []
    if len(first) in (4, 5) and first[3].strip().isdigit():
        return "ods-successors", [], read_successors(text)
    raise OrgFileError(
        f"{path.name}: not an organisation file Mutual reads (ODS etr.csv or succ.csv, the geocoded trust "
        "list, the trust-STP lookup, or a CSV with columns code,name,kind,parent)")


def _better_parent(current: Org, new_parent: str | None, kinds: dict[str, OrgKind]) -> str | None:
    """Keep the most specific parent: an STP beats a region, a region beats nothing."""
    if new_parent is None:
        return current.parent
    if current.parent is None:
        return new_parent
    old_level = LEVEL.get(kinds.get(current.parent, OrgKind.REGION), 1)
    new_level = LEVEL.get(kinds.get(new_parent, OrgKind.REGION), 1)
    return new_parent if new_level >= old_level else current.parent


def merge_orgs(existing: Iterable[Org], incoming: Iterable[Org],
               successors: Iterable[tuple[str, str, date]] = ()) -> list[Org]:
    """Combine organisation records field by field: a later non-empty value fills or replaces an earlier one,
    except that a trust keeps its most specific parent. STPs inherit the region most of their trusts are in."""
    merged = {o.code: o.model_copy() for o in existing}
    incoming = list(incoming)
    kinds = {o.code: o.kind for o in [*merged.values(), *incoming]}
    for new in incoming:
        old = merged.get(new.code)
        if old is None:
            merged[new.code] = new.model_copy()
            continue
        updates = {k: v for k, v in new.model_dump(exclude={"parent", "kind"}).items() if v is not None}
        updates["parent"] = _better_parent(old, new.parent, kinds)
        merged[new.code] = old.model_copy(update=updates)
    for old_code, new_code, when in successors:
        if old_code in merged and old_code != new_code:
            org = merged[old_code]
            merged[old_code] = org.model_copy(update={
                "successor": new_code, "successor_date": when,
                "close_date": org.close_date or date.fromordinal(when.toordinal() - 1)})
    votes: dict[str, Counter[str]] = {}
    for org in merged.values():
        if org.kind == OrgKind.TRUST and org.parent and org.region and merged.get(org.parent, org).kind == OrgKind.STP:
            votes.setdefault(org.parent, Counter())[org.region] += 1
    for stp, counter in votes.items():
        region = counter.most_common(1)[0][0]
        merged[stp] = merged[stp].model_copy(update={"parent": merged[stp].parent or region,
                                                     "region": merged[stp].region or region})
    for org in list(merged.values()):
        if org.kind == OrgKind.TRUST and org.region is None and org.parent in merged:
            merged[org.code] = org.model_copy(update={"region": merged[org.parent].region})
    return sorted(merged.values(), key=lambda o: o.code)
