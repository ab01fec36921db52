"""Roll-ups through the hierarchy: trust -> STP/ICS -> region -> nation, by each metric's rule in the catalogue.

The path of one roll-up, every step an Ibis expression over the store's tables:

1. **leaves**: each trust's value per day (``carry > 0`` fills a missing day from the trust's last value up to
   N days old, flagged ``imputed``); then per trust and period by the metric's kind: point-in-time, cumulative
   and days-of-supply take the trust's latest value in the period, flows sum their days.
2. **partials**: per parent, the sums and counts from which any parent value can be finished. A partial of
   partials is again a partial, so trust -> region -> nation equals trust -> nation for every rule.
3. **finish**: the value. Counts sum. Days of supply (``stock_days``) are never summed: a parent's days are
   Σ stock ÷ Σ daily usage, i.e. each trust's days weighted by its ``supply_usage`` of that item on that day;
   when any contributing trust did not report its usage, no weights exist and the parent takes the *minimum*
   of its trusts' days (the stock of the parent runs out first where the shortest supply is; a mean would
   hide it). The ``method`` column says which.

Coverage: a trust is *expected* for a metric (and dimensions) when it reported that series at least once in
the store (as of ``as_of``) and it was open during the period (or reported in it anyway); ``reported`` counts
trusts whose own value is used, ``imputed`` those carried forward. A missing trust is never a zero: without
``carry`` the sum covers the reporting trusts only and the row says so. Rows cover the days on which at least
one trust reported the metric (collection days); a parent with expected trusts and no report shows a null value.

Roll-ups start from trusts (sites report through their trust). A trust without an STP sits in its region
directly; at STP level it is listed under ``<region>/no STP``. A trust that cannot be placed at all (no parent,
no region) is listed under ``(unplaced)`` rather than dropped. Closed trusts and their successors keep the
values each reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from mutual.catalog import load_catalog
from mutual.catalog.metrics import Kind, Metric
from mutual.catalog.orgs import Org, OrgKind
from mutual.store.base import ObservationQuery, ObservationSource

if TYPE_CHECKING:
    import ibis.expr.types as ir


class Level(StrEnum):
    STP = "stp"
    REGION = "region"
    NATION = "nation"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # Monday to Sunday
    MONTH = "month"
    RANGE = "range"  # the whole --from .. --to


UNPLACED = "(unplaced)"
NO_STP = "no STP"

# Rates are recomputed from rolled-up parts (numerator, denominator), never averaged. Every metric with a
# capacity in the catalogue gives one more: ``<metric>_rate``.
NAMED_RATES = {
    "ga_occupancy": ("ga_beds_occupied", "ga_beds_open"),
    "cc_adult_occupancy": ("cc_adult_beds_occupied", "cc_adult_beds_open"),
    "ventilator_use": ("ventilators_in_use", "ventilators_total"),
}


def count_of(condition: ir.BooleanValue) -> ir.IntegerValue:
    """1 where ``condition`` holds, else 0 (a CASE, not a cast: PostgreSQL cannot cast a boolean to bigint)."""
    import ibis

    return ibis.ifelse(condition, 1, 0).cast("int64")


def rates() -> dict[str, tuple[str, str]]:
    """Every rate Mutual can roll up: the named ones and each metric over its capacity."""
    found = dict(NAMED_RATES)
    for m in load_catalog().metrics:
        if m.capacity and (m.code, m.capacity) not in found.values():
            found[f"{m.code}_rate"] = (m.code, m.capacity)
    return found


@dataclass(frozen=True)
class RollupQuery:
    metric: str
    level: Level
    start: date
    end: date
    as_of: datetime | None = None
    period: Period = Period.DAY
    carry: int = 0


# -- the hierarchy -----------------------------------------------------------------------------------------------


def _ancestor(org: Org, kind: OrgKind, by_code: dict[str, Org]) -> Org | None:
    """The first organisation of ``kind`` up the parent chain (then through the ``region`` field)."""
    seen: set[str] = set()
    current: Org | None = org
    while current is not None and current.code not in seen:
        seen.add(current.code)
        if current is not org and current.kind == kind:
            return current
        nxt = by_code.get(current.parent) if current.parent else None
        if nxt is None and current.region and current.region != current.code:
            nxt = by_code.get(current.region)
        current = nxt
    return None


def placement(orgs: list[Org], level: Level) -> pa.Table:
    """Each trust's parent at ``level``: ``org, parent, parent_name, open_date, close_date``."""
    by_code = {o.code: o for o in orgs}
    rows = []
    for o in orgs:
        if o.kind != OrgKind.TRUST:
            continue
        region = _ancestor(o, OrgKind.REGION, by_code)
        if level == Level.NATION:
            parent = _ancestor(region or o, OrgKind.NATION, by_code)
        elif level == Level.REGION:
            parent = region
        else:
            parent = _ancestor(o, OrgKind.STP, by_code)
            if parent is None and region is not None:
                parent = Org(code=f"{region.code}/{NO_STP}", name=f"{region.name}: trusts without an STP",
                             kind=OrgKind.STP)
        rows.append({"org": o.code, "parent": parent.code if parent else UNPLACED,
                     "parent_name": parent.name if parent else "trusts not placed in the hierarchy",
                     "open_date": o.open_date, "close_date": o.close_date})
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("org", pa.string()), ("parent", pa.string()), ("parent_name", pa.string()),
        ("open_date", pa.date32()), ("close_date", pa.date32())]))


