"""Reading an evaluation's results out in bulk (``manage.py export_results``).

Results are read oldest first (``created_at``, then id: the order they were stored in, so an export
taken later extends an earlier one) through the ``(evaluation, created_at, id)`` index, in chunks
with ``.iterator()``: memory stays flat however many results a suite has. JSONL lines are the API's
result objects (``result_json``); CSV rows carry the same values in ``CSV_COLUMNS``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from django.db.models import QuerySet

from evaluations.api.representations import RESULT_FIELDS, result_json
from evaluations.models import Evaluation, EvaluationResult

CHUNK = 2000
CSV_COLUMNS = (
    "id",
    "created_at",
    "version_tag",
    "score",
    "passed",
    "label",
    "run_id",
    "trace_id",
    "eval_run_id",
    "metadata",
)


def result_rows(
    evaluation: Evaluation, *, since: datetime | None = None, version: str | None = None
) -> QuerySet[EvaluationResult, dict[str, Any]]:
    """The suite's results as value dicts, oldest first; ``version`` "" selects unversioned ones."""
    rows = EvaluationResult.objects.filter(evaluation=evaluation)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if version is not None:
        rows = rows.filter(version_tag=version)
    return rows.order_by("created_at", "id").values("id", *RESULT_FIELDS)


def iter_rows(rows: QuerySet[EvaluationResult, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return rows.iterator(chunk_size=CHUNK)


def jsonl_line(row: dict[str, Any]) -> str:
    """One result as the API renders it, on one line (no trailing newline)."""
    return json.dumps(result_json(SimpleNamespace(pk=row["id"], **row)), ensure_ascii=False)


def csv_cells(row: dict[str, Any]) -> list[str]:
    """``CSV_COLUMNS`` of one result: ``created_at`` in ISO 8601 UTC, ``passed`` true/false,
    ``metadata`` as JSON; an absent value (null, or an empty tag, label or id) is an empty cell."""
    passed = row["passed"]
    return [
        str(row["id"]),
        row["created_at"].astimezone(UTC).isoformat(),
        row["version_tag"],
        "" if row["score"] is None else repr(row["score"]),
        "" if passed is None else ("true" if passed else "false"),
        row["label"],
        row["run_id"],
        row["trace_id"],
        "" if row["eval_run_id"] is None else str(row["eval_run_id"]),
        "" if row["metadata"] is None else json.dumps(row["metadata"], ensure_ascii=False),
    ]
