"""Hourly sums of evaluation results per (suite, prompt version), kept current at ingest.

Trends and version comparisons read these rows (at most 24 per day and version) instead of
aggregating up to millions of results per request. Each batch of results becomes one
``INSERT ... ON CONFLICT DO UPDATE`` per statement chunk whose SET adds the new sums to the stored
row, evaluated by the database against the locked row, so concurrent batches add up exactly
(PostgreSQL waits for the row lock; SQLite has one writer at a time). Results are never edited.
They leave with their suite, which takes its rollups along (cascade), or with their evaluation run
when a deleted dataset takes its runs along; ``recount`` then recomputes the hours they were
counted in, so trends and metrics do not go on counting results that are gone.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, F, Max, Min, Q, Sum

from evaluations.models import EvaluationResult, ResultRollup
from telemetry.rollups import floor_hour

RollupKey = tuple[str, int, datetime, str]  # workspace_id, evaluation_id, hour, version_tag


@dataclass
class _Sums:
    result_count: int = 0
    score_count: int = 0
    score_sum: float = 0.0
    score_sq_sum: float = 0.0
    score_min: float | None = None
    score_max: float | None = None
    passed_count: int = 0
    judged_count: int = 0

    def add(self, score: float | None, passed: bool | None) -> None:
        self.result_count += 1
        if score is not None:
            self.score_count += 1
            self.score_sum += score
            self.score_sq_sum += score * score
            self.score_min = score if self.score_min is None else min(self.score_min, score)
            self.score_max = score if self.score_max is None else max(self.score_max, score)
        if passed is not None:
            self.judged_count += 1
            self.passed_count += bool(passed)


_COLUMNS = (
    "workspace_id",
    "evaluation_id",
    "hour",
    "version_tag",
    "result_count",
    "score_count",
    "score_sum",
    "score_sq_sum",
    "score_min",
    "score_max",
    "passed_count",
    "judged_count",
)
_ADDED = ("result_count", "score_count", "score_sum", "score_sq_sum", "passed_count", "judged_count")
# Two-argument MIN/MAX that skip NULLs: SQLite's scalar min()/max() return NULL if any argument is.
_LEAST_GREATEST = {"sqlite": ("min", "max"), "postgresql": ("LEAST", "GREATEST")}


def rollup_results(results: Sequence[Any]) -> None:
    """Add freshly inserted results (objects with ``workspace_id``, ``evaluation_id``,
    ``created_at``, ``version_tag``, ``score``, ``passed``) to their rollups; call it inside the
    transaction that inserted them."""
    groups: dict[RollupKey, _Sums] = {}
    for r in results:
        key = (r.workspace_id, r.evaluation_id, floor_hour(r.created_at), r.version_tag)
        groups.setdefault(key, _Sums()).add(r.score, r.passed)
    rows = sorted(groups.items())  # a fixed lock order: two batches cannot deadlock
    head, row_sql, tail = _upsert_sql(connection.vendor)
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            params: list[Any] = []
            for (workspace_id, evaluation_id, hour, version_tag), s in chunk:
                params += [workspace_id, evaluation_id, adapt(hour), version_tag]
                params += [s.result_count, s.score_count, s.score_sum, s.score_sq_sum, s.score_min]
                params += [s.score_max, s.passed_count, s.judged_count]
            cursor.execute(head + ", ".join([row_sql] * len(chunk)) + tail, params)


def recount(deleted: Iterable[tuple[int, datetime, str]]) -> None:
    """Recompute from the results still stored the rollups that counted deleted results, given as
    ``(evaluation_id, created_at, version_tag)``; call it inside the transaction that deleted them.
    Each rollup row is locked before its results are summed (in a fixed order, as above): a batch
    committed meanwhile is then visible to the sums, and one still to come adds on top of them."""
    keys = sorted({(evaluation_id, floor_hour(at), version) for evaluation_id, at, version in deleted})
    for evaluation_id, hour, version_tag in keys:
        row = {"evaluation_id": evaluation_id, "hour": hour, "version_tag": version_tag}
        if not ResultRollup.objects.select_for_update().filter(**row).exists():
            continue
        sums = EvaluationResult.objects.filter(
            evaluation_id=evaluation_id,
            version_tag=version_tag,
            created_at__gte=hour,
            created_at__lt=hour + timedelta(hours=1),
        ).aggregate(
            result_count=Count("id"),
            score_count=Count("score"),
            score_sum=Sum("score", default=0.0),
            score_sq_sum=Sum(F("score") * F("score"), default=0.0),
            score_min=Min("score"),
            score_max=Max("score"),
            passed_count=Count("id", filter=Q(passed=True)),
            judged_count=Count("passed"),
        )
        if sums["result_count"]:
            ResultRollup.objects.filter(**row).update(**sums)
        else:
            ResultRollup.objects.filter(**row).delete()


@functools.cache
def _upsert_sql(vendor: str) -> tuple[str, str, str]:
    qn = connection.ops.quote_name
    table = qn(ResultRollup._meta.db_table)
    least, greatest = _LEAST_GREATEST[vendor]
    sets = [f"{qn(c)} = {table}.{qn(c)} + excluded.{qn(c)}" for c in _ADDED]
    for column, function in (("score_min", least), ("score_max", greatest)):
        stored, new = f"{table}.{qn(column)}", f"excluded.{qn(column)}"
        sets.append(f"{qn(column)} = {function}(COALESCE({stored}, {new}), COALESCE({new}, {stored}))")
    conflict = ", ".join(qn(c) for c in ("evaluation_id", "hour", "version_tag"))
    head = f"INSERT INTO {table} ({', '.join(qn(c) for c in _COLUMNS)}) VALUES "
    row_sql = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    return head, row_sql, f" ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(sets)}"
