"""FHIR R4 MeasureReports (HL7 SANER) in and out.

Reading: one MeasureReport, a Bundle of them (any Bundle type: collection, transaction, batch, searchset) or
NDJSON (one resource per line, read line by line so a 1 GB export costs little memory). Each MeasureReport is
validated with the fhir.resources R4B model; one that fails becomes a malformed row naming its entry and the
error, and the rest of the file is still read. Only two kinds of damage are read around instead: a population
``count`` or a ``period`` date the model refuses is passed on raw, so the shared rules report it in their words
(not a number, not whole, bad date) at its exact place.

Mapping (the rules do the lookups, so every format gets the same checks and messages):

- each ``group[i].population[j]`` is one value cell: ``metric_raw`` is its code in a SANER PopulationSystem
  (either the ``us`` or the ``uv`` system; the ``measure-population`` coding beside it says only the role and is
  ignored), mapped to the catalogue through the spec's metric map built from the catalogue's SANER names;
  a code in another system is kept as ``system|code`` (a catalogue code in any system is taken as is).
  A population without a count (absent, or only a data-absent-reason extension) is a missing value, never zero;
- ``group.measureScore`` is a reported rate, checked against numerator / denominator when the group has both
  and never stored; a group coded with a catalogue metric and no population (how the writer sends a value that
  is not whole) gives that metric's value;
- ``group.stratifier`` strata whose components are catalogue dimensions give values with those dims;
- the subject (else the reporter) reference or identifier gives the organisation, by the rule of
  ``catalog.orgs.fhir_org_code`` (ODS identifier; ``Location/states-NJ`` -> ``NJ``; else the id); the caller's
  ``--org`` overrides both;
- ``period.start`` gives the day: its date as written (a dateTime's local date, not converted to UTC, since a
  report for 4 April stamped ``2020-04-04T00:00:00-04:00`` is about 4 April); ``period.end`` on a later day
  gives the period's last day.

Lineage: ``sheet`` is the MeasureReport id (``entry[i]`` for an entry or NDJSON line without one), ``row_num``
the entry or line number (1 for a single resource), ``col`` a FHIR path such as ``group[0].population[2]``.

Writing: ``measure_report`` and ``bundle`` turn stored observations back into valid R4B MeasureReports with
SANER population codes (the ``uv`` system), so read -> store -> write -> read gives the same values.
"""

from __future__ import annotations

import codecs
import copy
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

import pyarrow as pa
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measurereport import MeasureReport
from pydantic import ValidationError

from mutual.catalog import Catalog, Metric
from mutual.catalog.orgs import MUTUAL_ORG_SYSTEM, ODS_SYSTEMS, fhir_error_words, fhir_org_code
from mutual.ingest.cells import (
    CELL_SCHEMA,
    MALFORMED_SCHEMA,
    RATE_SCHEMA,
    Read,
    ReadContext,
    ReadError,
    malformed_table,
    rates_table,
    record_batch,
)
from mutual.ingest.specs import LongSpec, OrgSpec, PeriodSpec, Spec

FORMAT = "fhir-measurereport"
MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
SANER_UV = "http://hl7.org/fhir/uv/saner/CodeSystem/PopulationSystem"
# Mutual's own code system, for catalogue metrics SANER has no code for
MUTUAL_METRIC_SYSTEM = "urn:mutual:metric"
# Populations the SANER FEMA measures define as "intermediate population used to simplify calculations" (their
# Measure definitions say so): bookkeeping, not capacity. They are recognised and skipped, not unknown metrics.
NON_METRIC_POPULATIONS = frozenset({"allreports", "latestreports"})
MAX_DEPTH = 200                     # a MeasureReport is about 10 levels deep; deeper is hostile or broken
MAX_DOCUMENT_BYTES = 256 << 20      # one JSON document is parsed whole; bigger files must come as NDJSON
MAX_LINE_BYTES = 64 << 20           # one NDJSON line (one resource)
KEEP_TEXT = 1 << 20                 # the text of a malformed part kept in the issue; the archive has all of it
FLUSH_CELLS = 100_000
_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})")
_ODS_LIKE = re.compile(r"^[A-Z0-9]{3,5}$")
_STRUCTURE = re.compile(r'[{}\[\]"]')
_STRING_BODY = re.compile(r'(?:[^"\\]|\\.)*+"')


