"""Vega-Lite maps over the packaged STP outlines (``static/geo/stp-2017.geojson``, ONS, OGL v3): no map tiles,
nothing fetched from elsewhere. Pure functions from rows to a spec."""

from __future__ import annotations

from typing import Any

from mutual.web.charts import BLUE, DARK, SCHEMA

BOUNDARIES = "/static/geo/stp-2017.geojson"
PROJECTION = {"type": "mercator"}
OUTLINE = {"type": "geoshape", "fill": "#f0f4f5", "stroke": "#aeb7bd", "strokeWidth": 0.5}


def _outlines() -> dict[str, Any]:
    return {"data": {"url": BOUNDARIES, "format": {"type": "json", "property": "features"}}, "mark": OUTLINE}


def choropleth(values: list[dict[str, Any]], *, label: str, percent: bool,
               trusts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """STPs coloured by ``value`` (rows ``{"code", "name", "value"}``; an STP without a value stays grey),
    with trust markers (rows ``{"code", "name", "lat", "lon", "value"}``) sized alike."""
    fmt = ".1%" if percent else ",.0f"
    layers: list[dict[str, Any]] = [
        _outlines(),
        {"data": {"url": BOUNDARIES, "format": {"type": "json", "property": "features"}},
         "transform": [{"lookup": "properties.code", "from": {"data": {"values": values}, "key": "code",
                                                               "fields": ["value", "name"]}},
                       {"filter": "isValid(datum.value)"}],
         "mark": {"type": "geoshape", "stroke": "#fff", "strokeWidth": 0.5},
         "encoding": {"color": {"field": "value", "type": "quantitative", "title": label,
                                "scale": {"scheme": "oranges"}, "legend": {"format": fmt}},
                      "tooltip": [{"field": "name", "type": "nominal", "title": "STP"},
                                  {"field": "value", "type": "quantitative", "title": label, "format": fmt}]}},
    ]
    if trusts:
        layers.append({
            "data": {"values": trusts},
            "mark": {"type": "circle", "color": DARK, "opacity": 0.8, "stroke": "#fff", "strokeWidth": 0.5},
            "encoding": {"longitude": {"field": "lon", "type": "quantitative"},
                         "latitude": {"field": "lat", "type": "quantitative"},
                         "size": {"value": 28},
                         "tooltip": [{"field": "name", "type": "nominal", "title": "trust"},
                                     {"field": "value", "type": "quantitative", "title": label, "format": fmt}]}})
    return {"$schema": SCHEMA, "width": "container", "height": 560, "projection": PROJECTION, "layer": layers}


def plan_moves(moves: list[dict[str, Any]], trusts: dict[str, tuple[float, float, str]]) -> dict[str, Any]:
    """A plan's moves as lines from donor to receiver (width by quantity) over the STP outlines, with the trusts
    involved as points. ``moves``: ``{"src", "dst", "quantity", "resource"}``; ``trusts``: code → (lat, lon, name).
    Moves with a trust of unknown position are left out of the map (they stay in the plan's table)."""
    lines = [{"src": m["src"], "dst": m["dst"], "quantity": m["quantity"], "resource": m["resource"],
              "lat": trusts[m["src"]][0], "lon": trusts[m["src"]][1],
              "lat2": trusts[m["dst"]][0], "lon2": trusts[m["dst"]][1]}
             for m in moves if m["src"] in trusts and m["dst"] in trusts]
    involved = sorted({c for m in lines for c in (m["src"], m["dst"])})
    points = [{"code": c, "lat": trusts[c][0], "lon": trusts[c][1], "name": trusts[c][2]} for c in involved]
    return {"$schema": SCHEMA, "width": "container", "height": 560, "projection": PROJECTION, "layer": [
        _outlines(),
        {"data": {"values": lines}, "mark": {"type": "rule", "color": BLUE, "opacity": 0.7},
         "encoding": {"longitude": {"field": "lon", "type": "quantitative"},
                      "latitude": {"field": "lat", "type": "quantitative"},
                      "longitude2": {"field": "lon2"}, "latitude2": {"field": "lat2"},
                      "strokeWidth": {"field": "quantity", "type": "quantitative", "title": "quantity",
                                      "scale": {"range": [1, 6]}},
                      "tooltip": [{"field": "src", "title": "from"}, {"field": "dst", "title": "to"},
                                  {"field": "resource"}, {"field": "quantity", "type": "quantitative"}]}},
        {"data": {"values": points}, "mark": {"type": "circle", "color": DARK, "size": 40},
         "encoding": {"longitude": {"field": "lon", "type": "quantitative"},
                      "latitude": {"field": "lat", "type": "quantitative"},
                      "tooltip": [{"field": "code"}, {"field": "name"}]}},
    ]}
