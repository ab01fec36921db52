"""Declarative mapping specs: how a CSV layout's columns, codes, dates and units map to the catalogue.

A spec is a YAML file. Shipped specs live in ``mutual/ingest/specs/``; a user passes their own with ``--spec``.
Matching a spec against a file's header gives a ``ColumnPlan``: which file column feeds which metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from mutual.catalog import Catalog, load_catalog


class SpecError(ValueError):
    """A spec that is malformed, or a file whose layout does not match its spec."""


def norm(name: str) -> str:
    """Header names compare without case, surrounding space, repeated spaces or a byte-order mark."""
    return " ".join(name.replace("\ufeff", "").split()).casefold()


class ColumnMap(BaseModel):
    metric: str
    dims: dict[str, str] = Field(default_factory=dict)
    scale: float = 1.0
    unit: str | None = None
    # answer -> value; None: the answer is a known one that carries no value (">=15 days" has no upper bound)
    value_map: dict[str, float | None] = Field(default_factory=dict)


class OrgSpec(BaseModel):
    column: str | None = None
    name_column: str | None = None
    codes: dict[str, str] = Field(default_factory=dict)
    names: dict[str, str] = Field(default_factory=dict)


class PeriodSpec(BaseModel):
    column: str
    formats: list[str] = Field(default_factory=lambda: ["%Y-%m-%d"])
    instant_timezone: str | None = None


class LongSpec(BaseModel):
    metric_column: str
    value_column: str
    metric_map: dict[str, str] = Field(default_factory=dict)
    dims_columns: dict[str, str] = Field(default_factory=dict)
    value_map: dict[str, float | None] = Field(default_factory=dict)


class DerivedColumn(BaseModel):
    numerator: str
    denominator: str


class Spec(BaseModel):
    name: str
    description: str = ""
    format: Literal["csv", "xlsx", "sitrep-xlsx", "fhir", "dhis2"] = "csv"
    match: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=lambda: ["", "-", "N/A", "NA", "n/a", "null", "NULL"])
    org: OrgSpec = Field(default_factory=OrgSpec)
    period: PeriodSpec
    layout: Literal["wide", "long"] = "wide"
    # heading -> metric; a list when one column feeds several (a range's lower and upper bound)
    columns: dict[str, ColumnMap | list[ColumnMap]] = Field(default_factory=dict)
    long: LongSpec | None = None
    derived: dict[str, DerivedColumn] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Spec:
        if self.layout == "long" and self.long is None:
            raise ValueError("a long layout needs a `long:` section (metric_column, value_column)")
        if self.layout == "wide" and not self.columns:
            raise ValueError("a wide layout needs `columns:` mapping headings to metrics")
        return self

    def check_against(self, catalog: Catalog) -> None:
        """Every metric and dimension a spec names must exist in the catalogue."""
        known = set(catalog.codes)
        targets = [(m.heading, m.cmap.metric, m.cmap.dims) for m in column_maps(self)]
        if self.long:
            targets += [(k, v, {}) for k, v in self.long.metric_map.items()]
        for heading, metric, dims in targets:
            if metric not in known:
                raise SpecError(f"spec {self.name}: column {heading!r} maps to unknown metric {metric!r}")
            allowed = catalog.get(metric).dims
            for dim, value in dims.items():
                if dim not in allowed:
                    raise SpecError(f"spec {self.name}: metric {metric} has no dimension {dim!r}")
                if value not in catalog.dimensions[dim]:
                    raise SpecError(f"spec {self.name}: {value!r} is not a value of dimension {dim}")


@dataclass(frozen=True)
class MappedColumn:
    heading: str   # the file's heading
    col: str       # the name its cells carry: the heading, or for a column feeding several metrics, which one
    map_key: str   # which value map its answers are read with
    cmap: ColumnMap


def column_maps(spec: Spec) -> list[MappedColumn]:
    """Every (heading, metric) a wide spec maps. A heading that feeds several metrics names each of its cells
    by the metric and dimensions it feeds, so every cell stays unique in its row."""
    out = []
    for heading, maps in spec.columns.items():
        if isinstance(maps, ColumnMap):
            out.append(MappedColumn(heading, heading, norm(heading), maps))
            continue
        for c in maps:
            col = f"{heading} [{c.metric}{' ' + encode_dims(c.dims) if c.dims else ''}]"
            out.append(MappedColumn(heading, col, norm(col), c))
    return out


def load_spec_text(text: str, origin: str) -> Spec:
    try:
        spec = Spec.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise SpecError(f"{origin}: not a valid mapping spec: {exc}") from exc
    spec.check_against(load_catalog())
    return spec


@cache
def shipped_specs() -> tuple[Spec, ...]:
    folder = resources.files("mutual.ingest").joinpath("specs")
    return tuple(load_spec_text(f.read_text("utf-8"), f.name)
                 for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".yaml"))


def find_spec(name_or_path: str) -> Spec:
    """A shipped spec by name, or a spec file by path."""
    for spec in shipped_specs():
        if spec.name == name_or_path:
            return spec
    path = Path(name_or_path)
    if path.is_file():
        return load_spec_text(path.read_text("utf-8"), str(path))
    names = ", ".join(s.name for s in shipped_specs())
    raise SpecError(f"no spec named {name_or_path!r} and no such file (shipped specs: {names})")


def detect_spec(header: list[str]) -> Spec:
    """The shipped spec whose required columns the header has; the most specific wins."""
    have = {norm(h) for h in header}
    fits = [s for s in shipped_specs() if s.match and {norm(m) for m in s.match} <= have]
    if not fits:
        raise SpecError("no shipped spec recognises this header (" + ", ".join(header[:8])
                        + (", ..." if len(header) > 8 else "") + "); pass --spec NAME or --spec FILE")
    return max(fits, key=lambda s: len(s.match))


@dataclass
class ValueColumn:
    index: int
    heading: str
    metric: str
    dims: str
    scale: float
    value_map: dict[str, float | None]
    map_key: str


@dataclass
class ColumnPlan:
    """Where each part of a record is in this particular file."""

    spec: Spec
    header: list[str]
    org: int | None
    org_name: int | None
    period: int
    values: list[ValueColumn] = field(default_factory=list)
    long_metric: int | None = None
    long_value: int | None = None
    long_dims: dict[str, int] = field(default_factory=dict)
    derived: list[tuple[int, str, str]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)


def encode_dims(dims: dict[str, str]) -> str:
    """Dimensions as one canonical string, ``k=v`` pairs sorted and joined by ``;`` ('' when none)."""
    return ";".join(f"{k}={dims[k]}" for k in sorted(dims))


def plan_columns(spec: Spec, header: list[str], *, org_given: bool) -> ColumnPlan:
    """Match a spec to a header. Raises SpecError naming each expected heading that is absent."""
    index: dict[str, int] = {}
    for i, h in enumerate(header):
        index.setdefault(norm(h), i)

    def find(heading: str | None, role: str, required: bool = True) -> int | None:
        if heading is None:
            return None
        i = index.get(norm(heading))
        if i is None and required:
            raise SpecError(f"expected a column headed {heading!r} ({role}) in the header row; found: "
                            + ", ".join(repr(h) for h in header[:20]))
        return i

    for required in spec.match:
        find(required, "required by spec " + spec.name)
    if spec.org.column is None and not org_given:
        raise SpecError(f"spec {spec.name} has no organisation column: say whose data this is with --org CODE")
    period = find(spec.period.column, "date")
    assert period is not None
    plan = ColumnPlan(spec=spec, header=header, org=find(spec.org.column, "organisation", not org_given),
                      org_name=find(spec.org.name_column, "organisation name", False), period=period)
    used: set[int | None] = {plan.org, plan.org_name, plan.period}
    if spec.layout == "long":
        assert spec.long is not None
        plan.long_metric = find(spec.long.metric_column, "metric")
        plan.long_value = find(spec.long.value_column, "value")
        plan.long_dims = {d: j for d, c in spec.long.dims_columns.items()
                          if (j := find(c, f"dimension {d}", False)) is not None}
        used |= {plan.long_metric, plan.long_value, *plan.long_dims.values()}
    for m in column_maps(spec):
        at = find(m.heading, "metric " + m.cmap.metric, False)
        if at is not None:
            col = header[at] if m.col == m.heading else m.col
            plan.values.append(ValueColumn(at, col, m.cmap.metric, encode_dims(m.cmap.dims), m.cmap.scale,
                                           m.cmap.value_map, m.map_key))
            used.add(at)
    if spec.layout == "wide" and not plan.values:
        raise SpecError(f"none of the value columns of spec {spec.name} is in the header ("
                        + ", ".join(list(spec.columns)[:6]) + ", ...)")
    for heading, d in spec.derived.items():
        rate = find(heading, "derived rate", False)
        num, den = find(d.numerator, "numerator", False), find(d.denominator, "denominator", False)
        if rate is not None:
            used.add(rate)
            if num is not None and den is not None:
                plan.derived.append((rate, header[num], header[den]))
    ignored = {norm(h) for h in spec.ignore}
    plan.unmapped = [h for i, h in enumerate(header) if i not in used and norm(h) not in ignored and h.strip()]
    return plan

