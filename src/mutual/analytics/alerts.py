"""Shortage alerts: rules as data, evaluated per trust and day, with a history of when each alert opened and closed.

Three steps, each a function:

1. ``load_rules`` reads ``alert_rules.yaml`` (or another file) and checks every rule against the catalogue.
2. ``evaluate`` looks, for one day D, at each trust's latest values at or before D and returns one ``Check`` per
   rule and series: ``alert`` (the condition holds at the rule's minimum quality), ``low_quality`` (it holds, but
   on data too stale or flagged to raise it), ``ok`` or ``not_reported`` (the series has gone quiet).
3. ``record`` stores a day's checks in ``alert_event`` (replacing that day's earlier evaluation) and rebuilds the
   ``alert`` table from *all* stored checks with ``episodes``: an alert opens on the first evaluated day its
   condition holds, stays open (same id, same ``since``) over the following evaluated days on which it holds,
   and closes on the first evaluated day it does not, with the reason. History is therefore a function of the
   set of evaluated days, never of the order they were evaluated in: evaluating a day twice, or a past day
   late, gives the same table as evaluating the days in order once.

``crossings`` projects the day a threshold is crossed from a forecast table, with an 80 % interval of days.
"""

from __future__ import annotations

import math
import operator
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mutual.catalog import load_catalog
from mutual.catalog.metrics import Catalog
from mutual.catalog.orgs import OrgKind
from mutual.store.base import ObservationQuery, Store

if TYPE_CHECKING:
    import ibis.expr.types as ir

SEVERITIES = ("amber", "red")
QUALITIES = ("low", "medium", "high")
OPS: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                                  "<=": operator.le}
# Series silent for longer than this before the evaluated day are no longer expected (a trust that stopped
# reporting a metric a month ago is not listed as "not reported" forever).
REPORT_WINDOW_DAYS = 28
# Who alerts are about: providers, not the roll-ups (regions, the nation) that report their own totals.
ALERT_KINDS = (OrgKind.TRUST, OrgKind.SITE)


class RuleError(ValueError):
    """A rules file that cannot be used; the message names the file and the rule."""


class Rate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    numerator: str
    denominator: str


class Baseline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(ge=7, le=365)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = Field(min_length=1)
    group: str | None = None
    metric: str | None = None
    rate: Rate | None = None
    baseline: Baseline | None = None
    dims: dict[str, list[str | None]] = Field(default_factory=dict)
    op: Literal[">", ">=", "<", "<="]
    threshold: float = Field(allow_inf_nan=False)
    severity: Literal["amber", "red"]
    min_quality: Literal["low", "medium", "high"] = "medium"
    stale_after_days: int = Field(default=2, ge=0)
    max_age_days: int = Field(default=7, ge=0, le=REPORT_WINDOW_DAYS)
    forecast: bool = False

    @property
    def concern(self) -> str:
        return self.group or self.id

    @property
    def metrics(self) -> list[str]:
        return [self.rate.numerator, self.rate.denominator] if self.rate else [self.metric or ""]

    @property
    def forecast_metric(self) -> str:
        return self.rate.numerator if self.rate else self.metric or ""

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)

    def show(self, value: float) -> str:
        """A compared value as people read it: rates and baselines as percentages."""
        return f"{value:.1%}" if self.rate or self.baseline else f"{value:g}"


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    rules: list[Rule]


def _check_rule(rule: Rule, catalog: Catalog) -> None:
    if (rule.metric is None) == (rule.rate is None):
        raise ValueError("give exactly one of `metric` or `rate`")
    if rule.baseline and not rule.metric:
        raise ValueError("`baseline` compares one metric with its own past: give `metric`, not `rate`")
    if rule.max_age_days < rule.stale_after_days:
        raise ValueError("max_age_days must be at least stale_after_days")
    for code in rule.metrics:
        if code not in catalog.codes:
            raise ValueError(f"metric {code!r} is not in the catalogue")
    for dim, values in rule.dims.items():
        for code in rule.metrics:
            if dim not in catalog.get(code).dims:
                raise ValueError(f"metric {code!r} has no dimension {dim!r}")
        for v in values:
            if v is not None and v not in catalog.dimensions[dim]:
                raise ValueError(f"{v!r} is not a value of dimension {dim!r} "
                                 f"(one of {', '.join(catalog.dimensions[dim])})")


def load_rules(path: Path | None = None, catalog: Catalog | None = None) -> list[Rule]:
    """The rules of ``path`` (default: the shipped ``alert_rules.yaml``), each checked against the catalogue.

    Raises ``RuleError`` naming the file and the first bad rule (by id, else by position)."""
    catalog = catalog or load_catalog()
    if path is None:
        name, text = "alert_rules.yaml", resources.files("mutual.analytics").joinpath("alert_rules.yaml").read_text()
    else:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(f"cannot read alert rules {name}: {exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{name} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(f"{name} must be a mapping with a `rules:` list")
    rules: list[Rule] = []
    for i, raw in enumerate(doc["rules"], start=1):
        label = f"rule {raw.get('id')!r}" if isinstance(raw, dict) and raw.get("id") else f"rule {i}"
        try:
            rule = Rule.model_validate(raw)
            _check_rule(rule, catalog)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise RuleError(f"{name}: {label}: {where + ': ' if where else ''}{first['msg']}") from None
        except ValueError as exc:
            raise RuleError(f"{name}: {label}: {exc}") from None
        if any(r.id == rule.id for r in rules):
            raise RuleError(f"{name}: {label}: the id is used twice")
        rules.append(rule)
    try:
        RuleSet.model_validate({**doc, "rules": []})
    except ValidationError as exc:
        raise RuleError(f"{name}: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    return rules


@cache
def shipped_rules() -> tuple[Rule, ...]:
    return tuple(load_rules())


# -- evaluation ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One rule on one series of one trust, as evaluated for one day: a row of ``alert_event``."""

    eval_date: date
    rule: str
    org: str
    dims: str
    status: str  # alert | low_quality | ok | not_reported
    severity: str
    value: float | None  # what was compared: the rate, the ratio to the baseline or the value
    threshold: float
    period: date | None  # the day of the value(s) used
    quality: str  # high | medium | low
    why: str
    evaluated_at: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.org, self.dims)


def decode_dims(dims: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in dims.split(";") if part)


def _dims_match(rule: Rule, dims: str) -> bool:
    have = decode_dims(dims)
    return all(have.get(dim) in allowed for dim, allowed in rule.dims.items())


def quality_of(age_days: int, stale_after_days: int, flagged: bool) -> str:
    """high: fresh and not flagged; medium: stale or flagged; low: both."""
    return QUALITIES[2 - (age_days > stale_after_days) - int(flagged)]


def _frame(store: Store, metric: str, start: date, end: date, as_of: datetime | None) -> ir.Table:
    t = store.observations(ObservationQuery(metric=metric, start=start, end=end, as_of=as_of))
    return t.select("org", "dims", "period", "value", "flagged")


@dataclass(frozen=True)
class Point:
    """The value a rule compares for one series on one day, with what it was computed from."""

    period: date
    value: float
    flagged: bool
    why: str


def _points(store: Store, rule: Rule, day: date, as_of: datetime | None,
            orgs: set[str]) -> dict[tuple[str, str], list[Point]]:
    """Per (org, dims): the rule's values in the window before ``day``, oldest first."""
    catalog = load_catalog()
    start = day - timedelta(days=REPORT_WINDOW_DAYS + (rule.baseline.days if rule.baseline else 0))
    out: dict[tuple[str, str], list[Point]] = defaultdict(list)
    if rule.rate:
        n = _frame(store, rule.rate.numerator, start, day, as_of)
        d = _frame(store, rule.rate.denominator, start, day, as_of)
        d = d.filter(d.value > 0).rename(den="value", den_flagged="flagged")
        j = n.join(d, ["org", "dims", "period"]).select("org", "dims", "period", "value", "flagged", "den",
                                                          "den_flagged")
        for r in j.order_by(["org", "dims", "period"]).to_pyarrow().to_pylist():
            if r["org"] in orgs and _dims_match(rule, r["dims"]):
                out[(r["org"], r["dims"])].append(Point(
                    r["period"], r["value"] / r["den"], bool(r["flagged"] or r["den_flagged"]),
                    f"{r['value']:g} of {r['den']:g}"))
        return out
    assert rule.metric is not None
    unit = catalog.get(rule.metric).unit
    rows = _frame(store, rule.metric, start, day, as_of).order_by(["org", "dims", "period"]).to_pyarrow()
    for r in rows.to_pylist():
        if r["org"] in orgs and _dims_match(rule, r["dims"]):
            out[(r["org"], r["dims"])].append(Point(r["period"], r["value"], bool(r["flagged"]),
                                                    f"{r['value']:g} {unit}"))
    if rule.baseline:
        days = rule.baseline.days
        for key, series in out.items():
            last = series[-1]
            past = [p.value for p in series if last.period - timedelta(days=days) <= p.period < last.period]
            if len(past) < days // 2 or statistics.median(past) <= 0:
                out[key] = [replace(last, value=math.nan, why=f"{last.why}; too little history for a baseline "
                                                               f"({len(past)} of {days} days)")]
                continue
            usual = statistics.median(past)
            out[key] = [replace(last, value=last.value / usual,
                                why=f"{last.why} against a usual {usual:g} (median of the {days} days before)")]
    return out


def evaluate(store: Store, rules: Sequence[Rule], day: date, *, as_of: datetime | None = None,
             evaluated_at: datetime | None = None) -> list[Check]:
    """Every rule for every trust and site with a series in the ``REPORT_WINDOW_DAYS`` before ``day``, on the latest
    value at or before ``day`` (as known at ``as_of``, default now)."""
    orgs = {o.code for o in store.orgs() if o.kind in ALERT_KINDS}
    at = evaluated_at or datetime.now().replace(microsecond=0)
    checks: list[Check] = []
    for rule in rules:
        for (org, dims), series in sorted(_points(store, rule, day, as_of, orgs).items()):
            p = series[-1]
            age = (day - p.period).days
            if age > REPORT_WINDOW_DAYS:
                continue
            quality = quality_of(age, rule.stale_after_days, p.flagged)
            notes = ([f"{age} days old"] if age > rule.stale_after_days else []) + (
                ["flagged by a quality rule"] if p.flagged else [])
            why = f"{rule.show(p.value)} on {p.period.day} {p.period:%b}: {p.why}" + (
                f" ({', '.join(notes)})" if notes else "")
            if age > rule.max_age_days:
                status, why = "not_reported", f"last reported on {p.period:%d %b %Y}, {age} days before"
            elif math.isnan(p.value):
                status, why = "not_reported", p.why
            elif not rule.holds(p.value):
                status = "ok"
            elif QUALITIES.index(quality) >= QUALITIES.index(rule.min_quality):
                status = "alert"
            else:
                status = "low_quality"
                why += f"; below the rule's minimum quality ({rule.min_quality})"
            value = None if math.isnan(p.value) else p.value
            checks.append(Check(day, rule.id, org, dims, status, rule.severity, value, rule.threshold, p.period,
                                quality, why, at))
    return checks


# -- history -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One episode of a condition on one series: a row of ``alert``."""

    alert_id: str
    rule: str
    org: str
    dims: str
    severity: str
    since: date
    last_held: date
    status: str  # open | closed
    closed_on: date | None
    close_reason: str | None
    value: float | None
    quality: str
    why: str


def alert_id(rule: str, org: str, dims: str, since: date) -> str:
    return "/".join([rule, org, *([dims] if dims else []), since.isoformat()])


def episodes(checks: Iterable[Check]) -> list[Alert]:
    """Alerts from stored checks: runs of consecutive evaluated days on which a series' condition held.

    A run closes on the next evaluated day that did not hold, or that has no check of the series at all (it left
    the report window). The result depends only on the set of checks (one per series and day), not their order."""
    by_key: dict[tuple[str, str, str], dict[date, Check]] = defaultdict(dict)
    evaluated: set[date] = set()
    for c in checks:
        by_key[c.key][c.eval_date] = c
        evaluated.add(c.eval_date)
    days = sorted(evaluated)
    alerts: list[Alert] = []
    for key in sorted(by_key):
        seen = by_key[key]
        runs: list[tuple[list[Check], date | None, str | None]] = []
        run: list[Check] = []
        for d in days:
            check = seen.get(d)
            if check is not None and check.status == "alert":
                run.append(check)
            elif run:
                why = ("no longer in the report window" if check is None else
                       {"ok": "condition no longer holds", "not_reported": "not reported",
                        "low_quality": "data quality too low to keep it open"}[check.status]
                       + f": {check.why}")
                runs.append((run, d, why))
                run = []
        if run:
            runs.append((run, None, None))
        for held, end, closing in runs:
            last = held[-1]
            alerts.append(Alert(alert_id(*key, held[0].eval_date), *key, severity=last.severity,
                                since=held[0].eval_date, last_held=last.eval_date,
                                status="open" if end is None else "closed", closed_on=end, close_reason=closing,
                                value=last.value, quality=last.quality, why=last.why))
    return alerts


def _table(rows: Sequence[Any], cls: type) -> pa.Table:
    names = [f.name for f in fields(cls)]
    schema = _SCHEMAS[cls.__name__]
    assert schema.names == names
    return pa.Table.from_pylist([asdict(r) for r in rows], schema=schema)


_SCHEMAS = {
    "Check": pa.schema([("eval_date", pa.date32()), ("rule", pa.string()), ("org", pa.string()),
                        ("dims", pa.string()), ("status", pa.string()), ("severity", pa.string()),
                        ("value", pa.float64()), ("threshold", pa.float64()), ("period", pa.date32()),
                        ("quality", pa.string()), ("why", pa.string()), ("evaluated_at", pa.timestamp("us"))]),
    "Alert": pa.schema([("alert_id", pa.string()), ("rule", pa.string()), ("org", pa.string()),
                        ("dims", pa.string()), ("severity", pa.string()), ("since", pa.date32()),
                        ("last_held", pa.date32()), ("status", pa.string()), ("closed_on", pa.date32()),
                        ("close_reason", pa.string()), ("value", pa.float64()), ("quality", pa.string()),
                        ("why", pa.string())]),
}


def stored_checks(store: Store) -> list[Check]:
    rows = store.ibis.table("alert_event").to_pyarrow().to_pylist()
    return [Check(**r) for r in rows]


def record(store: Store, day: date, checks: Sequence[Check]) -> list[Alert]:
    """Store ``day``'s checks in place of any earlier evaluation of that day, and rebuild the alerts."""
    if any(c.eval_date != day for c in checks):
        raise ValueError(f"checks of another day than {day} given to record")
    store.append("alert_event", _table(checks, Check), replace_where="eval_date = $day", params={"day": day})
    alerts = episodes(stored_checks(store))
    store.append("alert", _table(alerts, Alert), replace_where="true")
    return alerts


def latest_day(store: Store, rules: Sequence[Rule]) -> date | None:
    """The last day any trust reported any of the rules' metrics."""
    metrics = sorted({m for r in rules for m in r.metrics})
    t = store.ibis.table("observation")
    t = t.filter(t.superseded_at.isnull(), t.metric.isin(metrics))
    found = t.aggregate(last=t.period.max()).to_pyarrow().to_pylist()[0]["last"]
    return found if isinstance(found, date) else None


def open_alerts(alerts: Iterable[Alert], day: date, rules: Sequence[Rule]) -> list[Alert]:
    """Alerts open on ``day`` (opened on or before it, not closed by then), the most severe of each concern
    per series (a red 95% occupancy alert hides the amber 92% one), red first, then by how far past the
    threshold."""
    by_id = {r.id: r for r in rules}
    live = [a for a in alerts if a.rule in by_id and a.since <= day and (a.closed_on is None or a.closed_on > day)]
    best: dict[tuple[str, str, str], Alert] = {}
    for a in live:
        k = (a.org, a.dims, by_id[a.rule].concern)
        if k not in best or SEVERITIES.index(a.severity) > SEVERITIES.index(best[k].severity):
            best[k] = a

    def excess(a: Alert) -> float:
        r = by_id[a.rule]
        if a.value is None or r.threshold == 0:
            return 0.0
        return abs(a.value - r.threshold) / abs(r.threshold)

    return sorted(best.values(), key=lambda a: (-SEVERITIES.index(a.severity), -excess(a), a.org, a.rule, a.dims))


@dataclass(frozen=True)
class Evaluation:
    day: date
    checks: list[Check]
    alerts: list[Alert]  # all episodes, open and closed
    open: list[Alert]  # open on ``day``, one per concern


def run_alerts(store: Store, day: date | None = None, rules: Sequence[Rule] | None = None, *,
               as_of: datetime | None = None, evaluated_at: datetime | None = None) -> Evaluation:
    """Evaluate ``day`` (default: the latest day with data), record it, and say what is open."""
    rules = list(rules if rules is not None else shipped_rules())
    if day is None:
        day = latest_day(store, rules)
        if day is None:
            raise ValueError("no values of the alert rules' metrics in the workspace: ingest some first")
    checks = evaluate(store, rules, day, as_of=as_of, evaluated_at=evaluated_at)
    alerts = record(store, day, checks)
    return Evaluation(day, checks, alerts, open_alerts(alerts, day, rules))


def pressure(store: Store, day: date, top: int = 10, *, as_of: datetime | None = None) -> list[dict[str, Any]]:
    """The trusts with the highest G&A occupancy (occupied ÷ open, from the parts) on their latest day at most a
    week before ``day``."""
    rule = Rule(id="ga_occupancy", title="G&A bed occupancy", rate=Rate(numerator="ga_beds_occupied",
                denominator="ga_beds_open"), op=">", threshold=0.0, severity="amber")
    checks = [c for c in evaluate(store, [rule], day, as_of=as_of) if c.status != "not_reported"]
    checks.sort(key=lambda c: (-(c.value or 0.0), c.org))
    return [{"org": c.org, "occupancy": c.value, "period": c.period, "why": c.why, "quality": c.quality}
            for c in checks[:top]]


# -- projected crossings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Crossing:
    """When a forecast says a threshold will be crossed: ``on`` by the mean, within ``earliest``..``latest`` by the
    80% interval (``latest`` None: the interval's far bound does not cross within the horizon)."""

    org: str
    metric: str
    dims: str
    threshold: float
    on: date | None
    earliest: date
    latest: date | None
    horizon_end: date

    def describe(self) -> str:
        def d(x: date) -> str:
            return f"{x.day} {x:%b}"

        span = f"{d(self.earliest)}–{d(self.latest)}" if self.latest else f"{d(self.earliest)} to after " \
                                                                           f"{d(self.horizon_end)}"
        if self.on is None:
            return f"may cross by {d(self.horizon_end)} (80% interval from {d(self.earliest)})"
        return f"forecast to cross on {d(self.on)}, 80% interval {span}"


def crossings(forecast: pa.Table, thresholds: dict[tuple[str, str], float], op: str) -> list[Crossing]:
    """First days the forecast's mean and 80% bounds cross each series' threshold (in the metric's own units;
    ``thresholds`` by (org, dims)); only the latest forecast (``made_at``) of each series counts.

    For a rising threshold (``>``, ``>=``) the upper bound crosses first, giving the earliest day, and the
    lower bound last; for a falling one the other way round. Series whose upper (lower) bound never crosses
    within the horizon give nothing."""
    if op not in OPS:
        raise ValueError(f"unknown comparison {op!r}")
    cmp = OPS[op]
    rising = op in (">", ">=")
    first_bound, last_bound = ("hi80", "lo80") if rising else ("lo80", "hi80")
    rows = forecast.select(["org", "metric", "dims", "made_at", "period", "mean", "lo80", "hi80"]).to_pylist()
    latest: dict[tuple[str, str, str], Any] = {}
    for r in rows:
        k = (r["org"], r["metric"], r["dims"])
        latest[k] = max(latest.get(k, r["made_at"]), r["made_at"])
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        k = (r["org"], r["metric"], r["dims"])
        if r["made_at"] == latest[k]:
            series[k].append(r)
    out = []
    for (org, metric, dims), rs in sorted(series.items()):
        limit = thresholds.get((org, dims))
        if limit is None:
            continue
        rs.sort(key=lambda r: r["period"])

        def first(col: str, rs: list[dict[str, Any]] = rs, limit: float = limit) -> date | None:
            return next((r["period"] for r in rs if r[col] is not None and cmp(r[col], limit)), None)

        earliest = first(first_bound)
        if earliest is None:
            continue
        on, late = first("mean"), first(last_bound)
        # the interval of days must contain the mean's day even if a model's bounds are not nested
        if on is not None:
            earliest = min(earliest, on)
            late = None if late is None else max(late, on)
        out.append(Crossing(org, metric, dims, limit, on, earliest, late, rs[-1]["period"]))
    return out


def forecast_crossings(store: Store, rules: Sequence[Rule], day: date, checks: Sequence[Check],
                       horizon: int = 14) -> dict[tuple[str, str, str], Crossing]:
    """Projected crossings of each forecast rule for the trusts it was evaluated on (and not already past it),
    keyed by (rule, org, dims). A rate's threshold becomes a count with the latest denominator (beds open
    stay as they are over the horizon). Needs ``mutual.analytics.forecast``."""
    from mutual.analytics.forecast import forecast_series

    wanted: dict[str, dict[tuple[str, str], float]] = {}
    by_id = {r.id: r for r in rules}
    for rule in rules:
        mine = [c for c in checks if rule.forecast and c.rule == rule.id and c.status == "ok" and c.value]
        if not mine:
            continue
        if rule.rate:
            den = _frame(store, rule.rate.denominator, day - timedelta(days=rule.max_age_days), day, None)
            latest = {(r["org"], r["dims"]): r["value"] for r in den.order_by("period").to_pyarrow().to_pylist()}
            wanted[rule.id] = {(c.org, c.dims): rule.threshold * latest[(c.org, c.dims)]
                            for c in mine if (c.org, c.dims) in latest}
        else:
            wanted[rule.id] = {(c.org, c.dims): rule.threshold for c in mine}
    # one forecast per metric, for every trust any of its rules needs (fitting is the expensive part)
    orgs: dict[str, set[str]] = defaultdict(set)
    for rid, thresholds in wanted.items():
        orgs[by_id[rid].forecast_metric] |= {o for o, _ in thresholds}
    # a trust without enough history is left out rather than stopping every other trust's projection
    tables = {metric: forecast_series(store, metric, sorted(codes), horizon, skip_missing=True)
              for metric, codes in orgs.items() if codes}
    out: dict[tuple[str, str, str], Crossing] = {}
    for rid, thresholds in wanted.items():
        rule = by_id[rid]
        if rule.forecast_metric in tables:
            for x in crossings(tables[rule.forecast_metric], thresholds, rule.op):
                out[(rule.id, x.org, x.dims)] = x
    return out


__all__ = ["Alert", "Check", "Crossing", "Evaluation", "Rule", "RuleError", "crossings", "episodes", "evaluate",
           "forecast_crossings", "load_rules", "open_alerts", "pressure", "record", "run_alerts", "shipped_rules"]
