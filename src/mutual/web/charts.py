"""Vega-Lite specifications of the pages' charts: pure functions from rows to a spec (a dict sent as JSON).

The rows are those the page also shows as a table, so a chart never says more than its table alternative.
"""

from __future__ import annotations

from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"  # an identifier only: nothing is fetched
WIDTH = "container"
BLUE, DARK, PALE, PALER = "#005eb8", "#003087", "#a4c8ee", "#d8e6f6"


def _base(title: str, values: list[dict[str, Any]]) -> dict[str, Any]:
    return {"$schema": SCHEMA, "title": title, "width": WIDTH, "height": 240, "data": {"values": values}}


def time_series(observed: list[dict[str, Any]], forecast: list[dict[str, Any]] | None, *, title: str,
                unit: str) -> dict[str, Any]:
    """Reported values as a line (one per ``series`` when rows have one), and the forecast's mean as a dashed
    line over its 95 % and 80 % intervals as bands. Rows: ``{"date", "value"[, "series"]}``; forecast rows:
    ``{"date", "mean", "lo80", "hi80", "lo95", "hi95"}``."""
    x = {"field": "date", "type": "temporal", "title": None}
    y_title = unit
    color: dict[str, Any] = {"value": BLUE}
    if any("series" in r for r in observed):
        color = {"field": "series", "type": "nominal", "title": None, "legend": {"orient": "bottom"}}
    layers: list[dict[str, Any]] = []
    if forecast:
        fdata = {"values": forecast}
        layers += [
            {"data": fdata, "mark": {"type": "area", "color": PALER},
             "encoding": {"x": x, "y": {"field": "lo95", "type": "quantitative", "title": y_title},
                          "y2": {"field": "hi95"}}},
            {"data": fdata, "mark": {"type": "area", "color": PALE},
             "encoding": {"x": x, "y": {"field": "lo80", "type": "quantitative"}, "y2": {"field": "hi80"}}},
            {"data": fdata, "mark": {"type": "line", "color": DARK, "strokeDash": [6, 4]},
             "encoding": {"x": x, "y": {"field": "mean", "type": "quantitative"},
                          "tooltip": [{"field": "date", "type": "temporal"},
                                      {"field": "mean", "type": "quantitative", "title": "forecast", "format": ",.0f"},
                                      {"field": "lo95", "type": "quantitative", "format": ",.0f"},
                                      {"field": "hi95", "type": "quantitative", "format": ",.0f"}]}},
        ]
    layers.append({"mark": {"type": "line", "point": len(observed) <= 60},
                   "encoding": {"x": x, "y": {"field": "value", "type": "quantitative", "title": y_title},
                                "color": color,
                                "tooltip": [{"field": "date", "type": "temporal"},
                                            {"field": "value", "type": "quantitative", "format": ",.1f"}]}})
    spec = _base(title, observed)
    spec["layer"] = layers
    return spec


def bars(rows: list[dict[str, Any]], *, category: str, value: str, title: str, unit: str,
         percent: bool = False) -> dict[str, Any]:
    """Horizontal bars, largest first: one per row's ``category``."""
    spec = _base(title, rows)
    spec["height"] = {"step": 18}
    spec["mark"] = {"type": "bar", "color": BLUE}
    spec["encoding"] = {
        "y": {"field": category, "type": "nominal", "sort": "-x", "title": None},
        "x": {"field": value, "type": "quantitative", "title": unit, "axis": {"format": ".0%" if percent else ","}},
        "tooltip": [{"field": category, "type": "nominal"},
                    {"field": value, "type": "quantitative", "format": ".1%" if percent else ",.0f"}]}
    return spec


def capacity(rows: list[dict[str, Any]], *, title: str, unit: str) -> dict[str, Any]:
    """Capacity as an area with occupancy as a line over it. Rows: ``{"date", "open", "occupied"}``."""
    x = {"field": "date", "type": "temporal", "title": None}
    spec = _base(title, rows)
    spec["layer"] = [
        {"mark": {"type": "area", "color": PALER},
         "encoding": {"x": x, "y": {"field": "open", "type": "quantitative", "title": unit}}},
        {"mark": {"type": "line", "color": DARK},
         "encoding": {"x": x, "y": {"field": "occupied", "type": "quantitative"},
                      "tooltip": [{"field": "date", "type": "temporal"},
                                  {"field": "open", "type": "quantitative", "format": ",.0f"},
                                  {"field": "occupied", "type": "quantitative", "format": ",.0f"}]}},
    ]
    return spec