# -- sniffing ------------------------------------------------------------------------------------------------

def _top_level_resource_type(text: str) -> str | None:
    """The ``resourceType`` of the first JSON object in ``text`` (which may be cut short), found without parsing
    the whole: strings and brackets only, so a nested resource's type is never taken for the top one. Linear in
    the text: a string that does not end (the head was cut inside it) stops the search."""
    depth, expect_value, i = 0, False, 0
    while (m := _STRUCTURE.search(text, i)) is not None:
        tok, i = m.group(), m.end()
        if tok in "{[":
            depth += 1
            expect_value = False
        elif tok in "}]":
            depth -= 1
            if depth <= 0:
                return None
        else:
            body = _STRING_BODY.match(text, i)
            if body is None:
                return None
            i = body.end()
            if depth != 1:
                continue
            try:
                word = json.loads(text[m.start():i])
            except ValueError:
                return None
            if expect_value:
                return word if isinstance(word, str) else None
            expect_value = word == "resourceType" and text[i:i + 64].lstrip().startswith(":")
    return None


def _strip_bom(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head.decode("utf-16", errors="ignore")
    return head.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="ignore")


def looks_like(head: bytes, filename: str) -> bool:
    """JSON (or NDJSON) whose first resource is a MeasureReport, or a Bundle with a MeasureReport in sight."""
    text = _strip_bom(head) or ""
    if not text.lstrip().startswith("{"):
        return False
    rtype = _top_level_resource_type(text)
    return rtype == "MeasureReport" or (rtype == "Bundle" and '"MeasureReport"' in text)


# -- reading -------------------------------------------------------------------------------------------------

def spec_for(catalog: Catalog) -> Spec:
    """The mapping the rules apply: SANER population codes -> catalogue metrics, ISO days, raw NULL = missing."""
    metric_map = {name: m.code for m in catalog.metrics for name in m.saner}
    return Spec(name=FORMAT, format="fhir", layout="long", description="FHIR R4 MeasureReport (HL7 SANER)",
                long=LongSpec(metric_column="population.code", value_column="population.count",
                              metric_map=metric_map),
                period=PeriodSpec(column="period.start", formats=["%Y-%m-%d"]), org=OrgSpec(codes={}),
                missing=[""])


def _text(value: object) -> str | None:
    """A JSON value as the text the file gave: numbers as written by JSON, strings as they are."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False)[:KEEP_TEXT]


def _day(value: object) -> str | None:
    """``2020-04-04``, ``2020-04-04T10:00:00-05:00`` -> ``2020-04-04``; anything else stays as written."""
    text = _text(value)
    if text is None:
        return None
    m = _DAY.match(text.strip())
    return m.group(1) if m else text


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    return value if isinstance(value, list) else []


def _obj(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _too_deep(obj: object, limit: int = MAX_DEPTH) -> bool:
    stack: list[tuple[object, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return False


def _loads(text: str) -> Any:
    """JSON with the standard library; deep nesting and odd constants come back as ValueError."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from exc


def _keep(text: str) -> str:
    if len(text) <= KEEP_TEXT:
        return text
    return text[:KEEP_TEXT] + f"… ({len(text)} characters in all; the archived file has the rest)"


def _codings(concept: object) -> list[tuple[str, str]]:
    """(system, code) pairs of a CodeableConcept, strings only."""
    if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list):
        return []
    return [(c.get("system") or "", c["code"]) for c in concept["coding"]
            if isinstance(c, dict) and isinstance(c.get("code"), str) and isinstance(c.get("system", ""), str)]


