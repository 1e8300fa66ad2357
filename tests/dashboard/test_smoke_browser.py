from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_overview_draws_its_charts(tab_as) -> None:
    tab = tab_as("viewer", "acme")
    tab.goto("/")
    tab.page.wait_for_selector("#cost-latency svg.main-svg")
    assert tab.page.title().startswith("Overview")
