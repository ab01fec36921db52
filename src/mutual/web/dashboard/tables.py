"""What the organisation, quality, submission, alert and plan pages share: a table is one list of rows that the
page shows (``_macros.data_table``/``chart``) and its CSV download sends, so the two never disagree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from starlette.responses import Response

from mutual.store.base import Store
from mutual.web.dashboard.common import Column, csv_response
from mutual.web.errors import ApiError


@dataclass(frozen=True)
class Table:
    key: str  # the ``table=`` of its CSV download
    caption: str
    columns: list[Column]
    rows: list[dict[str, Any]]

    def download(self, name: str) -> Response:
        """The table as CSV, named ``<name>-<key>.csv``."""
        return csv_response(self.rows, self.columns, f"{name}-{self.key}.csv".replace('"', ""))


def pick(tables: Sequence[Table], key: str | None) -> Table:
    """The table a CSV download asks for (``table=``), or 404 naming those there are."""
    for table in tables:
        if table.key == key:
            return table
    raise ApiError(404, "not_found", f"this page has no table {key!r}; it has: {', '.join(t.key for t in tables)}",
                   {"table": key, "tables": [t.key for t in tables]})


def latest_day(store: Store) -> date | None:
    """The latest day any value in force is for: where a page's window ends unless it is told otherwise."""
    obs = store.ibis.table("observation")
    obs = obs.filter(obs.superseded_at.isnull())
    found = obs.aggregate(last=obs.period.max()).to_pyarrow().to_pylist()[0]["last"]
    return found if isinstance(found, date) else None
