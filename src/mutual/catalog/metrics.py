"""The metric catalogue: codes, units, kinds, bounds and each metric's names in other systems.

The catalogue is data (``metrics.yaml`` beside this module), loaded once and validated with pydantic.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, Field, model_validator


class Kind(StrEnum):
    """How a metric's values combine over time and across organisations."""

    POINT_IN_TIME = "point_in_time"
    FLOW = "flow"
    CUMULATIVE = "cumulative"
    STOCK_DAYS = "stock_days"


class Dhis2Name(BaseModel):
    name: str
    aggregation_type: str


class Metric(BaseModel):
    code: str
    label: str
    unit: str
    kind: Kind
    bounds: tuple[float, float]
    integer: bool = True
    changes_daily: bool = False
    dims: list[str] = Field(default_factory=list)
    capacity: str | None = None
    parts: list[str] = Field(default_factory=list)
    saner: list[str] = Field(default_factory=list)
    sitrep: list[str] = Field(default_factory=list)
    dhis2: Dhis2Name | None = None


class Catalog(BaseModel):
    version: int
    saner_systems: list[str]
    dimensions: dict[str, list[str]]
    metrics: list[Metric]

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        codes = [m.code for m in self.metrics]
        if len(codes) != len(set(codes)):
            raise ValueError("metric codes must be unique")
        known = set(codes)
        for m in self.metrics:
            for ref in [m.capacity, *m.parts]:
                if ref is not None and ref not in known:
                    raise ValueError(f"{m.code} refers to unknown metric {ref}")
            for dim in m.dims:
                if dim not in self.dimensions:
                    raise ValueError(f"{m.code} uses undeclared dimension {dim}")
        return self

    def get(self, code: str) -> Metric:
        for m in self.metrics:
            if m.code == code:
                return m
        raise KeyError(code)

    @property
    def codes(self) -> list[str]:
        return [m.code for m in self.metrics]

    def by_saner(self, code: str) -> Metric | None:
        """The metric a SANER population code stands for (codes compare case-insensitively)."""
        wanted = code.lower()
        for m in self.metrics:
            if any(s.lower() == wanted for s in m.saner):
                return m
        return None

    def by_sitrep(self, column: str) -> Metric | None:
        """The metric an NHS England sitrep column heading stands for."""
        wanted = " ".join(column.split()).lower()
        for m in self.metrics:
            if any(" ".join(s.split()).lower() == wanted for s in m.sitrep):
                return m
        return None


@cache
def load_catalog() -> Catalog:
    text = resources.files("mutual.catalog").joinpath("metrics.yaml").read_text(encoding="utf-8")
    return Catalog.model_validate(yaml.safe_load(text))
