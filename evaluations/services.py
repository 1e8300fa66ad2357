"""Writes of evaluations: suites, results (posted, or scored here by the suite's rules), datasets
and evaluation runs. Each public function is one transaction (a run: one to start, one to end)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from config import bulk
from config.api import ApiError, not_found, validation_failed
from config.errors import Conflict
from evaluations import rollups, rules
from evaluations.models import (
    Dataset,
    DatasetRow,
    EvalRun,
    EvalRunStatus,
    Evaluation,
    EvaluationResult,
    PassRule,
    ScoreType,
)
from telemetry import validation as v
from tenancy.context import Actor
from tenancy.services import audit_record

SCORE_MAX = 1e12
PASS_LABELS_MAX = 100
DATASET_ROWS_MAX = 10_000
DATASET_BYTES_MAX = 10 * 1024 * 1024
RUN_OUTPUTS_MAX = DATASET_ROWS_MAX
# Regex matching time per request (besides 0.1 s per output): a pattern that backtracks
# catastrophically on every output would otherwise hold a worker 0.1 s x 1,000 outputs (score)
# or x 10,000 rows (run). Past it, regex checks fail with "pattern timed out".
SCORE_REGEX_SECONDS = 2.0
RUN_REGEX_SECONDS = 5.0
ROW_CHUNK = 1000


# --- suites ---------------------------------------------------------------------------------------


def evaluation_create(*, workspace_id: str, body: Any, actor: Actor) -> Evaluation:
    if not isinstance(body, dict):
        raise validation_failed(['"value" must be of type object'])
    errors = v.Errors()
    evaluation = Evaluation(
        workspace_id=workspace_id,
        name=v.text(body, "name", errors, max_length=128, required=True),
        description=v.text(body, "description", errors, max_length=1024),
        prompt_name=v.text(body, "prompt_name", errors, max_length=128, required=True),
        version_tag=v.text(body, "version_tag", errors, max_length=64),
        criteria=v.obj(body, "criteria", errors),
        score_type=v.choice(body, "score_type", errors, tuple(ScoreType.values), ScoreType.NUMERIC),
        threshold=_score(body, "threshold", errors),
        pass_rule=v.choice(body, "pass_rule", errors, tuple(PassRule.values), PassRule.GTE),
        pass_labels=_labels(body, errors),
    )
    if errors:
        raise validation_failed(errors)
    try:
        with transaction.atomic():
            evaluation.save(force_insert=True)
            audit_record(
                actor=actor,
                workspace_id=workspace_id,
                action="evaluation:create",
                target_id=str(evaluation.pk),
                prompt_name=evaluation.prompt_name,
                version_tag=evaluation.version_tag,
            )
    except IntegrityError as exc:
        raise Conflict("Evaluation already exists", {"name": evaluation.name}) from exc
    return evaluation


def evaluation_delete(*, evaluation: Evaluation, actor: Actor) -> None:
    """Delete a suite with its results, rollups and runs (upstream deleted results first, by hand)."""
    with transaction.atomic():
        target = str(evaluation.pk)
        evaluation.delete()
        audit_record(
            actor=actor, workspace_id=evaluation.workspace_id, action="evaluation:delete", target_id=target
        )


def _score(body: dict[str, Any], field: str, errors: v.Errors) -> float | None:
    """Any finite number (scores may be negative, e.g. a -1..1 sentiment); None when absent."""
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not v.finite(value):
        errors.append(f'"{field}" must be a number')
        return None
    if abs(value) > SCORE_MAX:
        errors.append(f'"{field}" must be between {-SCORE_MAX:.0f} and {SCORE_MAX:.0f}')
        return None
    return float(value)


def _labels(body: dict[str, Any], errors: v.Errors) -> list[str]:
    value = body.get("pass_labels")
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(item, str) and 0 < len(item) <= 128 for item in value
    ):
        errors.append('"pass_labels" must be an array of strings of 1 to 128 characters')
        return []
    if len(value) > PASS_LABELS_MAX:
        errors.append(f'"pass_labels" must contain less than or equal to {PASS_LABELS_MAX} items')
    return value


def judge(evaluation: Evaluation, score: float | None, label: str = "") -> bool | None:
    """Whether a result passes the suite's rule, or None when the suite cannot tell."""
    if evaluation.score_type == ScoreType.CATEGORICAL:
        return (label in evaluation.pass_labels) if evaluation.pass_labels and label else None
    if evaluation.score_type == ScoreType.BOOLEAN:
        return None if score is None else score == 1
    if evaluation.threshold is None or score is None:
        return None
    threshold = evaluation.threshold
    return {
        PassRule.GTE: score >= threshold,
        PassRule.GT: score > threshold,
        PassRule.LTE: score <= threshold,
        PassRule.LT: score < threshold,
    }[PassRule(evaluation.pass_rule)]


