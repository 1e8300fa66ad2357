"""Numbers on the dashboard carry their unit and stay readable at every magnitude."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.http import QueryDict
from django.test import RequestFactory

from dashboard.templatetags import dashboard as fmt


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "–"),
        (0, "$0.00"),
        (1234.5, "$1,234.50"),
        (0.9, "$0.90"),
        (0.0042, "$0.0042"),
        (0.012345, "$0.01235"),
        (0.00001, "$1.00e-05"),
    ],
)
def test_usd(value, shown) -> None:
    assert fmt.usd(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"), [(None, "–"), (0, "0 ms"), (1234.4, "1,234 ms"), (12_500, "12.5 s")]
)
def test_ms(value, shown) -> None:
    assert fmt.ms(value) == shown


def test_num_pct_and_duration() -> None:
    assert fmt.num(1234567) == "1,234,567" and fmt.num(1.5, 2) == "1.50" and fmt.num(None) == "–"
    assert fmt.pct(0.125) == "12.5 %" and fmt.pct(None) == "–"
    start = datetime(2026, 11, 27, tzinfo=UTC)
    assert fmt.duration(start, start + timedelta(seconds=2)) == "2,000 ms"
    assert fmt.duration(start, None) == "–"


def test_query_changes_one_parameter_and_drops_the_page_cursor() -> None:
    request = RequestFactory().get("/logs")
    request.GET = QueryDict("model=gpt&cursor=abc&window=7d")
    assert fmt.query({"request": request}, window="30d") == "?model=gpt&window=30d"
    assert fmt.query({"request": request}, model=None) == "?window=7d"
