"""DHIS2 data value sets (``/api/dataValueSets``) in their JSON and CSV forms.

DHIS2 names everything by UID: data elements, organisation units, category option combos. A mapping file
(``dhis2_maps/*.yaml``, or a file passed with ``--spec``) says which catalogue metric, organisation and dimensions
each UID stands for. The reader only translates: UIDs the map knows go to the rules through the ``Spec``'s code
maps, UIDs it does not know go through as written (marked as DHIS2 UIDs so the message says where to fix them),
and the shared rules quarantine what does not resolve. DHIS2 periods (``20200404``, ``2020W14``, ``202004``,
``2020Q2``, ...) become their first day in ``period_raw`` and their last in ``period_end_raw``; a period that is
not one stays as written, so the rules report it.

JSON: ``{"dataSet", "completeDate", "period", "orgUnit", "attributeOptionCombo", "dataValues": [...]}``; the
top-level period, orgUnit and attributeOptionCombo are defaults for values that omit them. JSON is parsed whole
(no streaming parser is installed), so files over ``MAX_JSON_BYTES`` are refused: send those as CSV, which is
read line by line at any size. CSV: DHIS2's columns ``dataelement, period, orgunit, catoptcombo, attroptcombo,
value, storedby, lastupdated, comment, followup, deleted``, with a header row (names in any case, in any order)
or without one (that order). ``storedBy``, ``comment`` and the like belong to the value's row and are not stored.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import re
from collections import deque
from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mutual.catalog import Catalog, load_catalog
from mutual.ingest.cells import CELL_SCHEMA, Read, ReadContext, ReadError, malformed_table, record_batch
from mutual.ingest.rawfile import text_copy
from mutual.ingest.specs import LongSpec, OrgSpec, PeriodSpec, Spec, SpecError, encode_dims, norm

# json.loads holds the whole document, several times its size, in memory: bigger files must come as CSV.
MAX_JSON_BYTES = 64 << 20
DEFAULT_MAP = "demo"
DEFAULT_COMBO = "HllvX50cXC0"  # DHIS2's built-in "default" category (and attribute) option combo
UID = re.compile(r"[A-Za-z][A-Za-z0-9]{10}")
_SURROGATE = re.compile("[\ud800-\udfff]")
# A record whose quotes are still open after this many lines is a broken quote, not a long comment.
MAX_RECORD_LINES = 50
MAX_LINE = 1 << 20  # characters; a longer CSV line is no data value
BATCH = 1 << 16

# CSV headings DHIS2 (and tools that write its format) use, compared without case, spaces, '_' or '-'.
CSV_COLUMNS = ("dataelement", "period", "orgunit", "catoptcombo", "attroptcombo", "value", "storedby",
               "lastupdated", "comment", "followup", "deleted")
_ALIASES = {"de": "dataelement", "pe": "period", "ou": "orgunit", "organisationunit": "orgunit",
            "organizationunit": "orgunit", "categoryoptioncombo": "catoptcombo", "co": "catoptcombo",
            "coc": "catoptcombo", "attributeoptioncombo": "attroptcombo", "aoc": "attroptcombo",
            "created": "created"}
_REQUIRED = ("dataelement", "period", "orgunit", "value")


class Dhis2Map(BaseModel):
    """A mapping file: DHIS2 UIDs to catalogue metrics, organisations and dimensions."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    match_names: bool = True
    data_elements: dict[str, str] = Field(default_factory=dict)
    org_units: dict[str, str] = Field(default_factory=dict)
    category_option_combos: dict[str, dict[str, str]] = Field(default_factory=dict)
    attribute_option_combos: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("data_elements", "org_units")
    @classmethod
    def _no_case_twins(cls, v: dict[str, str]) -> dict[str, str]:
        """The rules compare codes without case, so two UIDs that differ only in case cannot map apart."""
        seen: dict[str, str] = {}
        for uid in v:
            twin = seen.setdefault(uid.strip().casefold(), uid)
            if twin != uid and v[twin] != v[uid]:
                raise ValueError(f"{twin!r} and {uid!r} differ only in case but map to different codes")
        return v

    def check_against(self, catalog: Catalog, origin: str) -> None:
        """Every metric and dimension the map names must exist in the catalogue."""
        for uid, metric in self.data_elements.items():
            if metric not in catalog.codes:
                raise SpecError(f"{origin}: data_elements.{uid}: {metric!r} is not a catalogue metric")
        for section in ("category_option_combos", "attribute_option_combos"):
            for uid, dims in getattr(self, section).items():
                for dim, value in dims.items():
                    if dim not in catalog.dimensions:
                        raise SpecError(f"{origin}: {section}.{uid}: {dim!r} is not a dimension (known: "
                                        + ", ".join(catalog.dimensions) + ")")
                    if value not in catalog.dimensions[dim]:
                        raise SpecError(f"{origin}: {section}.{uid}.{dim}: {value!r} is not a {dim} (expected "
                                        "one of " + ", ".join(catalog.dimensions[dim]) + ")")


