"""Completeness and timeliness: per trust, metric and collection day, was it received, how late, for how many
days has it been missing, and how much of it was quarantined.

Definitions (the same as the roll-ups' coverage):

- a **collection day** for a metric is a day on which at least one trust reported it;
- a trust is **expected** for a metric on a collection day when it sent that metric at least once up to the
  last day asked for (a stored value, or one quarantined), as known at ``as_of``, and was open that day (or
  reported anyway);
- **received**: a value for the day is stored; ``received_at`` is when the first one arrived (the earliest
  ``recorded_at`` among all versions, which is its submission's received time);
- **deadline**: ``deadline`` o'clock, ``days_after`` days after the day (default 0 for a level such as beds
  occupied at 08:00, 1 for a flow, whose day must end before it can be counted); times are the store's clock
  (UTC, as ``received_at``). ``late_hours`` is how far past the deadline it arrived (0 when on time);
- **missing_streak**: consecutive collection days up to and including this one without a value (0 if received);
- **quarantined**: values of that trust, metric and day held back by an error (``quality_issue``), and
  ``quarantined_share`` = quarantined ÷ (quarantined + stored).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING

import pyarrow as pa

from mutual.analytics.rollup import count_of
from mutual.catalog import load_catalog
from mutual.catalog.metrics import Kind
from mutual.catalog.orgs import OrgKind
from mutual.store.base import ObservationQuery, ObservationSource

if TYPE_CHECKING:
    import ibis.expr.types as ir

DEFAULT_DEADLINE = time(11, 0)


def default_days_after(kind: Kind) -> int:
    """A level is due the same day; a flow counts a whole day's events, so it is due the day after."""
    return 1 if kind == Kind.FLOW else 0


def _trusts(store: ObservationSource, org: str | None) -> pa.Table:
    orgs = store.orgs()
    if org is not None:
        found = {o.code: o for o in orgs}.get(org)
        if found is None:
            raise ValueError(f"organisation {org!r} is unknown (see `mutual orgs list`)")
        if found.kind != OrgKind.TRUST:
            raise ValueError(f"{org} is a {found.kind}: completeness is per trust")
    rows = [{"org": o.code, "name": o.name, "open_date": o.open_date, "close_date": o.close_date}
            for o in orgs if o.kind == OrgKind.TRUST and (org is None or o.code == org)]
    return pa.Table.from_pylist(rows, schema=pa.schema([("org", pa.string()), ("name", pa.string()),
                                                        ("open_date", pa.date32()), ("close_date", pa.date32())]))


def _quarantined(store: ObservationSource, as_of: datetime | None) -> ir.Table:
    """Distinct values held back by an error, per org, metric and day (counting only submissions known at
    ``as_of``, and only issues still open or corrected later: a released value is stored)."""
    import ibis

    q = store.ibis.table("quality_issue")
    q = q.filter(q.severity == "error", q.org.notnull(), q.metric.notnull(), q.status != "released")
    if as_of is not None:
        log = store.ibis.table("load_log")
        q = q.semi_join(log.filter(log.recorded_at <= ibis.literal(as_of, type="timestamp")), "submission_id")
    q = q.mutate(day=q.period.try_cast("date")).filter(lambda t: t.day.notnull())
    cells = q.select("org", "metric", "day", "submission_id", "sheet", "row_num", "col", "dims").distinct()
    return cells.group_by(["org", "metric", "day"]).aggregate(quarantined=cells.count())