# -- pure steps over Ibis tables ---------------------------------------------------------------------------------


def bucket(day: ir.DateValue, period: Period, start: date, end: date) -> tuple[ir.DateValue, ir.DateValue]:
    """The period a day falls in, clipped to the query's range: (first day, last day)."""
    import ibis

    lo, hi = ibis.literal(start, type="date"), ibis.literal(end, type="date")
    if period == Period.DAY:
        return day, day
    if period == Period.RANGE:
        return lo, hi
    if period == Period.WEEK:
        first = day.truncate("W")
        last = first + ibis.interval(days=6)
    else:
        first = day.truncate("M")
        last = first + ibis.interval(months=1) - ibis.interval(days=1)
    return ibis.greatest(first, lo), ibis.least(last.cast("date"), hi)


def per_period(leaves: ir.Table, kind: Kind, period: Period, start: date, end: date) -> ir.Table:
    """Trust-level values per period (``org, parent, dims, day, value, imputed`` in; ``period, period_end``
    out): flows sum their days, every other kind takes the trust's latest value in the period."""
    first, last = bucket(leaves.day, period, start, end)
    t = leaves.mutate(period=first, period_end=last)
    keys = ["org", "parent", "dims", "period", "period_end"]
    if kind == Kind.FLOW:
        return t.group_by(keys).aggregate(value=t.value.sum(), imputed=t.imputed.any())
    return t.group_by(keys).aggregate(value=t.value.argmax(t.day), imputed=t.imputed.argmax(t.day))


def to_partials(values: ir.Table, weights: ir.Table | None = None) -> ir.Table:
    """One partial per trust and period. ``weights`` (``org, period, item, usage``) weight days of supply."""
    import ibis

    t = values
    if weights is not None:
        t = t.mutate(item=t.dims.re_extract(r"item=([^;]*)", 1))
        t = t.left_join(weights, ["org", "period", "item"]).select(*values.columns, "usage")
    else:
        t = t.mutate(usage=ibis.null("float64"))
    weighted = t.usage.notnull() & (t.usage > 0)
    return t.select(
        "parent", "dims", "period", "period_end",
        value_sum=t.value, value_min=t.value,
        weighted_sum=ibis.ifelse(weighted, t.value * t.usage, 0.0),
        usage_sum=ibis.ifelse(weighted, t.usage, 0.0),
        n_weighted=count_of(weighted), reported=count_of(~t.imputed), imputed=count_of(t.imputed))


