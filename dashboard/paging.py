"""Pages of a list for the dashboard: keyset pages for the big telemetry tables (the API's own
cursor, so page 10,000 costs what page 1 does), numbered pages for the small ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest

from config.api import ApiError, keyset_rows


@dataclass
class Page:
    rows: list[Any]
    next_url: str | None = None
    first_url: str | None = None
    prev_url: str | None = None
    # "Page 2 of 7" for numbered pages; empty for keyset pages, which never count.
    summary: str = ""
    errors: list[str] = field(default_factory=list)


def page_url(request: HttpRequest, **changes: Any) -> str:
    """This page's address with ``changes`` to its query (None removes a parameter)."""
    params = request.GET.copy()
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    return f"?{params.urlencode()}" if params else request.path


def keyset_page(queryset: Any, request: HttpRequest, *, limit: int = 50) -> Page:
    cursor = request.GET.get("cursor", "")
    try:
        rows, next_cursor = keyset_rows(queryset, cursor, limit)
    except ApiError:
        return Page(rows=[], first_url=page_url(request, cursor=None), errors=["That page link has expired."])
    return Page(
        rows=rows,
        next_url=page_url(request, cursor=next_cursor) if next_cursor else None,
        first_url=page_url(request, cursor=None) if cursor else None,
    )


def numbered_page(queryset: Any, request: HttpRequest, *, limit: int = 50) -> Page:
    page = Paginator(queryset, limit).get_page(request.GET.get("page"))
    return Page(
        rows=list(page.object_list),
        next_url=page_url(request, page=page.next_page_number()) if page.has_next() else None,
        prev_url=page_url(request, page=page.previous_page_number()) if page.has_previous() else None,
        summary=f"Page {page.number} of {page.paginator.num_pages}" if page.paginator.num_pages > 1 else "",
    )
