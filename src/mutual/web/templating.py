"""Jinja2 templates of the browser pages (``templates/``), rendered with what every page needs: who is signed in
and the CSRF token its forms must carry."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

TEMPLATE_DIR = resources.files("mutual.web").joinpath("templates")
templates = Jinja2Templates(directory=str(TEMPLATE_DIR))


def fmt(value: Any, kind: str = "text", *, signed: bool = False) -> str:
    """A value as a table shows it: counts with thousands separators, fractions as percentages, dates as ISO;
    a missing value is a dash, never "None"."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if kind == "fraction" and isinstance(value, (int, float)):
        return f"{value * 100:+.1f} points" if signed else f"{value * 100:.1f}%"
    if kind in ("count", "trusts", "number") and isinstance(value, (int, float)):
        text = f"{value:+,.0f}" if signed else f"{value:,.0f}"
        return text if value == round(value) or kind != "number" else (f"{value:+,.1f}" if signed else f"{value:,.1f}")
    if kind == "decimal" and isinstance(value, (int, float)):
        return f"{value:,.1f}"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


templates.env.filters["fmt"] = fmt


def render(request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    """``name`` rendered for this request; ``principal`` and ``csrf_token`` are set when someone is signed in
    (``auth.require`` records them on the request)."""
    page: dict[str, Any] = {"principal": getattr(request.state, "principal", None),
                            "csrf_token": getattr(request.state, "csrf_token", None)}
    page.update(context or {})
    return templates.TemplateResponse(request, name, page, status_code=status_code, headers=headers)