def _concept_word(concept: object) -> str | None:
    """The plain word a stratifier uses for a dimension or its value: the text, else the first code."""
    if isinstance(concept, dict) and isinstance(concept.get("text"), str):
        return concept["text"].strip()
    codes = _codings(concept)
    return codes[0][1].strip() if codes else None


def _tolerable(loc: tuple[int | str, ...]) -> bool:
    """Errors the rules report better than the model: a population's count, the period's dates."""
    if loc in (("period", "start"), ("period", "end")):
        return True
    if len(loc) == 5:
        return loc[0] == "group" and loc[2] == "population" and loc[4] == "count"
    return len(loc) == 9 and loc[0] == "group" and loc[2] == "stratifier" and loc[4] == "stratum" \
        and loc[6] == "population" and loc[8] == "count"


def _without(resource: dict[str, Any], locs: Iterable[tuple[int | str, ...]]) -> dict[str, Any]:
    """A copy of the resource with the fields at ``locs`` removed."""
    clone = copy.deepcopy(resource)
    for loc in locs:
        node: Any = clone
        for step in loc[:-1]:
            node = node[step]
        node.pop(loc[-1], None)
    return clone


class _CellBuffer:
    """Cells gathered column by column and packed into Arrow batches as they come, so a big NDJSON file never
    holds millions of Python dicts."""

    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []
        self.cols: dict[str, list[Any]] = {n: [] for n in CELL_SCHEMA.names}
        self.defaults: dict[str, Any] = {n: None for n in CELL_SCHEMA.names} | {
            "scale": 1.0, "dims": "", "deleted": False}

    def add(self, **values: Any) -> None:
        for name, column in self.cols.items():
            column.append(values.get(name, self.defaults[name]))
        if len(self.cols["raw"]) >= FLUSH_CELLS:
            self.flush()

    def flush(self) -> None:
        if self.cols["raw"]:
            self.batches.append(record_batch(self.cols, CELL_SCHEMA))
            self.cols = {n: [] for n in CELL_SCHEMA.names}

    def table(self) -> pa.Table:
        self.flush()
        return pa.Table.from_batches(self.batches, schema=CELL_SCHEMA)


