"""What the dashboard's pages share: CSV downloads of their tables, and each trust's latest value of a metric."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from typing import Any

from starlette.responses import Response

from mutual.analytics import alerts as al
from mutual.store.base import Store

Column = tuple[str, str, str]  # key, heading, kind (text, count, fraction, number, decimal, date)


def csv_response(rows: Sequence[dict[str, Any]], columns: Sequence[Column], filename: str) -> Response:
    """A table as CSV, with the page's headings and raw (unformatted) values."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([heading for _, heading, _ in columns])
    for row in rows:
        writer.writerow(["" if row.get(key) is None else row[key] for key, _, _ in columns])
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def trust_values(store: Store, day: date, *, metric: str | None = None,
                 rate: tuple[str, str] | None = None, dims: str = "") -> dict[str, tuple[float, date | None]]:
    """Each trust's latest value of ``metric`` (or rate numerator ÷ denominator, from one day's parts) at most
    a week before ``day``, by the alert engine's own reading of the data (same staleness rules)."""
    rule = al.Rule(id="dashboard_value", title="value", metric=metric,
                   rate=al.Rate(numerator=rate[0], denominator=rate[1]) if rate else None,
                   dims={k: [v] for k, v in (kv.split("=", 1) for kv in dims.split(";") if kv)},
                   op=">", threshold=-1e300, severity="amber", min_quality="low")
    return {c.org: (c.value, c.period) for c in al.evaluate(store, [rule], day)
            if c.value is not None and c.status != "not_reported" and c.dims == dims}
