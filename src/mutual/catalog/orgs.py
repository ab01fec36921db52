"""Organisations: ODS codes, the hierarchy site -> trust -> STP/ICS -> region -> nation, successors, places.

Pure functions: each reader turns one published layout into ``Org`` records; ``merge_orgs`` combines them.
The store persists the result; nothing here touches a database.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

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
    if text.lstrip().startswith("{"):
        return "fhir", read_fhir_orgs(text, path.name), []
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
        "list, the trust-STP lookup, a CSV with columns code,name,kind,parent, or FHIR Location/Organization JSON)")


# -- FHIR Location and Organization resources ------------------------------------------------------------------

ODS_SYSTEMS = ("https://fhir.nhs.uk/Id/ods-organization-code", "https://fhir.nhs.uk/Id/ods-site-code")
# Mutual's own identifier system, for organisations without an ODS code (Mutual writes it in MeasureReports)
MUTUAL_ORG_SYSTEM = "urn:mutual:org"
# SANER's example Locations for US states have ids such as ``states-NJ``; the state's USPS code is its org code
_US_STATE_ID = re.compile(r"^states?-([A-Za-z]{2})$")
US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas",
    "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia",
    "WI": "Wisconsin", "WY": "Wyoming", "PR": "Puerto Rico", "GU": "Guam", "VI": "U.S. Virgin Islands",
    "AS": "American Samoa", "MP": "Northern Mariana Islands",
}


def fhir_org_code(resource_id: str | None, identifiers: Iterable[tuple[str | None, str | None]]) -> str | None:
    """The Mutual organisation code of a FHIR Location or Organization (the same rule for an imported resource
    and for a MeasureReport's subject or reporter reference, so the two meet):

    1. an identifier in the ODS organisation or site code system, else in Mutual's own system, is the code;
    2. an id ``states-XX`` (SANER's US state Locations) gives the state's USPS code ``XX``;
    3. otherwise the resource id itself. Other identifiers (a census FIPS code, say) are not Mutual codes."""
    ids = [(s, (v or "").strip()) for s, v in identifiers if v and v.strip()]
    for wanted in (*ODS_SYSTEMS, MUTUAL_ORG_SYSTEM):
        for system, value in ids:
            if system == wanted:
                return value
    rid = (resource_id or "").strip()
    if not rid:
        return None
    state = _US_STATE_ID.match(rid)
    return state.group(1).upper() if state else rid


def _identifiers(resource: dict[str, object]) -> list[tuple[str | None, str | None]]:
    found = resource.get("identifier")
    items = found if isinstance(found, list) else [found] if isinstance(found, dict) else []
    return [(i.get("system"), i.get("value")) for i in items if isinstance(i, dict)
            and isinstance(i.get("system", ""), str) and isinstance(i.get("value"), str)]


def _reference_id(reference: object) -> str | None:
    """``Location/states-NJ`` (or a full URL ending so, maybe with ``/_history/n``) -> ``states-NJ``."""
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    parts = [p for p in reference["reference"].split("/") if p]
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return parts[-1] if len(parts) >= 2 else None


def _coding_codes(concepts: object) -> set[str]:
    items = concepts if isinstance(concepts, list) else [concepts]
    return {str(c.get("code")) for cc in items if isinstance(cc, dict)
            for c in cc.get("coding") or [] if isinstance(c, dict)}


def fhir_org(resource: dict[str, object]) -> Org:
    """One Organisation from a FHIR Location or Organization (already validated).

    Kind: a Location for a US state (``states-XX``) or a jurisdiction (physicalType ``jdn``) is a region, any
    other Location a site; an Organization with an ODS code or of type ``prov`` (healthcare provider) is a trust,
    any other (a public health department, say) an aggregate. Parent: ``partOf``, by the same code rule."""
    rtype, rid = resource.get("resourceType"), resource.get("id")
    rid = rid if isinstance(rid, str) else None
    code = fhir_org_code(rid, _identifiers(resource))
    if code is None:
        raise OrgFileError(f"{rtype} without an id or identifier: no organisation code to give it")
    ods = any(s in ODS_SYSTEMS for s, _ in _identifiers(resource))
    if rtype == "Location":
        state = _US_STATE_ID.match(rid or "")
        regional = state is not None or "jdn" in _coding_codes(resource.get("physicalType"))
        kind = OrgKind.REGION if regional else OrgKind.SITE
        default_name = US_STATES.get(code, code) if state else code
    else:
        kind = OrgKind.TRUST if ods or "prov" in _coding_codes(resource.get("type")) else OrgKind.AGGREGATE
        default_name = code
    aliases = resource.get("alias")
    name = resource.get("name") or (aliases[0] if isinstance(aliases, list) and aliases else None) or default_name
    position = resource.get("position")
    lat = lon = None
    if isinstance(position, dict):
        lat, lon = position.get("latitude"), position.get("longitude")
    parent_ref = resource.get("partOf")
    parent = fhir_org_code(_reference_id(parent_ref), _identifiers(parent_ref) if isinstance(parent_ref, dict)
                           else []) if parent_ref else None
    return Org(code=code, name=str(name), kind=kind, parent=parent, region=code if kind == OrgKind.REGION else None,
               lat=None if lat is None else float(str(lat)), lon=None if lon is None else float(str(lon)))


def fhir_error_words(exc: Exception, limit: int = 3) -> str:
    """A FHIR model's validation error in words: ``group[0].population[1].count: Input should be a valid
    integer`` (the first few, and how many more)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        found = errors()
    except Exception:  # a broken error object: fall back to its text
        return str(exc).splitlines()[0]
    words = []
    for err in found[:limit]:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.get("loc", ())).lstrip(".")
        words.append(f"{path or 'resource'}: {err.get('msg', 'invalid')}")
    more = f" (and {len(found) - limit} more)" if len(found) > limit else ""
    return "; ".join(words) + more


def read_fhir_orgs(text: str, origin: str = "file") -> list[Org]:
    """FHIR Location and Organization resources (one JSON resource, or a Bundle of them), each validated with
    the R4B models; other resources in a Bundle (a MeasureReport beside its Location) are skipped."""
    from fhir.resources.R4B.location import Location
    from fhir.resources.R4B.organization import Organization

    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise OrgFileError(f"{origin}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise OrgFileError(f"{origin}: expected a FHIR resource (a JSON object with resourceType)")
    if doc.get("resourceType") == "Bundle":
        entries = doc["entry"] if isinstance(doc.get("entry"), list) else []
        resources_ = [(f"entry[{i}]", e.get("resource")) for i, e in enumerate(entries) if isinstance(e, dict)]
    else:
        resources_ = [("resource", doc)]
    models: dict[str, Any] = {"Location": Location, "Organization": Organization}
    orgs = []
    for where, resource in resources_:
        if not isinstance(resource, dict) or resource.get("resourceType") not in models:
            continue
        try:
            models[str(resource["resourceType"])].model_validate(resource)
        except Exception as exc:  # the FHIR models raise pydantic and plain ValueErrors alike
            raise OrgFileError(f"{origin} {where}: not a valid FHIR {resource['resourceType']}: "
                               f"{fhir_error_words(exc)}") from exc
        orgs.append(fhir_org(resource))
    if not orgs:
        raise OrgFileError(f"{origin}: no FHIR Location or Organization resource in it")
    return orgs


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