def merge(partials: ir.Table, parents: ir.Table | None = None) -> ir.Table:
    """Combine partials per parent and period. ``parents`` (``org, parent``) re-parents them first (a region's
    partials into its nation): this is what makes two-step roll-ups equal one-step ones."""
    t = partials
    if parents is not None:
        t = t.join(parents.rename(old_parent="org", new_parent="parent"), t.parent == parents.org)
        t = t.drop("parent", "old_parent").rename(parent="new_parent")
    return t.group_by(["parent", "dims", "period", "period_end"]).aggregate(
        value_sum=t.value_sum.sum(), value_min=t.value_min.min(), weighted_sum=t.weighted_sum.sum(),
        usage_sum=t.usage_sum.sum(), n_weighted=t.n_weighted.sum(), reported=t.reported.sum(),
        imputed=t.imputed.sum())


def finish(partials: ir.Table, kind: Kind) -> ir.Table:
    """The parent's value by the metric's rule, and the method used."""
    import ibis

    t = partials
    if kind == Kind.STOCK_DAYS:
        all_weighted = (t.n_weighted == t.reported + t.imputed) & (t.usage_sum > 0)
        value = ibis.ifelse(all_weighted, t.weighted_sum / t.usage_sum, t.value_min)
        method = ibis.ifelse(all_weighted, ibis.literal("usage-weighted"), ibis.literal("minimum"))
    else:
        value, method = t.value_sum, ibis.literal("sum")
    return t.mutate(value=value, method=method)


# -- reading the store -------------------------------------------------------------------------------------------


def _metric(code: str) -> Metric:
    try:
        return load_catalog().get(code)
    except KeyError:
        raise ValueError(f"metric {code!r} is not in the catalogue (see `mutual catalog`)") from None


def _check(q: RollupQuery) -> Metric:
    metric = _metric(q.metric)
    if q.end < q.start:
        raise ValueError(f"--to {q.end} is before --from {q.start}")
    if q.carry < 0:
        raise ValueError(f"--carry must be 0 or more days, not {q.carry}")
    if q.carry and metric.kind == Kind.FLOW:
        raise ValueError(f"{metric.code} is a flow (events per day): a missing day cannot be carried forward")
    return metric


def _trust_values(store: ObservationSource, place: ir.Table, metric: str, start: date, end: date,
                  as_of: datetime | None) -> ir.Table:
    obs = store.observations(ObservationQuery(metric=metric, start=start, end=end, as_of=as_of), ordered=False)
    return obs.join(place, "org").select("org", "parent", "open_date", "close_date", "dims",
                                         day=obs.period, value=obs.value)


def _expected_series(store: ObservationSource, place: ir.Table, metric: str, as_of: datetime | None) -> ir.Table:
    """Series (trust, dims) that reported ``metric`` at least once in the store, as known at ``as_of``."""
    obs = store.observations(ObservationQuery(metric=metric, as_of=as_of), ordered=False)
    series = obs.select("org", "dims").distinct()
    return series.join(place, "org")


