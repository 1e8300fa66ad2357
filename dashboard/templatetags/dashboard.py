"""Formatting for the dashboard's numbers: units always shown, thousands separated, nulls as "–"."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.http import HttpRequest

from dashboard.paging import page_url

register = template.Library()
NONE = "–"


@register.filter
def num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return NONE
    return f"{value:,.{digits}f}"


@register.filter
def usd(value: float | None) -> str:
    """Dollars: cents from a dime up ($12.34, $0.90), four significant digits below ($0.0042)."""
    if value is None:
        return NONE
    if value == 0:
        return "$0.00"
    if abs(value) >= 0.1:
        return f"${value:,.2f}"
    return f"${value:.4g}" if abs(value) >= 1e-4 else f"${value:.2e}"


@register.filter
def ms(value: float | None) -> str:
    if value is None:
        return NONE
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    return f"{value:,.0f} ms"


@register.filter
def pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return NONE
    return f"{value * 100:.{digits}f} %"


def ms_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start) / timedelta(milliseconds=1)


@register.filter
def duration(start: datetime | None, end: datetime | None) -> str:
    """``start|duration:end`` in ms or s; "–" when either end is missing."""
    return ms(ms_between(start, end))


def pretty_json(value: Any, indent: int = 2) -> str:
    """JSON for reading: indented, non-ASCII characters as themselves."""
    return json.dumps(value, indent=indent, ensure_ascii=False)


@register.simple_tag(takes_context=True)
def query(context: dict[str, Any], **changes: Any) -> str:
    """This page's query string with ``changes`` applied (None removes a parameter), e.g. the
    window tabs: ``{% query window="24h" %}``. A page cursor never survives a change."""
    request: HttpRequest = context["request"]
    return page_url(request, cursor=None, page=None, **changes)