class _Reader:
    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.catalog = ctx.catalog
        self.saner_systems = set(ctx.catalog.saner_systems)
        self.metric_codes = {m.code.lower() for m in ctx.catalog.metrics}
        self.dimensions = set(ctx.catalog.dimensions)
        self.cells = _CellBuffer()
        self.malformed: list[dict[str, object]] = []
        self.rates: list[dict[str, object]] = []
        self.rows_read = 0
        self.recognised = 0
        self.file_issues: list[tuple[str, str]] = []
        self._row_sheets: tuple[int, set[str]] = (0, set())
        self._strata_warned = False

    # -- records -------------------------------------------------------------------------------------------

    def _bad(self, sheet: str, row: int, text: str, problem: str) -> None:
        self.malformed.append({"sheet": sheet, "row_num": row, "line": _keep(text), "problem": problem})

    def _sheet(self, wanted: str, fallback: str, row: int) -> str:
        """The lineage sheet, unique within its row (two entries of one NDJSON Bundle line may share an id)."""
        if self._row_sheets[0] != row:
            self._row_sheets = (row, set())
        used = self._row_sheets[1]
        sheet = wanted if wanted not in used else fallback
        used.add(sheet)
        return sheet

    def resource(self, res: object, where: str, row: int, refs: dict[str, dict[str, Any]],
                 nested_ok: bool = True) -> None:
        """One entry or line: a MeasureReport is read; a Location or Organization (the report's subject, sent
        beside it) is recognised; a Bundle on an NDJSON line is read entry by entry; anything else is malformed."""
        if not isinstance(res, dict):
            self._bad(where, row, _text(res) or "", f"{where} is not a FHIR resource (a JSON object)")
            return
        rtype = res.get("resourceType")
        if rtype == "MeasureReport":
            self.report(res, where, row, refs)
        elif rtype in ("Location", "Organization"):
            self.recognised += 1   # reference data: import it with `mutual orgs import`
        elif rtype == "Bundle" and nested_ok:
            self.bundle(res, row, prefix=f"{where}.")
        else:
            self._bad(where, row, _text(res) or "",
                      f"{where} is a {_text(rtype) or 'JSON object without resourceType'}, not a MeasureReport")

    def bundle(self, doc: dict[str, Any], row: int | None = None, prefix: str = "") -> None:
        """A Bundle's entries; ``row`` is set when the Bundle is one NDJSON line (its entries share that line)."""
        entries = doc.get("entry", [])
        if not isinstance(entries, list):
            raise ReadError(f"{self.ctx.filename}: {prefix}Bundle.entry is not a list of entries")
        try:
            Bundle.model_validate({k: v for k, v in doc.items() if k != "entry"})
        except Exception as exc:  # the FHIR models raise pydantic and plain ValueErrors alike
            self.file_issues.append(("fhir_bundle", f"the {prefix}Bundle itself is not valid FHIR "
                                     f"({fhir_error_words(exc)}); its entries were read one by one"))
        refs = {}
        for e in entries:
            if isinstance(e, dict) and isinstance(e.get("resource"), dict):
                res = e["resource"]
                if isinstance(e.get("fullUrl"), str):
                    refs[e["fullUrl"]] = res
                if isinstance(res.get("resourceType"), str) and isinstance(res.get("id"), str):
                    refs[f"{res['resourceType']}/{res['id']}"] = res
        for i, e in enumerate(entries):
            where = f"{prefix}entry[{i}]"
            at = row if row is not None else i + 1
            if row is None:
                self.rows_read += 1
            if not isinstance(e, dict) or "resource" not in e:
                self._bad(where, at, _text(e) or "", f"{where} has no resource")
                continue
            self.resource(e["resource"], where, at, refs, nested_ok=False)

    # -- one MeasureReport ---------------------------------------------------------------------------------

    def _validate(self, res: dict[str, Any], where: str, row: int) -> bool:
        """Validate with the R4B model. Only a refused count or period date is read around (see module doc)."""
        if _too_deep(res):
            self._bad(where, row, "(not kept: nested too deep)", f"{where} is nested more than {MAX_DEPTH} levels")
            return False
        try:
            MeasureReport.model_validate(res)
            return True
        except ValidationError as exc:
            locs = [tuple(e["loc"]) for e in exc.errors()]
            if locs and all(_tolerable(loc) for loc in locs):
                try:
                    MeasureReport.model_validate(_without(res, locs))
                    return True
                except Exception as again:  # the FHIR models raise pydantic and plain ValueErrors alike
                    exc2: Exception = again
            else:
                exc2 = exc
        except Exception as other:  # the FHIR models raise pydantic and plain ValueErrors alike
            exc2 = other
        self._bad(where, row, json.dumps(res, ensure_ascii=False),
                  f"{where} is not a valid FHIR MeasureReport: {fhir_error_words(exc2)}")
        return False

    def _org(self, ref: object, res: dict[str, Any], refs: dict[str, dict[str, Any]]) -> str | None:
        """The code of a subject or reporter Reference, by the rule shared with `mutual orgs import`."""
        if not isinstance(ref, dict):
            return None
        ident = ref.get("identifier")
        ids = [(ident.get("system"), ident.get("value"))] if isinstance(ident, dict) else []
        target = None
        reference = ref.get("reference")
        rid = None
        if isinstance(reference, str):
            if reference.startswith("#"):
                contained = _list(res, "contained")
                target = next((c for c in contained if isinstance(c, dict) and c.get("id") == reference[1:]), None)
            else:
                target = refs.get(reference)
                parts = [p for p in reference.split("/") if p]
                if len(parts) >= 4 and parts[-2] == "_history":
                    parts = parts[:-2]
                rid = parts[-1] if len(parts) >= 2 else None
                target = target or refs.get("/".join(parts[-2:]))
        if isinstance(target, dict):
            found = _list(target, "identifier")
            ids += [(i.get("system"), i.get("value")) for i in found if isinstance(i, dict)]
            rid = target.get("id") if isinstance(target.get("id"), str) else rid
        ids = [(s, v) for s, v in ids if isinstance(s, str | None) and isinstance(v, str)]
        return fhir_org_code(rid, ids)

    def _metric_raw(self, concept: object) -> tuple[str | None, bool]:
        """(metric_raw, skip): the population's code as the rules should see it, and whether it is a known
        non-metric. The ``measure-population`` coding only names the role and is never the metric."""
        codes = _codings(concept)
        for system, code in codes:
            if system in self.saner_systems:
                return code, code.strip().lower() in NON_METRIC_POPULATIONS
        for system, code in codes:
            if system != MEASURE_POPULATION:
                known = system == MUTUAL_METRIC_SYSTEM or code.strip().lower() in self.metric_codes
                return (code if known else f"{system}|{code}"), False
        text = concept.get("text") if isinstance(concept, dict) else None
        return (text if isinstance(text, str) else None), False

    def report(self, res: dict[str, Any], where: str, row: int, refs: dict[str, dict[str, Any]]) -> None:
        rid = res.get("id")
        sheet = self._sheet(rid if isinstance(rid, str) and rid else where, where, row)
        if not self._validate(res, sheet, row):
            return
        subject, reporter = res.get("subject"), res.get("reporter")
        org = self.ctx.org or self._org(subject, res, refs) or self._org(reporter, res, refs)
        name = next((r["display"] for r in (subject, reporter)
                     if isinstance(r, dict) and isinstance(r.get("display"), str)), None)
        period = _obj(res, "period")
        start, end = _day(period.get("start")), _day(period.get("end"))
        base = {"sheet": sheet, "row_num": row, "org_raw": org, "org_name": name, "period_raw": start,
                "period_end_raw": end if end and start and end > start else None}
        groups = _list(res, "group")
        for i, group in enumerate(groups):
            if isinstance(group, dict):
                self._group(group, f"group[{i}]", base)

    def _group(self, group: dict[str, Any], path: str, base: dict[str, Any]) -> None:
        group_metric, group_skip = self._metric_raw(group.get("code"))
        pops = _list(group, "population")
        roles: dict[str, str | None] = {}
        for j, pop in enumerate(pops):
            if not isinstance(pop, dict):
                continue
            metric, skip = self._metric_raw(pop.get("code"))
            if skip:
                self.recognised += 1
                continue
            raw = _text(pop.get("count"))
            self.cells.add(**base, col=f"{path}.population[{j}]", metric_raw=metric, raw=raw)
            for system, code in _codings(pop.get("code")):
                if system == MEASURE_POPULATION:
                    roles.setdefault(code, raw)
        score = group.get("measureScore")
        if isinstance(score, dict):
            raw_score = _text(score.get("value"))
            if not pops and group_metric is not None and not group_skip and self._is_metric(group_metric):
                self.cells.add(**base, col=f"{path}.measureScore", metric_raw=group_metric, raw=raw_score)
            elif roles.get("numerator") is not None and roles.get("denominator") is not None \
                    and score.get("unit") not in ("%",) and raw_score is not None:
                self.rates.append({"sheet": base["sheet"], "row_num": base["row_num"], "col": f"{path}.measureScore",
                                   "raw": raw_score, "num_raw": roles["numerator"], "den_raw": roles["denominator"]})
            else:
                self.recognised += 1   # a score the group's populations cannot check (a percentage, say)
        strats = _list(group, "stratifier")
        for k, strat in enumerate(strats):
            if isinstance(strat, dict):
                self._stratifier(strat, f"{path}.stratifier[{k}]", group_metric, base)

    def _is_metric(self, metric_raw: str) -> bool:
        return metric_raw.strip().lower() in self.metric_codes or self.catalog.by_saner(metric_raw) is not None

    def _stratifier(self, strat: dict[str, Any], path: str, group_metric: str | None, base: dict[str, Any]) -> None:
        """Strata whose components are catalogue dimensions (``staff_group = nursing``) are values with dims;
        others (age bands, say, which the catalogue does not break down by) are recognised and skipped."""
        names = [_concept_word(c) for c in _list(strat, "code")]
        strata = _list(strat, "stratum")
        for s, stratum in enumerate(strata):
            if not isinstance(stratum, dict):
                continue
            dims: dict[str, str | None] = {}
            if isinstance(stratum.get("component"), list):
                for comp in _list(stratum, "component"):
                    if isinstance(comp, dict):
                        dims[_concept_word(comp.get("code")) or ""] = _concept_word(comp.get("value"))
            elif len(names) == 1:
                dims[names[0] or ""] = _concept_word(stratum.get("value"))
            pops = _list(stratum, "population")
            readable = bool(dims) and all(k in self.dimensions and v for k, v in dims.items())
            encoded = ";".join(f"{k}={dims[k]}" for k in sorted(dims)) if readable else ""
            at = f"{path}.stratum[{s}]"
            if readable and not pops and isinstance(stratum.get("measureScore"), dict) and group_metric:
                self.cells.add(**base, col=f"{at}.measureScore", metric_raw=group_metric, dims=encoded,
                               raw=_text(stratum["measureScore"].get("value")))
                continue
            for q, pop in enumerate(pops):
                metric, skip = self._metric_raw(pop.get("code")) if isinstance(pop, dict) else (None, True)
                if not readable or skip:
                    self.recognised += 1
                    self._warn_strata(path, dims)
                    continue
                self.cells.add(**base, col=f"{at}.population[{q}]", metric_raw=metric or group_metric,
                               dims=encoded, raw=_text(pop.get("count")))

    def _warn_strata(self, path: str, dims: dict[str, str | None]) -> None:
        if not self._strata_warned:
            self._strata_warned = True
            self.file_issues.append(("fhir_stratifier", f"{path} breaks values down by "
                                     f"{', '.join(k for k in dims if k) or 'an unnamed stratifier'}, which is not a "
                                     "catalogue dimension; those strata were not read (the totals were)"))

    # -- whole files ---------------------------------------------------------------------------------------

    def document(self, data: bytes) -> None:
        name = self.ctx.filename
        try:
            if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                text = data.decode("utf-16")
            else:
                text = data.removeprefix(codecs.BOM_UTF8).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ReadError(f"{name}: not UTF-8 text (byte {exc.start}); FHIR JSON must be UTF-8") from exc
        try:
            doc = _loads(text)
        except json.JSONDecodeError as exc:
            raise ReadError(f"{name}: not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
                            "expected a FHIR MeasureReport, a Bundle of them, or NDJSON") from exc
        except ValueError as exc:
            raise ReadError(f"{name}: not readable JSON: {exc}") from exc
        if _too_deep(doc):
            raise ReadError(f"{name}: JSON nested more than {MAX_DEPTH} levels deep; a MeasureReport is far "
                            "shallower")
        if not isinstance(doc, dict):
            raise ReadError(f"{name}: the JSON is a {type(doc).__name__}, expected a FHIR resource (an object with "
                            "resourceType MeasureReport or Bundle)")
        rtype = doc.get("resourceType")
        if rtype == "MeasureReport":
            self.rows_read = 1
            self.report(doc, "entry[0]", 1, {})
        elif rtype == "Bundle":
            self.bundle(doc)
        else:
            raise ReadError(f"{name}: resourceType is {_text(rtype) or '(none)'}; expected MeasureReport or a "
                            "Bundle of them")

    def ndjson(self, lines: Iterator[tuple[int, bytes | None]]) -> None:
        for n, line in lines:
            where = f"entry[{n - 1}]"
            self.rows_read += 1
            if line is None:
                self._bad(where, n, f"(a line of more than {MAX_LINE_BYTES} bytes, not kept)",
                          f"line {n} is longer than {MAX_LINE_BYTES >> 20} MB; one resource per line is expected")
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._bad(where, n, line.decode("utf-8", errors="replace"),
                          f"line {n} is not UTF-8 (byte {exc.start})")
                continue
            try:
                res = _loads(text)
            except ValueError as exc:
                self._bad(where, n, text, f"line {n} is not valid JSON ({exc})")
                continue
            if _too_deep(res):
                self._bad(where, n, "(not kept: nested too deep)", f"line {n} is nested more than {MAX_DEPTH} "
                          "levels deep")
                continue
            self.resource(res, where, n, {})

    def result(self) -> Read:
        return Read(spec=spec_for(self.catalog), cells=self.cells.table(), rows_read=self.rows_read,
                    malformed=malformed_table(self.malformed) if self.malformed else MALFORMED_SCHEMA.empty_table(),
                    rates=rates_table(self.rates) if self.rates else RATE_SCHEMA.empty_table(),
                    file_issues=self.file_issues, recognised=self.recognised)