def completeness(store: ObservationSource, start: date, end: date, *, metric: str | None = None, org: str | None = None,
                 deadline: time = DEFAULT_DEADLINE, days_after: int | None = None,
                 as_of: datetime | None = None) -> pa.Table:
    """One row per expected trust, metric and collection day in ``start..end`` (see the module's definitions)."""
    import ibis

    catalog = load_catalog()
    if metric is not None and metric not in catalog.codes:
        raise ValueError(f"metric {metric!r} is not in the catalogue (see `mutual catalog`)")
    if end < start:
        raise ValueError(f"the last day {end} is before the first {start}")
    if days_after is not None and days_after < 0:
        raise ValueError(f"days after must be 0 or more, not {days_after}")
    trusts = ibis.memtable(_trusts(store, org))
    every_trust = ibis.memtable(_trusts(store, None).select(["org"])) if org is not None else trusts
    offsets = ibis.memtable(pa.table({
        "metric": [m.code for m in catalog.metrics],
        "days_after": [default_days_after(m.kind) if days_after is None else days_after for m in catalog.metrics]}))

    hist = store.observations(ObservationQuery(metric=metric, end=end, as_of=as_of, include_history=True),
                              ordered=False)
    hist = hist.semi_join(trusts, "org")
    firsts = hist.group_by(["org", "metric", hist.period.name("day")]).aggregate(received_at=hist.recorded_at.min())
    now = store.observations(ObservationQuery(metric=metric, end=end, as_of=as_of), ordered=False)
    stored_all = now.semi_join(every_trust, "org")
    stored_all = stored_all.group_by(["org", "metric", stored_all.period.name("day")]).aggregate(
        stored=stored_all.count())
    stored = stored_all.semi_join(trusts, "org")

    # every expected (trust, metric) on every collection day up to `end`: the streaks need the days before start
    held = _quarantined(store, as_of).filter(lambda t: t.day <= ibis.literal(end, type="date"))
    series = stored.select("org", "metric").union(held.select("org", "metric"), distinct=True).join(trusts, "org")
    days = stored_all.select("metric", "day").distinct()  # collection days: any trust, not only `org`
    grid = series.join(days, "metric")
    grid = grid.left_join(stored, ["org", "metric", "day"]).select(*grid.columns, "stored")
    grid = grid.filter(grid.stored.notnull()
                       | ((grid.open_date.isnull() | (grid.open_date <= grid.day))
                          & (grid.close_date.isnull() | (grid.close_date >= grid.day))))
    received = grid.stored.notnull()
    w = ibis.cumulative_window(group_by=[grid.org, grid.metric], order_by=grid.day)
    grid = grid.mutate(received=received, run=count_of(received).sum().over(w))
    # within a run (a received day and the missing days after it) the streak counts the missing days
    run_w = ibis.window(group_by=[grid.org, grid.metric, grid.run], order_by=grid.day)
    grid = grid.mutate(missing_streak=ibis.row_number().over(run_w) + ibis.ifelse(grid.run == 0, 1, 0))
    grid = grid.filter(grid.day >= ibis.literal(start, type="date"))

    t = grid.left_join(firsts, ["org", "metric", "day"]).select(*grid.columns, "received_at")
    t = t.left_join(held, ["org", "metric", "day"]).select(*t.columns, "quarantined")
    t = t.join(offsets, "metric")
    due = (t.day.cast("timestamp") + ibis.interval(hours=deadline.hour) + ibis.interval(minutes=deadline.minute)
           + t.days_after.as_interval("D"))
    late = (t.received_at.epoch_seconds() - due.epoch_seconds()) / 3600.0
    stored_n = t.stored.fill_null(0)
    quarantined_n = t.quarantined.fill_null(0)
    out = t.select(
        "org", "name", "metric", "day", "received", "received_at", deadline=due,
        late_hours=ibis.ifelse(t.received, ibis.greatest(late, 0.0), ibis.null("float64")),
        missing_streak=ibis.ifelse(t.received, 0, t.missing_streak).cast("int64"),
        stored=stored_n, quarantined=quarantined_n,
        quarantined_share=ibis.ifelse(stored_n + quarantined_n > 0,
                                      quarantined_n / (stored_n + quarantined_n), ibis.null("float64")))
    return out.order_by(["day", "org", "metric"]).to_pyarrow()


def summary(rows: pa.Table) -> pa.Table:
    """Completeness per metric and day: expected, received, on time, quarantined values."""
    import ibis

    t = ibis.memtable(rows)
    on_time = t.received & (t.late_hours <= 0)
    g = t.group_by(["metric", "day"]).aggregate(
        expected=t.count(), received=count_of(t.received).sum(), on_time=count_of(on_time).sum(),
        quarantined=t.quarantined.sum(), longest_missing_streak=t.missing_streak.max())
    return g.order_by(["day", "metric"]).to_pyarrow()