def load_map_text(text: str, origin: str) -> Dhis2Map:
    """A mapping file, validated; errors name the file and the key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: expected a DHIS2 mapping (name, data_elements, org_units, ...)")
    try:
        dmap = Dhis2Map.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors())
        raise SpecError(f"{origin}: not a valid DHIS2 mapping: {problems}") from exc
    dmap.check_against(load_catalog(), origin)
    return dmap


@cache
def shipped_maps() -> tuple[Dhis2Map, ...]:
    folder = resources.files("mutual.ingest").joinpath("dhis2_maps")
    return tuple(load_map_text(f.read_text("utf-8"), f"dhis2_maps/{f.name}")
                 for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".yaml"))


def find_map(name_or_path: str | None) -> Dhis2Map:
    """A shipped map by name (``demo`` when none is given), or a mapping file by path."""
    wanted = name_or_path or DEFAULT_MAP
    for m in shipped_maps():
        if m.name == wanted:
            return m
    path = Path(wanted)
    if path.is_file():
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"{path}: cannot read the DHIS2 mapping: {exc}") from exc
        return load_map_text(text, str(path))
    names = ", ".join(m.name for m in shipped_maps())
    raise SpecError(f"no DHIS2 mapping named {wanted!r} and no such file (shipped mappings: {names})")


def spec_for(dmap: Dhis2Map, catalog: Catalog) -> Spec:
    """The Spec the rules resolve codes with: the map's UIDs (and, if it says so, DHIS2 names) to codes."""
    metric_map = {m.dhis2.name: m.code for m in catalog.metrics if m.dhis2} if dmap.match_names else {}
    metric_map.update(dmap.data_elements)
    return Spec(name=f"dhis2-{dmap.name}", description=dmap.description, format="dhis2", layout="long",
                long=LongSpec(metric_column="dataElement", value_column="value", metric_map=metric_map),
                period=PeriodSpec(column="period", formats=["%Y-%m-%d"]),
                org=OrgSpec(column="orgUnit", codes=dict(dmap.org_units)), missing=[""])


# -- periods -------------------------------------------------------------------------------------------------