def _ndjson_lines(path: Any) -> Iterator[tuple[int, bytes | None]]:
    """Non-blank lines with their numbers; a line over MAX_LINE_BYTES is skipped to its end and given as None."""
    with open(path, "rb") as f:
        n = 0
        while True:
            line = f.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            n += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass
                yield n, None
                continue
            if n == 1:
                line = line.removeprefix(codecs.BOM_UTF8)
            if line.strip():
                yield n, line


def _is_ndjson(path: Any, filename: str) -> bool:
    """NDJSON by its name, or because its first line is a whole JSON object with more lines after it."""
    if filename.lower().endswith((".ndjson", ".jsonl")):
        return True
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    first, sep, rest = head.removeprefix(codecs.BOM_UTF8).partition(b"\n")
    if not sep or not rest.strip() or not first.strip().startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):
        return False


def read(ctx: ReadContext) -> Read:
    """A MeasureReport, a Bundle of them, or NDJSON -> cells (see the module docstring for the mapping)."""
    reader = _Reader(ctx)
    path = ctx.raw.path
    if _is_ndjson(path, ctx.filename):
        if ctx.raw.bom == "utf-16":
            raise ReadError(f"{ctx.filename}: NDJSON must be UTF-8, this file is UTF-16")
        reader.ndjson(_ndjson_lines(path))
    else:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise ReadError(f"{ctx.filename}: one JSON document of {size >> 20} MB, more than the "
                            f"{MAX_DOCUMENT_BYTES >> 20} MB read whole; send large exports as NDJSON "
                            "(one resource per line, file name ending .ndjson)")
        reader.document(path.read_bytes())
    return reader.result()


