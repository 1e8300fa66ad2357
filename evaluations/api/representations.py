"""Wire forms of evaluations (upstream §2.7, §2.8, §2.13), as plain functions: result pages and
1,000-result batches are rendered per row, where a serializer costs several times more."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from evaluations import rules
from evaluations.models import Dataset, DatasetRow, EvalRun, Evaluation


def _seconds(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def evaluation_json(evaluation: Evaluation) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": evaluation.pk,
        "name": evaluation.name,
        "description": evaluation.description or None,
        "prompt_name": evaluation.prompt_name,
        "version_tag": evaluation.version_tag or None,
        "criteria": evaluation.criteria,
        "score_type": evaluation.score_type,
        "threshold": evaluation.threshold,
        "pass_rule": evaluation.pass_rule,
        "pass_labels": evaluation.pass_labels,
        "workspace_id": evaluation.workspace_id,
        "created_at": _seconds(evaluation.created_at),
    }
    # Criteria are stored as given (upstream's contract); rules that cannot be scored are reported,
    # as upstream reported corrupt criteria, rather than refused.
    warnings = rules.validate_criteria(evaluation.criteria)
    if warnings:
        body["warnings"] = warnings
    return body


def result_json(result: Any) -> dict[str, Any]:
    return {
        "id": result.pk,
        "evaluation_id": result.evaluation_id,
        "run_id": result.run_id or None,
        "score": result.score,
        "passed": result.passed,
        "label": result.label or None,
        "version_tag": result.version_tag or None,
        "trace_id": result.trace_id or None,
        "eval_run_id": result.eval_run_id,
        "metadata": result.metadata,
        "created_at": _seconds(result.created_at),
    }


RESULT_FIELDS = (
    "evaluation_id",
    "run_id",
    "score",
    "passed",
    "label",
    "version_tag",
    "trace_id",
    "eval_run_id",
    "metadata",
    "created_at",
)


def eval_run_json(run: EvalRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "evaluation_id": run.evaluation_id,
        "dataset_id": run.dataset_id,
        "version_tag": run.version_tag or None,
        "status": run.status,
        "score": run.score,
        "passed_count": run.passed_count,
        "row_count": run.row_count,
        # Upstream returned the per-row results as a JSON string; clients parse it, so it stays one.
        # Keys sorted: PostgreSQL's jsonb does not keep their order, and the text should not
        # depend on the database.
        "results_json": json.dumps(run.results, sort_keys=True) if run.results is not None else None,
        "reason": run.reason or None,
        "workspace_id": run.workspace_id,
        "created_at": _seconds(run.created_at),
        "finished_at": _seconds(run.finished_at),
    }


def dataset_json(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.pk,
        "name": dataset.name,
        "description": dataset.description or None,
        "row_count": dataset.row_count,
        "schema": None,
        "workspace_id": dataset.workspace_id,
        "created_at": _seconds(dataset.created_at),
    }


def dataset_row_json(row: DatasetRow) -> dict[str, Any]:
    body: dict[str, Any] = {"id": row.pk, "position": row.position, "input": row.input}
    if row.expected_output is not None:
        body["expectedOutput"] = row.expected_output
    if row.output is not None:
        body["output"] = row.output
    return body