def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _months(year: int, first: int, count: int) -> tuple[date, date]:
    """``count`` months from month ``first`` of ``year`` (first may run past December into the next year)."""
    y, m = year + (first - 1) // 12, (first - 1) % 12 + 1
    last = m + count - 1
    return date(y, m, 1), _month_end(y + (last - 1) // 12, (last - 1) % 12 + 1)


_FINANCIAL = {"April": 4, "July": 7, "Oct": 10, "Nov": 11}
_PERIODS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"(\d{4})(\d{2})(\d{2})"), lambda y, m, d: (date(y, m, d), date(y, m, d))),
    (re.compile(r"(\d{4})(\d{2})"), lambda y, m: _months(y, m, 1) if 1 <= m <= 12 else None),
    (re.compile(r"(\d{4})"), lambda y: (date(y, 1, 1), date(y, 12, 31))),
    (re.compile(r"(\d{4})W(\d{1,2})"),
     lambda y, w: (s := date.fromisocalendar(y, w, 1), s + timedelta(days=6))),
    (re.compile(r"(\d{4})BiW(\d{1,2})"),
     lambda y, n: (s := date.fromisocalendar(y, 2 * n - 1, 1), s + timedelta(days=13)) if n >= 1 else None),
    (re.compile(r"(\d{4})(\d{2})B"), lambda y, n: _months(y, 2 * n - 1, 2) if 1 <= n <= 6 else None),
    (re.compile(r"(\d{4})Q([1-4])"), lambda y, n: _months(y, 3 * n - 2, 3)),
    (re.compile(r"(\d{4})S([12])"), lambda y, n: _months(y, 6 * n - 5, 6)),
    (re.compile(r"(\d{4})AprilS([12])"), lambda y, n: _months(y, 6 * n - 2, 6)),
    (re.compile(r"(\d{4})(April|July|Oct|Nov)"), lambda y, name: _months(y, _FINANCIAL[name], 12)),
]


def parse_period(text: str) -> tuple[date, date] | None:
    """A DHIS2 period identifier's first and last day, or None when it is not one.

    Daily ``yyyyMMdd``, weekly ``yyyyWn`` (ISO weeks, Monday start), bi-weekly ``yyyyBiWn``, monthly ``yyyyMM``,
    bi-monthly ``yyyyMMB``, quarterly ``yyyyQn``, six-monthly ``yyyySn`` and ``yyyyAprilSn``, yearly ``yyyy`` and
    financial years ``yyyyApril|July|Oct|Nov``."""
    s = text.strip()
    for pattern, span in _PERIODS:
        m = pattern.fullmatch(s)
        if m:
            args = [int(g) if g.isdigit() else g for g in m.groups()]
            try:
                result: tuple[date, date] | None = span(*args)
            except ValueError:  # day 31 of April, week 53 of a 52-week year, year 0
                return None
            return result
    return None


# -- one data value -> one cell ------------------------------------------------------------------------------

_VARYING = ("row_num", "org_raw", "period_raw", "period_end_raw", "metric_raw", "dims", "raw", "deleted")


class _Builder:
    """Collects cells and malformed rows in Arrow batches, so a file of millions of values stays compact."""

    def __init__(self, dmap: Dhis2Map, spec: Spec, ctx: ReadContext, sheet: str | None) -> None:
        self.dmap, self.sheet, self.fallback_org = dmap, sheet, ctx.org
        self.rows: list[tuple[Any, ...]] = []
        self.batches: list[pa.RecordBatch] = []
        self.malformed: list[dict[str, Any]] = []
        self.periods: dict[str, tuple[str, str | None]] = {}
        self.dims: dict[tuple[str | None, str | None], str] = {}
        metric_map = spec.long.metric_map if spec.long else {}
        metric_keys = {c.lower() for c in ctx.catalog.codes} | {norm(k) for k in metric_map}
        org_keys = {o.code.upper() for o in ctx.orgs} | {k.strip().upper() for k in dmap.org_units}
        self.metric_raw = _Marker(metric_keys, str.lower, f"a DHIS2 dataElement UID that mapping {dmap.name} "
                                  "does not list")
        self.org_raw = _Marker(org_keys, str.upper, f"a DHIS2 orgUnit UID that mapping {dmap.name} does not list")

    def period(self, raw: str | None) -> tuple[str | None, str | None]:
        if raw is None:
            return None, None
        got = self.periods.get(raw)
        if got is None:
            span = parse_period(raw)
            if span is None:
                got = (raw, None)
            else:
                got = (span[0].isoformat(), None if span[0] == span[1] else span[1].isoformat())
            if len(self.periods) < 100_000:
                self.periods[raw] = got
        return got

    def combo_dims(self, coc: str | None, aoc: str | None) -> str:
        """Dimensions of a category and attribute option combo; one the map does not know becomes a dimension
        no metric has, which the rules' dimension check rejects, naming the UID."""
        key = (coc, aoc)
        got = self.dims.get(key)
        if got is not None:
            return got
        dims: dict[str, str] = {}
        unknown: list[str] = []
        for section, uid, table in (("categoryOptionCombo", coc, self.dmap.category_option_combos),
                                    ("attributeOptionCombo", aoc, self.dmap.attribute_option_combos)):
            if uid is None or uid.strip() in ("", DEFAULT_COMBO) or uid.strip().casefold() == "default":
                continue
            found = table.get(uid.strip())
            shown = re.sub(r"[;=\s]+", " ", uid.strip())[:60]
            if found is None:
                unknown.append(f"{section} {shown} (not in DHIS2 mapping {self.dmap.name})=unmapped")
                continue
            for dim, value in found.items():
                if dims.setdefault(dim, value) != value:
                    unknown.append(f"{section} {shown} (its {dim} contradicts the category combo)=unmapped")
        got = ";".join(unknown) if unknown else encode_dims(dims)
        if len(self.dims) < 100_000:
            self.dims[key] = got
        return got

    def cell(self, row_num: int, de: str | None, pe: str | None, ou: str | None, coc: str | None,
             aoc: str | None, value: str | None, deleted: bool) -> None:
        period, period_end = self.period(pe)
        self.rows.append((row_num, self.org_raw(ou if ou is not None else self.fallback_org), period, period_end,
                          self.metric_raw(de), self.combo_dims(coc, aoc), value, deleted))
        if len(self.rows) >= BATCH:
            self._flush()

    def bad(self, row_num: int, text: str, problem: str) -> None:
        self.malformed.append({"sheet": self.sheet, "row_num": row_num, "line": text, "problem": problem})

    def _flush(self) -> None:
        if not self.rows:
            return
        n = len(self.rows)
        varying = dict(zip(_VARYING, zip(*self.rows, strict=True), strict=True))
        constant: dict[str, list[Any]] = {"sheet": [self.sheet] * n, "org_name": [None] * n, "col": ["value"] * n,
                                          "scale": [1.0] * n, "map_key": [None] * n}
        columns = {f.name: constant[f.name] if f.name in constant else list(varying[f.name]) for f in CELL_SCHEMA}
        self.batches.append(record_batch(columns, CELL_SCHEMA))
        self.rows = []

    def finish(self, spec: Spec, rows_read: int, file_issues: list[tuple[str, str]]) -> Read:
        self._flush()
        return Read(spec=spec, cells=pa.Table.from_batches(self.batches, schema=CELL_SCHEMA), rows_read=rows_read,
                    malformed=malformed_table(self.malformed),
                    file_issues=file_issues)


class _Marker:
    """A code as written; a DHIS2 UID that neither the map nor the reference data resolves is labelled as such,
    so the rules' "is not known" message tells the analyst which mapping to extend."""

    def __init__(self, keys: set[str], fold: Any, note: str) -> None:
        self.keys, self.fold, self.note = keys, fold, note
        self.seen: dict[str, str] = {}

    def __call__(self, raw: str | None) -> str | None:
        if raw is None or not raw.strip():
            return None
        got = self.seen.get(raw)
        if got is None:
            s = raw.strip()
            got = f"{s} ({self.note})" if UID.fullmatch(s) and self.fold(s) not in self.keys else raw
            if len(self.seen) < 100_000:
                self.seen[raw] = got
        return got


# -- JSON ----------------------------------------------------------------------------------------------------

class _Number(str):
    """A JSON number kept as the exact text sent (12.50 stays 12.50), never a float."""


_FIELDS = ("dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo")