# -- writing -------------------------------------------------------------------------------------------------

def saner_code(metric: Metric) -> str | None:
    """The canonical SANER name of a metric: of its spellings, the camel-case one (``numBeds``, not ``numbeds``)."""
    if not metric.saner:
        return None
    return max(metric.saner, key=lambda s: (sum(ch.isupper() for ch in s), s))


def _metric_coding(metric: Metric) -> dict[str, str]:
    code = saner_code(metric)
    if code is None:
        return {"system": MUTUAL_METRIC_SYSTEM, "code": metric.code, "display": metric.label}
    return {"system": SANER_UV, "code": code, "display": metric.label}


def _fhir_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")[:64] or "report"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _org_reference(org: str, org_name: str | None) -> dict[str, Any]:
    """An ODS-shaped code (3 to 5 capitals and digits) is sent as an ODS identifier, any other in Mutual's own
    system; the reader maps both back to the code."""
    system = ODS_SYSTEMS[0] if _ODS_LIKE.match(org) else MUTUAL_ORG_SYSTEM
    ref: dict[str, Any] = {"identifier": {"system": system, "value": org}}
    if org_name:
        ref["display"] = org_name
    return ref


def _as_day(value: object) -> str:
    return value.isoformat()[:10] if isinstance(value, date) else str(value)[:10]


def measure_report(observations: pa.Table, *, org: str, org_name: str | None, day: date, measure: str,
                   catalog: Catalog) -> dict[str, Any]:
    """One organisation's values on one day as a valid R4B MeasureReport (SANER codes, ``uv`` system).

    One group per metric: its population holds the value (``count``); a value that is not whole, which a count
    cannot hold, is the group's ``measureScore``; values with dimensions are strata of a stratifier whose
    components name the dimensions. Rows of other organisations or days are ignored."""
    wanted = day.isoformat()
    values: dict[str, dict[str, float]] = {}
    for r in observations.select(["org", "metric", "dims", "period", "value"]).to_pylist():
        if r["org"] != org or _as_day(r["period"]) != wanted or r["value"] is None:
            continue
        per_metric = values.setdefault(r["metric"], {})
        dims = r["dims"] or ""
        if dims in per_metric and per_metric[dims] != r["value"]:
            raise ValueError(f"{org} {r['metric']} {dims} on {wanted} has two values: pass current values only")
        per_metric[dims] = r["value"]
    groups = []
    for metric in catalog.metrics:
        if metric.code not in values:
            continue
        coding = _metric_coding(metric)
        group: dict[str, Any] = {"code": {"coding": [coding], "text": metric.label}}
        plain = values[metric.code].pop("", None)
        if plain is not None:
            if float(plain).is_integer():
                group["population"] = [{"code": {"coding": [coding, {"system": MEASURE_POPULATION,
                                                                     "code": "initial-population"}]},
                                        "count": int(plain)}]
            else:
                group["measureScore"] = {"value": plain, "unit": metric.unit}
        by_keys: dict[tuple[str, ...], list[tuple[dict[str, str], float]]] = {}
        for dims, value in values[metric.code].items():
            pairs = dict(kv.partition("=")[::2] for kv in dims.split(";"))
            by_keys.setdefault(tuple(sorted(pairs)), []).append((pairs, value))
        if by_keys:
            group["stratifier"] = [{
                "code": [{"text": k} for k in keys],
                "stratum": [{"component": [{"code": {"text": k}, "value": {"text": pairs[k]}} for k in keys],
                             **({"population": [{"code": {"coding": [coding]}, "count": int(v)}]}
                                if float(v).is_integer() else {"measureScore": {"value": v, "unit": metric.unit}})}
                            for pairs, v in strata]}
                for keys, strata in by_keys.items()]
        groups.append(group)
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "id": _fhir_id(f"{org}-{wanted}-{measure.rstrip('/').rsplit('/', 1)[-1]}"),
        "status": "complete",
        "type": "summary",
        "measure": measure,
        "subject": _org_reference(org, org_name),
        "period": {"start": wanted, "end": wanted},
        "group": groups,
    }
    MeasureReport.model_validate(report)
    return report