def leaves(store: ObservationSource, place: ir.Table, q: RollupQuery) -> tuple[ir.Table, ir.Table]:
    """Trust-level daily values (``org, parent, dims, day, value, imputed``) and the collection days."""
    import ibis

    reported = _trust_values(store, place, q.metric, q.start, q.end, q.as_of)
    days = reported.select("day").distinct()
    if not q.carry:
        return reported.select("org", "parent", "dims", "day", "value", imputed=ibis.literal(False)), days
    # every expected series on every collection day; the latest value at most `carry` days old fills it
    series = _expected_series(store, place, q.metric, q.as_of)
    grid = series.cross_join(days)
    grid = grid.filter(grid.open_date.isnull() | (grid.open_date <= grid.day),
                       grid.close_date.isnull() | (grid.close_date >= grid.day))
    past = _trust_values(store, place, q.metric, q.start - timedelta(days=q.carry), q.end, q.as_of)
    past = past.select("org", "dims", seen=past.day, seen_value=past.value)
    j = grid.join(past, [grid.org == past.org, grid.dims == past.dims, past.seen <= grid.day,
                         past.seen >= grid.day - ibis.interval(days=q.carry)])
    filled = j.group_by([j.org, j.parent, j.dims, j.day]).aggregate(
        value=j.seen_value.argmax(j.seen), seen=j.seen.max())
    filled = filled.select("org", "parent", "dims", "day", "value", imputed=filled.seen != filled.day)
    # a trust that reported on a day it was closed keeps its value (values stay with who reported them)
    extra = reported.anti_join(filled, ["org", "dims", "day"])
    return filled.union(extra.select("org", "parent", "dims", "day", "value", imputed=ibis.literal(False))), days


def usage_weights(store: ObservationSource, place: ir.Table, q: RollupQuery) -> ir.Table:
    """Each trust's latest ``supply_usage`` per item in each period, to weight its days of supply."""
    import ibis

    use = _trust_values(store, place, "supply_usage", q.start, q.end, q.as_of)
    use = use.select("org", "parent", "dims", "day", "value", imputed=ibis.literal(False))
    per = per_period(use, Kind.POINT_IN_TIME, q.period, q.start, q.end)
    return per.select("org", "period", item=per.dims.re_extract(r"item=([^;]*)", 1), usage=per.value)


def expected(store: ObservationSource, place: ir.Table, q: RollupQuery, days: ir.Table, values: ir.Table) -> ir.Table:
    """Expected trusts per parent, dims and period: series ever reported, open in the period or reporting in it."""
    series = _expected_series(store, place, q.metric, q.as_of)
    first, last = bucket(days.day, q.period, q.start, q.end)
    periods = days.select(period=first, period_end=last).distinct()
    grid = series.cross_join(periods)
    grid = grid.filter(grid.open_date.isnull() | (grid.open_date <= grid.period_end),
                       grid.close_date.isnull() | (grid.close_date >= grid.period))
    keys = ["org", "parent", "dims", "period", "period_end"]
    both = grid.select(*keys).union(values.select(*keys), distinct=True)
    return both.group_by(["parent", "dims", "period", "period_end"]).aggregate(expected=both.org.nunique())


def rollup(store: ObservationSource, q: RollupQuery) -> pa.Table:
    """One row per parent at ``q.level``, dims and period: value, reported / expected / imputed trusts, method."""
    import ibis

    metric = _check(q)
    orgs = store.orgs()
    place = ibis.memtable(placement(orgs, q.level))
    daily, days = leaves(store, place, q)
    values = per_period(daily, metric.kind, q.period, q.start, q.end)
    weights = usage_weights(store, place, q) if metric.kind == Kind.STOCK_DAYS else None
    done = finish(merge(to_partials(values, weights)), metric.kind)
    exp = expected(store, place, q, days, values)
    t = exp.left_join(done, ["parent", "dims", "period", "period_end"])
    names = place.select("parent", "parent_name").distinct()
    t = t.left_join(names, "parent")
    t = t.select(level=ibis.literal(str(q.level)), org=t.parent, name=t.parent_name, metric=ibis.literal(q.metric),
                 dims=t.dims, period=t.period, period_end=t.period_end, value=t.value,
                 reported=t.reported.fill_null(0), imputed=t.imputed.fill_null(0), expected=t.expected,
                 method=t.method.fill_null(ibis.literal("none reported")))
    return t.order_by(["org", "dims", "period"]).to_pyarrow()