# --- results --------------------------------------------------------------------------------------


def results_add(*, evaluation: Evaluation, body: Any, actor: Actor) -> tuple[list[SimpleNamespace], bool]:
    """Store one result or a batch (a JSON array of up to 1,000); all or nothing."""
    errors = v.Errors()
    items, batch = v.items_of(body, errors)
    if errors:
        raise validation_failed(errors)
    now = timezone.now()
    results, messages = [], []
    for index, item in enumerate(items):
        result, item_errors = _result_from_body(evaluation, item, now)
        results.append(result)
        messages += v.prefixed(index if batch else None, item_errors)
    if messages:
        raise validation_failed(messages)
    _insert_results(evaluation, results, actor, action="evaluation:result")
    return results, batch


def _result_row(evaluation: Evaluation, now: datetime, **values: Any) -> SimpleNamespace:
    """Every EvaluationResult field by attname (a namespace: bulk inserts need no model instance)."""
    row = SimpleNamespace(
        workspace_id=evaluation.workspace_id,
        evaluation_id=evaluation.pk,
        score=None,
        passed=None,
        label="",
        version_tag=evaluation.version_tag,
        run_id="",
        trace_id="",
        eval_run_id=None,
        metadata=None,
        created_at=now,
    )
    row.__dict__.update(values)
    return row


def _result_from_body(
    evaluation: Evaluation, item: dict[str, Any], now: datetime
) -> tuple[SimpleNamespace, list[str]]:
    errors = v.Errors()
    score = _score(item, "score", errors)
    passed = item.get("passed")
    if passed is not None and not isinstance(passed, bool):
        errors.append('"passed" must be a boolean')
        passed = None
    # A categorical result is its label: absent, null and empty are all refused.
    categorical = evaluation.score_type == ScoreType.CATEGORICAL
    label = v.text(item, "label", errors, max_length=128, required=categorical)
    if evaluation.score_type == ScoreType.BOOLEAN:
        if score is None and passed is not None:
            score = 1.0 if passed else 0.0
        elif score is not None and score not in (0, 1):
            errors.append('"score" must be 0 or 1 for a boolean evaluation')
    row = _result_row(
        evaluation,
        now,
        score=score,
        label=label,
        run_id=v.text(item, "run_id", errors, max_length=128),
        trace_id=v.optional_id(item, "trace_id", errors),
        version_tag=v.text(item, "version_tag", errors, max_length=64) or evaluation.version_tag,
        metadata=v.obj(item, "metadata", errors, max_keys=v.METADATA_MAX_KEYS),
    )
    row.passed = passed if passed is not None else judge(evaluation, score, label)
    return row, errors


def _insert_results(
    evaluation: Evaluation, results: list[SimpleNamespace], actor: Actor, action: str
) -> None:
    insert = bulk.prepare_insert(EvaluationResult, results)  # before the write lock is taken
    with transaction.atomic():
        _store_results(insert, results)
        audit_record(
            actor=actor, workspace_id=evaluation.workspace_id, action=action, target_id=str(evaluation.pk)
        )