def bundle(observations: pa.Table, *, measure: str, catalog: Catalog, org_names: dict[str, str] | None = None,
           bundle_type: str = "collection") -> dict[str, Any]:
    """Every (organisation, day) in ``observations`` as one MeasureReport, in one valid R4B Bundle."""
    names = org_names or {}
    rows = observations.select(["org", "metric", "dims", "period", "value"]).to_pylist()
    by_report: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:  # each report reads only its own rows
        by_report.setdefault((r["org"], _as_day(r["period"])), []).append(r)
    entries: list[dict[str, Any]] = []
    for (org, day), own in sorted(by_report.items()):
        report = measure_report(pa.Table.from_pylist(own, schema=observations.select(
                                    ["org", "metric", "dims", "period", "value"]).schema),
                                org=org, org_name=names.get(org), day=date.fromisoformat(day), measure=measure,
                                catalog=catalog)
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, measure + '|' + report['id'])}",
                        "resource": report})
    doc: dict[str, Any] = {"resourceType": "Bundle", "type": bundle_type, "entry": entries}
    if bundle_type in ("transaction", "batch"):
        for e in entries:
            e["request"] = {"method": "PUT", "url": f"MeasureReport/{e['resource']['id']}"}
    Bundle.model_validate(doc)
    return doc
