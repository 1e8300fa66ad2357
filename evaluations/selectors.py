"""Reads of evaluations: suites by id or name, score trends and version comparisons.

Trends and comparisons are computed from ``ResultRollup`` (hourly sums per suite and prompt
version), so their cost depends on the window, not on the number of results.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from config.api import not_found, validation_failed
from evaluations import stats
from evaluations.models import Evaluation, ResultRollup
from telemetry.rollups import floor_hour, utc_date

WINDOWS = {"7d": 7, "30d": 30, "90d": 90}
BUCKETS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}
COMPARE_MAX_VERSIONS = 10
_SUMS = ("result_count", "score_count", "score_sum", "score_sq_sum", "passed_count", "judged_count")


def evaluation_by_ref(queryset: QuerySet[Evaluation], ref: str) -> Evaluation:
    """A suite by id or by name (the seed's SDK addresses suites by name). An all-digit reference
    is tried as an id first, then as a name. All-digit means ASCII digits: str.isdigit() also
    takes "²" (which int() refuses) and "１" or "١" (which int() reads as 1)."""
    evaluation = None
    if ref.isascii() and ref.isdigit() and len(ref) <= 18:
        evaluation = queryset.filter(pk=int(ref)).first()
    if evaluation is None:
        evaluation = queryset.filter(name=ref).first()
    if evaluation is None:
        raise not_found("Evaluation")
    return evaluation


def _window(raw: str | None, errors: list[str]) -> int:
    name = raw or "30d"
    if name not in WINDOWS:
        errors.append('"window" must be one of [7d, 30d, 90d]')
        return 30
    return WINDOWS[name]


def trend(
    *, evaluation: Evaluation, window: str | None, bucket: str | None, version: str | None = None
) -> dict[str, Any]:
    """Per bucket (UTC day or hour) of the window: average, minimum, maximum score, the number of
    results and the pass rate; every bucket present, empty ones with ``count`` 0 and nulls."""
    errors: list[str] = []
    days = _window(window, errors)
    bucket_name = bucket or "day"
    if bucket_name not in BUCKETS:
        errors.append('"bucket" must be one of [day, hour]')
    if errors:
        raise validation_failed(errors)
    step = BUCKETS[bucket_name]
    end = timezone.now()
    start = end - timedelta(days=days)
    first = _bucket_start(start, bucket_name)
    rows = ResultRollup.objects.filter(evaluation=evaluation, hour__gte=first, hour__lte=end)
    if version is not None:
        rows = rows.filter(version_tag=version)
    sums = {_bucket_key(row["bucket"]): row for row in _raw_rows(_per_bucket(rows, bucket_name))}
    points = []
    at = first
    while at <= end:
        # isoformat is C-fast; 2,160 hourly points went through strftime before.
        key = at.isoformat()[: 10 if bucket_name == "day" else 13]
        points.append(_point(key if bucket_name == "day" else f"{key}:00:00Z", sums.get(key)))
        at += step
    return {
        "evaluation_id": evaluation.pk,
        "name": evaluation.name,
        "window": f"{days}d",
        "bucket": bucket_name,
        "version": version,
        "start": int(start.timestamp()),
        "end": int(end.timestamp()),
        "threshold": evaluation.threshold,
        "points": points,
    }


def _per_bucket(rows: QuerySet[ResultRollup], bucket: str, *group: str) -> QuerySet[Any]:
    """The rollups summed per UTC day or hour (and ``group`` columns) in the database: at most a
    few thousand rows come back, whatever the number of versions and results."""
    key = utc_date("hour") if bucket == "day" else F("hour")
    return (
        rows.order_by()
        .annotate(bucket=key)
        .values("bucket", *group)
        .annotate(**{name: Sum(name) for name in _SUMS}, min=Min("score_min"), max=Max("score_max"))
    )


def _bucket_start(value: date | datetime, bucket: str) -> datetime:
    if not isinstance(value, datetime):  # a day, from the database
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    hour = floor_hour(value)
    return hour.replace(hour=0) if bucket == "day" else hour


def _raw_rows(queryset: QuerySet[Any]) -> list[dict[str, Any]]:
    """A ``values()`` queryset's rows as the driver returns them: Django's per-value converters
    cost 30 ms on 2,160 hourly rows of 10 columns (sums may come back as Decimal on PostgreSQL,
    days and hours as text on SQLite; ``_bucket_key`` and ``_point`` take either)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _bucket_key(value: str | date | datetime) -> str:
    """``YYYY-MM-DD`` for a day, ``YYYY-MM-DDTHH`` (UTC) for an hour."""
    if isinstance(value, str):  # SQLite: "2026-11-27" or "2026-11-27 14:00:00"
        return value if len(value) == 10 else f"{value[:10]}T{value[11:13]}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()[:13]
    return value.isoformat()


def _point(label: str, entry: dict[str, Any] | None) -> dict[str, Any]:
    if not entry or not entry["result_count"]:
        return {"bucket": label, "count": 0, "avg": None, "min": None, "max": None, "pass_rate": None}
    scored, judged = int(entry["score_count"]), int(entry["judged_count"])
    return {
        "bucket": label,
        "count": int(entry["result_count"]),
        "avg": float(entry["score_sum"]) / scored if scored else None,
        "min": entry["min"],
        "max": entry["max"],
        "pass_rate": int(entry["passed_count"]) / judged if judged else None,
    }


def compare(*, evaluation: Evaluation, versions: str | None) -> dict[str, Any]:
    """Per prompt version: n, mean, stddev, pass rate; then each later version against the first:
    the difference of means (Welch t-test) and of pass rates (two-proportion z-test), each with a
    95 % confidence interval and a two-sided p-value."""
    tags = _versions(versions)
    rows = (
        ResultRollup.objects.filter(evaluation=evaluation, version_tag__in=tags)
        .values("version_tag")
        .annotate(**{name: Sum(name) for name in _SUMS}, low=Min("score_min"), high=Max("score_max"))
    )
    by_version = {row["version_tag"]: row for row in rows}
    summaries = {tag: _summary(by_version.get(tag)) for tag in tags}
    baseline = tags[0]
    comparisons = [
        {
            "baseline": baseline,
            "candidate": tag,
            "mean": asdict(stats.welch(summaries[baseline], summaries[tag], baseline, tag)),
            "pass_rate": asdict(stats.two_proportions(summaries[baseline], summaries[tag], baseline, tag)),
        }
        for tag in tags[1:]
    ]
    return {
        "evaluation_id": evaluation.pk,
        "name": evaluation.name,
        "versions": [_version_json(tag, summaries[tag], by_version.get(tag)) for tag in tags],
        "comparisons": comparisons,
    }


def _versions(raw: str | None) -> list[str]:
    tags = list(dict.fromkeys(t.strip() for t in (raw or "").split(",") if t.strip()))
    if len(tags) < 2:
        raise validation_failed(['"versions" must name at least 2 different versions, comma-separated'])
    if len(tags) > COMPARE_MAX_VERSIONS:
        raise validation_failed([f'"versions" must name at most {COMPARE_MAX_VERSIONS} versions'])
    return tags


def _summary(row: dict[str, Any] | None) -> stats.Summary:
    if row is None:
        return stats.summarize([], [])
    return stats.summary_from_moments(
        row["score_count"], row["score_sum"], row["score_sq_sum"], row["passed_count"], row["judged_count"]
    )


def _version_json(tag: str, summary: stats.Summary, row: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "version_tag": tag,
        "results": row["result_count"] if row else 0,
        "n": summary.n,
        "mean": summary.mean,
        "stddev": summary.stddev,
        "min": row["low"] if row else None,
        "max": row["high"] if row else None,
        "pass_rate": summary.pass_rate,
        "passed": summary.passed,
        "judged": summary.judged,
    }


def daily_trends(
    *, workspace_id: str, since: datetime, until: datetime, evaluation_id: int | None = None
) -> list[dict[str, Any]]:
    """``/v1/metrics/evaluations``: per suite with results in [since, until], per UTC day: average,
    minimum and maximum score and the number of results (upstream's shape)."""
    rows = ResultRollup.objects.filter(workspace_id=workspace_id, hour__gte=since, hour__lte=until)
    if evaluation_id is not None:
        rows = rows.filter(evaluation_id=evaluation_id)
    days: dict[int, dict[datetime, dict[str, Any]]] = defaultdict(dict)
    for row in _per_bucket(rows, "day", "evaluation_id"):
        days[row["evaluation_id"]][_bucket_start(row["bucket"], "day")] = row
    suites = Evaluation.objects.filter(pk__in=days).values("id", "name", "prompt_name")
    return [
        {
            "evaluation_id": suite["id"],
            "name": suite["name"],
            "prompt_name": suite["prompt_name"],
            "trend": [
                {
                    "date": day.date().isoformat(),
                    "avg_score": d["score_sum"] / d["score_count"] if d["score_count"] else None,
                    "result_count": d["result_count"],
                    "min_score": d["min"],
                    "max_score": d["max"],
                }
                for day, d in sorted(days[suite["id"]].items())
                if d["result_count"]
            ],
        }
        for suite in sorted(suites, key=lambda s: s["id"])
    ]


def result_count(*, workspace_id: str, since: datetime, until: datetime) -> int:
    total = ResultRollup.objects.filter(
        workspace_id=workspace_id, hour__gte=since, hour__lte=until
    ).aggregate(n=Sum("result_count"))["n"]
    return int(total or 0)


# --- the dashboard's summaries ---------------------------------------------------------------------


def _ratio(part: Any, whole: Any) -> float | None:
    return float(part) / float(whole) if whole else None


def with_last_hour(queryset: QuerySet[Evaluation]) -> QuerySet[Evaluation]:
    """Annotate ``last_hour``: each suite's latest hour with results, a backward seek on the
    rollups' (suite, hour) index."""
    last = (
        ResultRollup.objects.filter(evaluation=OuterRef("pk"), result_count__gt=0)
        .order_by("-hour")
        .values("hour")[:1]
    )
    return queryset.annotate(last_hour=Subquery(last))


def most_recently_scored(queryset: QuerySet[Evaluation]) -> Evaluation | None:
    """The suite whose latest result is the newest, or None when no suite has results."""
    return with_last_hour(queryset).filter(last_hour__isnull=False).order_by("-last_hour", "id").first()


def latest_day_scores(evaluations: list[Evaluation]) -> dict[int, dict[str, Any]]:
    """Per suite (annotated by ``with_last_hour``): the UTC day of its latest results, that day's
    average score, result count and pass rate; one query for the whole list."""
    days = {e.pk: floor_hour(e.last_hour).replace(hour=0) for e in evaluations if e.last_hour is not None}
    if not days:
        return {}
    condition = Q()
    for evaluation_id, day in days.items():
        condition |= Q(evaluation_id=evaluation_id, hour__gte=day, hour__lt=day + timedelta(days=1))
    sums = (
        ResultRollup.objects.filter(condition)
        .order_by()
        .values("evaluation_id")
        .annotate(**{name: Sum(name) for name in _SUMS})
    )
    return {
        row["evaluation_id"]: {
            "day": days[row["evaluation_id"]].date(),
            "results": int(row["result_count"] or 0),
            "score": _ratio(row["score_sum"], row["score_count"]),
            "pass_rate": _ratio(row["passed_count"], row["judged_count"]),
        }
        for row in sums
    }


def window_totals(*, evaluation: Evaluation, since: datetime) -> dict[str, Any]:
    """Results, average score and pass/fail counts from ``since`` (a UTC day start, as the trend
    counts its days) until now."""
    sums = ResultRollup.objects.filter(
        evaluation=evaluation, hour__gte=since, hour__lte=timezone.now()
    ).aggregate(**{name: Sum(name) for name in _SUMS})
    results, passed = int(sums["result_count"] or 0), int(sums["passed_count"] or 0)
    judged = int(sums["judged_count"] or 0)
    return {
        "results": results,
        "average": _ratio(sums["score_sum"], sums["score_count"]),
        "passed": passed,
        "failed": judged - passed,
        "unjudged": results - judged,
        "pass_rate": _ratio(passed, judged),
    }


def versions_by_first_result(*, evaluation: Evaluation) -> list[str]:
    """The suite's prompt versions with results, oldest first (by their first result's hour)."""
    rows = (
        ResultRollup.objects.filter(evaluation=evaluation)
        .exclude(version_tag="")
        .order_by()
        .values("version_tag")
        .annotate(first=Min("hour"))
        .order_by("first", "version_tag")
    )
    return [row["version_tag"] for row in rows]