def _store_results(insert: bulk.PreparedInsert, results: list[SimpleNamespace]) -> None:
    """Insert prepared results and add them to their rollups; inside the caller's transaction."""
    for result, pk in zip(results, insert.execute_returning_ids(), strict=True):
        result.pk = pk
    rollups.rollup_results(results)


# --- server-side scoring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    result: SimpleNamespace
    outcome: rules.Outcome


def compiled_rules(evaluation: Evaluation) -> rules.RuleSet:
    """The suite's rules, or a 422 naming what is wrong with them."""
    try:
        return rules.compile_rules(evaluation.criteria)
    except rules.RuleError as exc:
        raise ApiError(
            422, "VALIDATION_FAILED", "The evaluation's criteria cannot be scored", {"fields": [str(exc)]}
        ) from exc


def outputs_score(*, evaluation: Evaluation, body: Any, actor: Actor) -> list[Scored]:
    """Apply the suite's rules to the outputs in ``body`` and store one result per output.

    Body: ``{"outputs": [{"output": …, "expected": …, "run_id", "trace_id", "version_tag",
    "metadata"}, …], "version_tag": …}`` (up to 1,000), or one such item on its own. A result
    passes by the suite's threshold when it has one, else when every rule passes.
    """
    if not isinstance(body, dict):
        raise validation_failed(['"value" must be of type object'])
    ruleset = compiled_rules(evaluation)
    errors = v.Errors()
    default_version = v.text(body, "version_tag", errors, max_length=64) or evaluation.version_tag
    items, batch = v.items_of(body["outputs"] if "outputs" in body else body, errors)
    if errors:
        raise validation_failed([message.replace('"value"', '"outputs"', 1) for message in errors])
    now = timezone.now()
    scored, messages = [], []
    regex_time = rules.RegexBudget(SCORE_REGEX_SECONDS)
    for index, item in enumerate(items):
        item_errors = v.Errors()
        if "output" not in item:
            item_errors.required("output")
        meta = v.obj(item, "metadata", item_errors, max_keys=v.METADATA_MAX_KEYS)
        row = _result_row(
            evaluation,
            now,
            run_id=v.text(item, "run_id", item_errors, max_length=128),
            trace_id=v.optional_id(item, "trace_id", item_errors),
            version_tag=v.text(item, "version_tag", item_errors, max_length=64) or default_version,
        )
        messages += v.prefixed(index if batch else None, item_errors)
        if not item_errors:
            outcome = ruleset.score(item.get("output"), item.get("expected"), regex_time)
            _apply_outcome(evaluation, row, outcome, meta)
            scored.append(Scored(row, outcome))
    if messages:
        raise validation_failed(messages)
    _insert_results(evaluation, [s.result for s in scored], actor, action="evaluation:score")
    return scored


def _apply_outcome(
    evaluation: Evaluation, row: SimpleNamespace, outcome: rules.Outcome, metadata: dict[str, Any] | None
) -> None:
    row.score = outcome.score
    by_threshold = judge(evaluation, outcome.score) if evaluation.threshold is not None else None
    row.passed = outcome.passed if by_threshold is None else by_threshold
    row.metadata = {**(metadata or {}), "checks": outcome.as_json()["checks"]}


# --- datasets -------------------------------------------------------------------------------------