def rollup_rate(store: ObservationSource, rate: str, level: Level, start: date, end: date, *,
                as_of: datetime | None = None, period: Period = Period.DAY, carry: int = 0) -> pa.Table:
    """A rate per parent and period, from rolled-up parts: Σ numerator ÷ Σ denominator over the trusts that
    reported both (a trust with only one part would bias it), never an average of trusts' rates."""
    import ibis

    known = rates()
    if rate not in known:
        raise ValueError(f"rate {rate!r} is unknown; choose one of {', '.join(sorted(known))}")
    num_code, den_code = known[rate]
    place = ibis.memtable(placement(store.orgs(), level))
    parts = []
    for code in (num_code, den_code):
        q = RollupQuery(code, level, start, end, as_of, period, carry)
        metric = _check(q)
        daily, _ = leaves(store, place, q)
        parts.append(per_period(daily, metric.kind, period, start, end))
    num, den = parts
    keys = ["org", "parent", "dims", "period", "period_end"]
    j = num.join(den.rename(den_value="value", den_imputed="imputed"), keys)
    g = j.group_by(["parent", "dims", "period", "period_end"]).aggregate(
        numerator=j.value.sum(), denominator=j.den_value.sum(), trusts=j.org.nunique(),
        imputed=count_of(j.imputed | j.den_imputed).sum())
    names = place.select("parent", "parent_name").distinct()
    g = g.left_join(names, "parent")
    out = g.select(level=ibis.literal(str(level)), org=g.parent, name=g.parent_name, rate=ibis.literal(rate),
                   dims=g.dims, period=g.period, period_end=g.period_end, numerator=g.numerator,
                   denominator=g.denominator,
                   value=ibis.ifelse(g.denominator > 0, g.numerator / g.denominator, ibis.null("float64")),
                   trusts=g.trusts, imputed=g.imputed)
    return out.order_by(["org", "dims", "period"]).to_pyarrow()


def compare_reported(store: ObservationSource, metric: str, start: date, end: date, *, as_of: datetime | None = None,
                     carry: int = 0) -> pa.Table:
    """Computed roll-ups beside the subtotals organisations reported themselves (NHS England's ``ENG`` rows, a
    region's row), per day: computed, reported, difference (computed - reported) and the coverage."""

    _metric(metric)
    by_code = {o.code: o for o in store.orgs()}
    obs = store.observations(ObservationQuery(metric=metric, start=start, end=end, as_of=as_of), ordered=False)
    reporters = [r["org"] for r in obs.select("org").distinct().to_pyarrow().to_pylist()]
    out = []
    for level, kind in ((Level.NATION, OrgKind.NATION), (Level.REGION, OrgKind.REGION), (Level.STP, OrgKind.STP)):
        codes = [c for c in reporters if c in by_code and by_code[c].kind == kind]
        if not codes:
            continue
        # joined here, in Arrow: the roll-up is already out of the engine, and sending it back costs more
        computed = rollup(store, RollupQuery(metric, level, start, end, as_of, carry=carry))
        computed = computed.filter(pc.is_in(computed["org"], pa.array(codes))).select(
            ["org", "dims", "period", "value", "reported", "imputed", "expected"]).rename_columns(
            ["org", "dims", "period", "computed", "reported_trusts", "imputed_trusts", "expected_trusts"])
        own = obs.filter(obs.org.isin(codes)).select("org", "dims", "period", reported=obs.value).to_pyarrow()
        j = computed.join(own, ["org", "dims", "period"], join_type="full outer").sort_by(
            [("org", "ascending"), ("dims", "ascending"), ("period", "ascending")])
        out.append(pa.table({
            "level": pa.array([str(level)] * j.num_rows, pa.string()),
            "org": j["org"], "dims": j["dims"], "period": j["period"], "computed": j["computed"],
            "reported": j["reported"], "difference": pc.subtract(j["computed"], j["reported"]),
            **{c: pc.fill_null(j[c], 0).cast(pa.int64()) for c in ("reported_trusts", "imputed_trusts",
                                                                 "expected_trusts")}}))
    if not out:
        raise ValueError(f"no organisation above trust level reported {metric} between {start} and {end}")
    return pa.concat_tables(out)
