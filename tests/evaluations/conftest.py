"""Keys of workspace ``default`` for the evaluation API tests (one that may write, one that may only
read) and a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.evaluations.support import NOW, clock


@pytest.fixture
def key(make_key) -> str:
    return make_key("read,write")[1]


@pytest.fixture
def reader(make_key) -> str:
    return make_key("read")[1]


@pytest.fixture
def frozen() -> Iterator[datetime]:
    """The whole test runs at ``NOW``: results that must share a trend bucket share it whenever the
    test runs, even across a UTC midnight."""
    with clock(NOW):
        yield NOW