def dataset_row(index: int, item: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """A row's fields, or the messages saying why it cannot be one."""
    where = f"rows[{index}]"
    if not isinstance(item, dict):
        return None, [f'"{where}" must be of type object']
    if not isinstance(item.get("input"), dict):
        message = "is required" if item.get("input") is None else "must be of type object"
        return None, [f'"{where}.input" {message}']
    expected = item.get("expectedOutput", item.get("expected_output"))
    return {"input": item["input"], "expected_output": expected, "output": item.get("output")}, []


def dataset_create(*, workspace_id: str, body: Any, actor: Actor) -> Dataset:
    """Upstream's ``POST /v1/datasets``: a name and up to 10,000 rows (10 MiB), in one transaction."""
    if not isinstance(body, dict):
        raise validation_failed(['"value" must be of type object'])
    errors = v.Errors()
    name = v.text(body, "name", errors, max_length=128, required=True)
    description = v.text(body, "description", errors, max_length=1024)
    raw_rows = body.get("rows")
    if raw_rows is None:
        errors.required("rows")
    elif not isinstance(raw_rows, list):
        errors.append('"rows" must be an array')
    if errors:
        raise validation_failed(errors)
    if len(raw_rows) > DATASET_ROWS_MAX:
        raise ApiError(400, "BAD_REQUEST", f"A dataset holds at most {DATASET_ROWS_MAX} rows")
    if len(json.dumps(raw_rows)) > DATASET_BYTES_MAX:
        raise ApiError(400, "BAD_REQUEST", "Dataset rows exceed 10 MiB")
    rows, messages = [], []
    for index, item in enumerate(raw_rows):
        row, row_errors = dataset_row(index, item)
        messages += row_errors
        if row is not None:
            rows.append(row)
    if messages:
        raise validation_failed(messages[:50])
    return dataset_import(
        workspace_id=workspace_id, name=name, description=description, rows=rows, actor=actor
    )


def dataset_import(
    *,
    workspace_id: str,
    name: str,
    rows: Iterable[dict[str, Any]],
    actor: Actor,
    description: str = "",
    progress: Callable[[int], None] | None = None,
) -> Dataset:
    """Store a dataset from validated rows (``input``, ``expected_output``, ``output``), inserted
    in chunks inside one transaction: a failure leaves no half dataset."""
    with transaction.atomic():
        dataset = Dataset.objects.create(workspace_id=workspace_id, name=name, description=description)
        count, chunk = 0, []
        for row in rows:
            chunk.append(SimpleNamespace(dataset_id=dataset.pk, position=count, **row))
            count += 1
            if len(chunk) == ROW_CHUNK:
                bulk.insert(DatasetRow, chunk)
                chunk = []
                if progress is not None:
                    progress(count)
        bulk.insert(DatasetRow, chunk)
        if progress is not None:
            progress(count)
        dataset.row_count = count
        dataset.save(update_fields=["row_count"])
        audit_record(
            actor=actor, workspace_id=workspace_id, action="create_dataset", target_id=str(dataset.pk)
        )
    return dataset


def dataset_delete(*, dataset: Dataset, actor: Actor) -> None:
    """Hard delete: its rows and the evaluation runs over it go too (upstream's cascade), and so
    do the runs' results, whose hours are then recounted in their suites' rollups."""
    with transaction.atomic():
        target = str(dataset.pk)
        # One row per run: a run's results share their time and version.
        deleted = list(
            EvaluationResult.objects.filter(eval_run__dataset=dataset)
            .values_list("evaluation_id", "created_at", "version_tag")
            .order_by()
            .distinct()
        )
        dataset.delete()
        rollups.recount(deleted)
        audit_record(
            actor=actor, workspace_id=dataset.workspace_id, action="delete_dataset", target_id=target
        )


# --- evaluation runs ------------------------------------------------------------------------------


class RunFailed(Exception):
    """Why a run cannot complete; it ends ``failed`` with this as its reason."""


def eval_run_create(*, evaluation: Evaluation, body: Any, actor: Actor) -> EvalRun:
    """Start a run and execute it: the suite's rules over a dataset's rows (with the outputs sent
    in ``outputs``, aligned with the rows, or stored in the rows) or over ``outputs`` alone. The
    run always ends, ``completed`` with its score and per-row results or ``failed`` with a reason."""
    if not isinstance(body, dict):
        raise validation_failed(['"value" must be of type object'])
    errors = v.Errors()
    dataset_id = body.get("dataset_id")
    if dataset_id is not None and (isinstance(dataset_id, bool) or not isinstance(dataset_id, int)):
        errors.append('"dataset_id" must be a number')
    outputs = body.get("outputs")
    if outputs is not None and not isinstance(outputs, list):
        errors.append('"outputs" must be an array')
    elif outputs is not None and len(outputs) > RUN_OUTPUTS_MAX:
        errors.append(f'"outputs" must contain less than or equal to {RUN_OUTPUTS_MAX} items')
    version_tag = v.text(body, "version_tag", errors, max_length=64) or evaluation.version_tag
    if errors:
        raise validation_failed(errors)
    dataset = None
    if dataset_id is not None:
        dataset = Dataset.objects.filter(workspace_id=evaluation.workspace_id, pk=dataset_id).first()
        if dataset is None:
            raise not_found("Dataset")
    with transaction.atomic():
        run = EvalRun.objects.create(
            workspace_id=evaluation.workspace_id,
            evaluation=evaluation,
            dataset=dataset,
            version_tag=version_tag,
        )
        audit_record(
            actor=actor, workspace_id=evaluation.workspace_id, action="evaluation:run", target_id=str(run.pk)
        )
    try:
        ruleset = _run_rules(evaluation)
        pairs = _run_pairs(dataset, outputs)
    except RunFailed as exc:
        return _run_fail(run, str(exc))
    return _run_complete(evaluation, run, ruleset, pairs)


def _run_rules(evaluation: Evaluation) -> rules.RuleSet:
    try:
        return rules.compile_rules(evaluation.criteria)
    except rules.RuleError as exc:
        raise RunFailed(f"invalid criteria: {exc}") from exc


def _run_pairs(dataset: Dataset | None, outputs: list[Any] | None) -> list[tuple[int | None, Any, Any]]:
    """(row position, output, expected output) for every output to score."""
    if dataset is None:
        if not outputs:
            raise RunFailed("nothing to score: send a dataset_id with outputs, or an outputs array")
        return [(None, output, None) for output in outputs]
    rows = list(dataset.rows.order_by("position").values_list("position", "expected_output", "output"))
    if not rows:
        raise RunFailed("the dataset has no rows")
    if outputs is not None:
        if len(outputs) != len(rows):
            raise RunFailed(f"outputs has {len(outputs)} items but the dataset has {len(rows)} rows")
        return [
            (position, output, expected)
            for (position, expected, _), output in zip(rows, outputs, strict=True)
        ]
    missing = [position for position, _, output in rows if output is None]
    if missing:
        raise RunFailed(
            f"row {missing[0]} has no output ({len(missing)} rows without one): send an outputs array "
            "aligned with the dataset rows, or store outputs in the rows"
        )
    return [(position, output, expected) for position, expected, output in rows]


def _run_fail(run: EvalRun, reason: str) -> EvalRun:
    run.status, run.reason, run.finished_at = EvalRunStatus.FAILED, reason[:1024], timezone.now()
    run.save(update_fields=["status", "reason", "finished_at"])
    return run


def _run_complete(
    evaluation: Evaluation, run: EvalRun, ruleset: rules.RuleSet, pairs: list[tuple[int | None, Any, Any]]
) -> EvalRun:
    now = timezone.now()
    results, per_row = [], []
    regex_time = rules.RegexBudget(RUN_REGEX_SECONDS)
    for position, output, expected in pairs:
        row = _result_row(evaluation, now, version_tag=run.version_tag, eval_run_id=run.pk)
        outcome = ruleset.score(output, expected, regex_time)
        _apply_outcome(evaluation, row, outcome, {"dataset_row": position} if position is not None else None)
        results.append(row)
        per_row.append(
            {"row": position, "score": row.score, "passed": row.passed, "checks": row.metadata["checks"]}
        )
    insert = bulk.prepare_insert(EvaluationResult, results)
    with transaction.atomic():
        _store_results(insert, results)
        run.status = EvalRunStatus.COMPLETED
        run.score = sum(r.score for r in results) / len(results)
        run.passed_count = sum(1 for r in results if r.passed)
        run.row_count = len(results)
        run.results = per_row
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "score", "passed_count", "row_count", "results", "finished_at"])
    return run