def _text(v: object) -> str | None:
    """A JSON scalar as text: strings as sent, numbers as written, booleans as DHIS2 writes them."""
    if v is None:
        return v
    if isinstance(v, str):
        return v if v.isascii() else _clean(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    raise TypeError(type(v).__name__)


def _dump(v: object) -> str:
    """A parsed JSON value as JSON text again, numbers exactly as they were written."""
    def dump(x: object) -> str:
        if isinstance(x, _Number):
            return str.__str__(x)
        if isinstance(x, list):
            return "[" + ", ".join(dump(i) for i in x) + "]"
        if isinstance(x, dict):
            return "{" + ", ".join(json.dumps(k, ensure_ascii=False) + ": " + dump(i) for k, i in x.items()) + "}"
        return json.dumps(x, ensure_ascii=False)

    try:
        return _clean(dump(v))
    except RecursionError:
        return "(nested too deeply to show here; the archived file has it)"


def _clean(text: str) -> str:
    """Text Arrow can hold: a lone surrogate (JSON allows ``"\\ud800"``) becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _decode(data: bytes) -> str:
    """JSON text: UTF-8 (a byte-order mark allowed) or UTF-16 with a mark; bad bytes become U+FFFD, so the
    values they touch fail their checks instead of the whole file."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def _read_json(ctx: ReadContext, dmap: Dhis2Map, spec: Spec) -> Read:
    if ctx.raw.size > MAX_JSON_BYTES:
        raise ReadError(f"{ctx.filename}: a DHIS2 JSON file of {ctx.raw.size:,} bytes is over the "
                        f"{MAX_JSON_BYTES >> 20} MiB limit for JSON; export the data value set as CSV instead")
    text = _decode(ctx.raw.path.read_bytes())
    try:
        doc = json.loads(text, parse_float=_Number, parse_int=_Number, parse_constant=_Number)
    except json.JSONDecodeError as exc:
        raise ReadError(f"{ctx.filename}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") \
            from exc
    except RecursionError as exc:
        raise ReadError(f"{ctx.filename}: JSON nested too deeply to be a DHIS2 data value set") from exc
    except ValueError as exc:
        raise ReadError(f"{ctx.filename}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("dataValues"), list):
        found = "an object without a dataValues list" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        raise ReadError(f"{ctx.filename}: top level: expected a DHIS2 data value set, an object with a "
                        f"dataValues list; found {found}")
    defaults: dict[str, str | None] = {}
    for key in ("period", "orgUnit", "attributeOptionCombo"):
        try:
            defaults[key] = _text(doc.get(key))
        except TypeError as exc:
            raise ReadError(f"{ctx.filename}: top-level {key}: expected a string, found {exc}") from exc
    issues = [] if ctx.raw.utf8 else [("encoding", "the file is not valid UTF-8; unreadable bytes were replaced, "
                                       "so the values they touch are reported")]
    b = _Builder(dmap, spec, ctx, "dataValues")
    values = doc["dataValues"]
    for i, dv in enumerate(values, start=1):
        if not isinstance(dv, dict):
            b.bad(i, _dump(dv), f"dataValues[{i - 1}] is a {type(dv).__name__}, not an object")
            continue
        try:
            f = {k: _text(dv[k]) if k in dv else defaults.get(k) for k in _FIELDS}
            value = _text(dv.get("value"))
            deleted = _flag(dv.get("deleted"))
        except TypeError as exc:
            b.bad(i, _dump(dv), f"dataValues[{i - 1}] has a field of the wrong type ({exc}, expected text)")
            continue
        except ValueError as exc:
            b.bad(i, _dump(dv), f"dataValues[{i - 1}]: {exc}")
            continue
        b.cell(i, f["dataElement"], f["period"], f["orgUnit"], f["categoryOptionCombo"],
               f["attributeOptionCombo"], value, deleted)
    return b.finish(spec, len(values), issues)


def _flag(v: object) -> bool:
    """DHIS2's ``deleted``: true or false, as a JSON boolean or as text; absent or empty is false."""
    if v is None or v is False:
        return False
    if v is True:
        return True
    if isinstance(v, str) and v.strip().casefold() in ("true", "false", ""):
        return v.strip().casefold() == "true"
    raise ValueError(f"deleted is {_dump(v)[:40]}, expected true or false")


# -- CSV -----------------------------------------------------------------------------------------------------

def _heading(h: str) -> str:
    key = re.sub(r"[\s_\-]+", "", h.replace("\ufeff", "")).casefold()
    return _ALIASES.get(key, key)


def _header_columns(fields: list[str]) -> dict[str, int] | None:
    """Where each DHIS2 column is, when ``fields`` is a header row; None when it is data."""
    names = [_heading(f) for f in fields]
    if not {"dataelement", "value"} <= set(names):
        return None
    where: dict[str, int] = {}
    for i, n in enumerate(names):
        where.setdefault(n, i)
    return where


def _records(path: Path) -> Iterator[tuple[int, str, list[str] | None, str]]:
    """(first line number, text, fields, problem) per CSV record, reading line by line. A quoted field may span
    lines (a comment with line breaks), but a quote left open for ``MAX_RECORD_LINES`` lines, or to the end,
    damages only its own line: that line is parsed alone and the lines after it are read again. Fields are None
    when the record cannot be read, and ``problem`` says why; a line over ``MAX_LINE`` characters is cut there
    (the archived file keeps it whole)."""
    with path.open(encoding="utf-8", newline="") as f:
        pending: deque[tuple[str, bool]] = deque()  # (line, too long)
        number = 0
        exhausted = False

        def more() -> bool:
            nonlocal exhausted
            if exhausted:
                return False
            line = f.readline(MAX_LINE + 1)
            if not line:
                exhausted = True
                return False
            too_long = len(line) > MAX_LINE and not line.endswith("\n")
            while too_long and (rest := f.readline(MAX_LINE)) and not rest.endswith("\n"):
                pass
            pending.append((line[:MAX_LINE] if too_long else line.rstrip("\r\n") if line.endswith("\n") else line,
                            too_long))
            return True

        while pending or more():
            text, too_long = pending[0]
            span = 1
            if too_long:
                fields, problem = None, f"the line is longer than {MAX_LINE:,} characters"
            else:
                while (text.count('"') % 2 and span < MAX_RECORD_LINES and (span < len(pending) or more())
                       and not pending[span][1]):
                    text += "\n" + pending[span][0]
                    span += 1
                fields, problem = _parse(text)
                if fields is None and span > 1:  # an open quote: this line alone, then the next ones afresh
                    span, text = 1, pending[0][0]
                    fields, problem = _parse(text)
            number += 1
            yield number, text, fields, problem
            for _ in range(span):
                pending.popleft()
            number += span - 1


def _parse(text: str) -> tuple[list[str] | None, str]:
    """One CSV record's fields, or None and why not."""
    if '"' not in text and "\r" not in text and "\n" not in text:
        return text.split(","), ""  # what the csv module would do, ten times faster
    if text.count('"') % 2:
        return None, "a quoted field is not closed"
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        return None, f"not readable as CSV ({exc})"
    if len(rows) > 1 or (rows and rows[0] == [] and text.strip()):
        return None, "a quote in the middle of a field"
    return (rows[0] if rows else []), ""


_CELL_FIELDS = ("dataelement", "period", "orgunit", "catoptcombo", "attroptcombo", "value", "deleted")


def _read_csv(ctx: ReadContext, dmap: Dhis2Map, spec: Spec) -> Read:
    path = text_copy(ctx.raw, ctx.tmp_dir)
    b = _Builder(dmap, spec, ctx, None)
    issues = [] if ctx.raw.utf8 else [("encoding", "the file is not valid UTF-8; unreadable bytes were replaced, "
                                       "so the values they touch are reported")]
    cols = {name: i for i, name in enumerate(CSV_COLUMNS)}
    width = len(CSV_COLUMNS)
    first = True
    rows = 0
    for line, text, fields, problem in _records(path):
        if fields is not None and not "".join(fields).strip():
            continue  # a blank line is no record
        if first:
            first = False
            header = _header_columns(fields) if fields is not None else None
            if header is not None:
                missing = [c for c in _REQUIRED if c not in header]
                if missing:
                    raise ReadError(f"{ctx.filename}: header row: expected DHIS2 columns "
                                    + ", ".join(_REQUIRED) + "; missing " + ", ".join(missing))
                assert fields is not None
                known = {*CSV_COLUMNS, "created"}
                issues += [("unmapped_column", f"column {h!r} is not a DHIS2 data value column; its values were "
                            "not read") for h in fields if _heading(h) not in known and h.strip()]
                issues += [("unmapped_column", f"column {h!r} repeats an earlier column; only the first was read")
                           for i, h in enumerate(fields) if _heading(h) in known and header[_heading(h)] != i]
                cols, width = header, len(fields)
                continue
            if fields is not None and len(fields) >= 6 and not (UID.fullmatch(fields[0].strip())
                                                                 and UID.fullmatch(fields[2].strip())):
                raise ReadError(f"{ctx.filename}: line {line}: expected a DHIS2 header row (dataelement, period, "
                                "orgunit, catoptcombo, attroptcombo, value, ...) or a data row starting with a "
                                "data element UID")
        if rows == 0:
            need = max(cols[c] for c in _REQUIRED) + 1
            # where each field of a cell is; an absent column reads the padding at index ``width``
            at = [cols.get(n, width) for n in _CELL_FIELDS]
        rows += 1
        if fields is None:
            b.bad(line, text, problem)
            continue
        n = len(fields)
        if n < need or n > width:
            b.bad(line, text, f"expected {need} to {width} fields, found {n}")
            continue
        fields += [""] * (width + 1 - n)
        de, pe, ou, coc, aoc, value, flag = (fields[i] or None for i in at)
        try:
            deleted = _flag(flag) if flag else False
        except ValueError as exc:
            b.bad(line, text, str(exc))
            continue
        b.cell(line, de, pe, ou, coc, aoc, value, deleted)
    return b.finish(spec, rows, issues)


# -- the reader contract -------------------------------------------------------------------------------------

def _top_level_keys(text: str) -> Iterator[str]:
    """The keys of a JSON object's top level, scanning only as far as ``text`` goes (a file's first bytes)."""
    depth, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if depth == 1:
                k = j + 1
                while k < n and text[k] in " \t\r\n":
                    k += 1
                if k < n and text[k] == ":":
                    yield text[i + 1:j]
            i = j + 1
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        i += 1


def looks_like(head: bytes, filename: str) -> bool:
    """A JSON object with a top-level ``dataValues`` key, or CSV whose first line is DHIS2's header (or, with no
    header, a data row whose first and third fields are UIDs)."""
    text = _decode(head[:65536])
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return any(k == "dataValues" for k in _top_level_keys(stripped))
    first = text.split("\n", 1)[0].rstrip("\r")
    try:
        fields = next(csv.reader([first]), [])
    except csv.Error:
        return False
    if _header_columns(fields) is not None:
        return {"dataelement", "period", "orgunit", "value"} <= {_heading(f) for f in fields}
    return 6 <= len(fields) <= len(CSV_COLUMNS) and bool(UID.fullmatch(fields[0].strip())) \
        and bool(UID.fullmatch(fields[2].strip()))


def read(ctx: ReadContext) -> Read:
    """Read a DHIS2 data value set, JSON or CSV (told apart by its first non-blank character)."""
    dmap = find_map(ctx.spec_name)
    spec = spec_for(dmap, ctx.catalog)
    with ctx.raw.path.open("rb") as f:
        head = f.read(65536)
    if _decode(head).lstrip().startswith(("{", "[")):
        return _read_json(ctx, dmap, spec)
    return _read_csv(ctx, dmap, spec)
