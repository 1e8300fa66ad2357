"""Helpers of the evaluation API tests: requests that must succeed, 422 messages, and a clock.

The services stamp results with ``django.utils.timezone.now()``, and the hourly rollups behind
trends and metrics are written at ingest, so results are placed in the past by patching that
clock around the requests that add them (moving ``created_at`` afterwards would leave the rollups
where the results were first counted).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

EVALUATIONS = "/v1/evaluations"
DATASETS = "/v1/datasets"
# A fixed "now" for tests that read trends and metrics.
NOW = datetime(2025, 3, 10, 12, 30, 15, tzinfo=UTC)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.content)
    return response.json()


def fields(response: Any) -> list[str]:
    """The field messages of a 422."""
    assert response.status_code == 422, (response.status_code, response.content)
    body = response.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert body["detailsType"] == "fields"
    return body["details"]["fields"]


def assert_404(response: Any, message: str) -> None:
    assert response.status_code == 404, (response.status_code, response.content)
    assert response.json()["code"] == "NOT_FOUND"
    assert response.json()["error"] == message


def create_suite(api: Any, key: str, name: str = "accuracy-check", **body: Any) -> dict[str, Any]:
    workspace = body.pop("workspace", None)
    payload = {"name": name, "prompt_name": "qa", **body}
    return ok(api.post(EVALUATIONS, key=key, workspace=workspace, json=payload), 201)


def add_results(api: Any, key: str, ref: Any, body: Any, workspace: str | None = None) -> Any:
    """POST one result or a batch; the 201 body."""
    return ok(api.post(f"{EVALUATIONS}/{ref}/results", key=key, workspace=workspace, json=body), 201)


def create_dataset(
    api: Any, key: str, rows: list[dict[str, Any]], name: str = "capitals", **body: Any
) -> dict:
    workspace = body.pop("workspace", None)
    return ok(
        api.post(DATASETS, key=key, workspace=workspace, json={"name": name, "rows": rows, **body}), 201
    )


@contextlib.contextmanager
def clock(moment: datetime) -> Iterator[None]:
    """``timezone.now()`` is ``moment`` inside the block (model field defaults keep the real clock)."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield
