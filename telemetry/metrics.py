"""Reads behind ``/v1/metrics/*`` (upstream §2.12): time series, per prompt version, evaluation
trends and activity, for one workspace over a rolling window of 7, 30 or 90 days.

Log figures come from the hourly rollups (``telemetry.rollups``), never from a scan of the logs;
runs and traces are counted with range scans of their ``(workspace, created_at)`` indexes. Each
endpoint runs a fixed number of queries (time series: 3, or 2 when every day's merged latency
histogram is cached, see ``_daily_histograms``).

Window edges. Upstream's window is rolling: ``start = now - days`` to ``end = now`` (reported as
such). Rollups are hourly, so log figures cover whole UTC hours: from the start of the hour that
contains ``start`` through the current hour, i.e. up to 59 minutes more than the nominal window at
the old edge. Runs, traces and evaluation results use the same bounds, so every figure of a
response describes the same period. Days are UTC dates; every day from ``start``'s to today's is
present (zero-filled, unlike upstream, which omitted days without logs).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.utils import timezone

from config.api import ApiError
from evaluations import selectors as evaluations_selectors
from telemetry.api.representations import run_json
from telemetry.models import LogRollup, Run, RunStatus, Trace
from telemetry.rollups import SafeSum, floor_hour, histogram_quantile, utc_date

WINDOWS = {"7d": 7, "30d": 30, "90d": 90}
DEFAULT_WINDOW = "30d"
INVALID_WINDOW = "Invalid window parameter. Must be one of: 7d, 30d, 90d"
COST_DIGITS = 10  # round sums of float costs: 0.1 + 0.2 is reported as 0.3


@dataclass(frozen=True)
class Window:
    name: str
    start: datetime  # nominal: now - days
    end: datetime  # now

    @property
    def first_hour(self) -> datetime:
        """Where the figures really start: the start of the UTC hour containing ``start``."""
        return floor_hour(self.start)

    @property
    def days(self) -> list[date]:
        first, last = self.start.astimezone(UTC).date(), self.end.astimezone(UTC).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def head(self) -> dict[str, Any]:
        return {"window": self.name, "start": int(self.start.timestamp()), "end": int(self.end.timestamp())}


def window_from(raw: str | None, *, now: datetime | None = None) -> Window:
    """``7d|30d|90d`` (absent or empty: 30d); anything else is upstream's 400."""
    name = raw or DEFAULT_WINDOW
    if name not in WINDOWS:
        raise ApiError(400, "BAD_REQUEST", INVALID_WINDOW)
    end = now or timezone.now()
    return Window(name=name, start=end - timedelta(days=WINDOWS[name]), end=end)


def _rollups(workspace_id: str, window: Window) -> QuerySet[LogRollup]:
    # Range scan of the (workspace, hour, prompt, version) unique index.
    return LogRollup.objects.filter(
        workspace_id=workspace_id, hour__gte=window.first_hour, hour__lte=window.end
    ).order_by()


def _runs(workspace_id: str, window: Window) -> QuerySet[Run]:
    return Run.objects.filter(
        workspace_id=workspace_id, created_at__gte=window.first_hour, created_at__lte=window.end
    )


def _traces(workspace_id: str, window: Window) -> QuerySet[Trace]:
    return Trace.objects.filter(
        workspace_id=workspace_id, created_at__gte=window.first_hour, created_at__lte=window.end
    )


def _int(value: float | None) -> int:
    """Sums come back as floats from SQLite's overflow-proof TOTAL (see ``SafeSum``)."""
    return int(value or 0)


def _ratio(part: float | None, whole: float | None) -> float:
    return part / whole if whole else 0.0


def _avg(total: float | None, count: float | None) -> float | None:
    return round(total / count, 2) if count else None


def _cost(value: float | None) -> float:
    return round(value or 0.0, COST_DIGITS)


def _p50_p95(histogram: dict[int, int]) -> tuple[float | None, float | None]:
    p50, p95 = histogram_quantile(histogram, 0.5), histogram_quantile(histogram, 0.95)
    return (round(p50, 2) if p50 is not None else None, round(p95, 2) if p95 is not None else None)


# --- time series ----------------------------------------------------------------------------------


def time_series(*, workspace_id: str, window: Window) -> dict[str, Any]:
    """Per UTC day: requests, tokens, cost, latency (avg, p50, p95 from the rollups' histograms),
    run error rate and log error rate. Days without logs are zeros; their latencies are null
    (there is no latency to report, as upstream's AVG of no rows)."""
    sums, histograms = _daily_log_sums(workspace_id, window)
    runs = {
        row["day"]: row
        for row in _runs(workspace_id, window)
        .annotate(day=utc_date("created_at"))
        .values("day")
        .annotate(total=Count("id"), failed=Count("id", filter=Q(status=RunStatus.FAILED)))
        .order_by()
    }
    daily = []
    for d in window.days:
        s, r = sums.get(d, {}), runs.get(d, {})
        p50, p95 = _p50_p95(histograms.get(d, {}))
        daily.append(
            {
                "date": d.isoformat(),
                "request_count": _int(s.get("requests")),
                "total_tokens": _int(s.get("tokens_in")) + _int(s.get("tokens_out")),
                "total_cost_usd": _cost(s.get("cost")),
                "avg_latency_ms": _avg(s.get("latency_sum"), s.get("latency_count")),
                "p50_latency_ms": p50,
                "p95_latency_ms": p95,
                "error_rate": _ratio(r.get("failed"), r.get("total")),
                "log_error_rate": _ratio(s.get("errors"), s.get("requests")),
            }
        )
    return {**window.head(), "daily": daily}


def _daily_log_sums(
    workspace_id: str, window: Window
) -> tuple[dict[date, dict[str, Any]], dict[date, dict[int, int]]]:
    """The rollups' sums per UTC day of the window, and each day's merged latency histogram."""
    sums = {
        row["day"]: row
        for row in _rollups(workspace_id, window)
        .annotate(day=utc_date("hour"))
        .values("day")
        .annotate(
            requests=SafeSum("request_count"),
            errors=SafeSum("error_count"),
            tokens_in=SafeSum("tokens_in"),
            tokens_out=SafeSum("tokens_out"),
            cost=Sum("cost_usd"),
            latency_count=SafeSum("latency_count"),
            latency_sum=SafeSum("latency_sum_ms"),
            rows=Count("id"),
            last_id=Max("id"),
        )
    }
    fingerprints = {
        day: (row["rows"], row["last_id"], _int(row["latency_count"]), _int(row["latency_sum"]))
        for day, row in sums.items()
        if row["latency_count"]
    }
    return sums, _daily_histograms(workspace_id, window, fingerprints)


def overview(*, workspace_id: str, window: Window, top: int = 10) -> dict[str, Any]:
    """The dashboard's figures for a window: totals, p50/p95 latency over the whole window (the
    days' cached histograms merged), cost and percentiles per day, and the ``top`` prompts by
    tokens, and the window's runs and traces. Five queries when the past days' histograms are
    cached (the time series' runs per day and per-version run errors are not needed here, and were
    most of its cost at 1M logs)."""
    sums, histograms = _daily_log_sums(workspace_id, window)
    totals: dict[str, float] = defaultdict(float)
    for row in sums.values():
        for name in ("requests", "errors", "tokens_in", "tokens_out", "cost"):
            totals[name] += row[name] or 0
    merged: dict[int, int] = defaultdict(int)
    for histogram in histograms.values():
        for bucket, count in histogram.items():
            merged[bucket] += count
    p50, p95 = _p50_p95(merged)
    daily = []
    for d in window.days:
        day_p50, day_p95 = _p50_p95(histograms.get(d, {}))
        cost = sums[d]["cost"] if d in sums else None
        daily.append(
            {
                "date": d.isoformat(),
                "total_cost_usd": _cost(cost),
                "p50_latency_ms": day_p50,
                "p95_latency_ms": day_p95,
            }
        )
    return {
        "requests": _int(totals["requests"]),
        "tokens_in": _int(totals["tokens_in"]),
        "tokens_out": _int(totals["tokens_out"]),
        "cost_usd": _cost(totals["cost"]),
        "error_rate": _ratio(totals["errors"], totals["requests"]),
        "p50_latency_ms": p50,
        "p95_latency_ms": p95,
        "active_prompts": _active_prompts(workspace_id),
        "runs": _runs(workspace_id, window).count(),
        "traces": _traces(workspace_id, window).count(),
        "daily": daily,
        "top_prompts": list(
            _rollups(workspace_id, window)
            .values("prompt_name")
            .annotate(tokens_in=SafeSum("tokens_in"), tokens_out=SafeSum("tokens_out"))
            .annotate(tokens=F("tokens_in") + F("tokens_out"))
            .filter(tokens__gt=0)
            .order_by("-tokens", "prompt_name")[:top]
        ),
    }


# Each rollup row's histogram with its UTC day, merged in Python: the database's JSON table
# functions (json_each / jsonb_each_text with a GROUP BY per bucket) took 1.2 s over 90 days at 1M
# logs on SQLite, reading the texts and summing them here 0.25 s. ``{days}`` is an OR of [start, end)
# hour ranges: only the days not found in the cache.
_DAILY_HISTOGRAM_SQL = {
    "sqlite": (
        "SELECT date(r.hour), r.latency_histogram FROM {table} r "
        "WHERE r.workspace_id = %s AND r.hour >= %s AND r.hour <= %s AND ({days})"
    ),
    "postgresql": (
        "SELECT (r.hour AT TIME ZONE 'UTC')::date, r.latency_histogram::text FROM {table} r "
        "WHERE r.workspace_id = %s AND r.hour >= %s AND r.hour <= %s AND ({days})"
    ),
}
HISTOGRAM_CACHE_SECONDS = 24 * 3600
# The entries are each day's merged latency histogram ({bucket: count}, a few dozen buckets).
HISTOGRAM_CACHE_PREFIX = "metrics-hist"


def _daily_histograms(
    workspace_id: str, window: Window, fingerprints: dict[date, tuple[int, ...]]
) -> dict[date, dict[int, int]]:
    """Each day's merged latency histogram, from which the day's (and the window's) p50 and p95
    are read.

    Merging is the costly part of a time series (a GROUP BY over every bucket of every hourly row:
    ~0.5 s for 30 days of 20 busy prompt versions), and a past day's rollups rarely change. So a
    day's histogram is cached under a fingerprint of its rows read by the sums query (row count,
    highest id, latency count and sum): any upsert that adds a latency, any rebuild (new ids) or
    deletion changes it, so a stale entry is never read and nothing needs invalidating, on any
    process or node. In steady state only today (and the window's partial first day, hourly) is
    merged.
    """
    keys = {
        day: ":".join([HISTOGRAM_CACHE_PREFIX, workspace_id, day.isoformat(), *map(str, fingerprint)])
        for day, fingerprint in fingerprints.items()
    }
    cached = cache.get_many(list(keys.values()))
    result = {day: cached[key] for day, key in keys.items() if key in cached}
    missing = sorted(day for day in keys if day not in result)
    if missing:
        merged = _merge_histograms(workspace_id, window, missing)
        fresh = {day: dict(merged.get(day, {})) for day in missing}
        cache.set_many({keys[day]: fresh[day] for day in missing}, HISTOGRAM_CACHE_SECONDS)
        result.update(fresh)
    return result


def _merge_histograms(workspace_id: str, window: Window, days: list[date]) -> dict[date, dict[int, int]]:
    ranges: list[list[date]] = []  # consecutive days as [first, last]
    for day in days:
        if ranges and (day - ranges[-1][1]).days == 1:
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = [workspace_id, adapt(window.first_hour), adapt(window.end)]
    for first, last in ranges:
        params += [
            adapt(datetime.combine(first, time.min, UTC)),
            adapt(datetime.combine(last + timedelta(days=1), time.min, UTC)),
        ]
    sql = _DAILY_HISTOGRAM_SQL[connection.vendor].format(
        table=connection.ops.quote_name(LogRollup._meta.db_table),
        days=" OR ".join(["(r.hour >= %s AND r.hour < %s)"] * len(ranges)),
    )
    merged: dict[Any, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for day, histogram in cursor.fetchall():
            counts = merged[day]
            for bucket, count in json.loads(histogram).items():
                counts[bucket] += count
    # Plain dicts keyed by date and int bucket: they go into the cache (a lambda cannot be pickled).
    return {
        date.fromisoformat(day) if isinstance(day, str) else day: {int(b): int(n) for b, n in counts.items()}
        for day, counts in merged.items()
    }


# --- per prompt version ---------------------------------------------------------------------------


def prompt_metrics(*, workspace_id: str, window: Window, limit: int) -> dict[str, Any]:
    """Per (prompt, version), most expensive first: requests, tokens, cost, average latency, and
    upstream's error rate: failed ÷ all runs (in the window) whose trace carries that version."""
    rows = list(
        _rollups(workspace_id, window)
        .values("prompt_name", "version_tag")
        .annotate(
            request_count=SafeSum("request_count"),
            tokens_in=SafeSum("tokens_in"),
            tokens_out=SafeSum("tokens_out"),
            cost=Sum("cost_usd"),
            latency_count=SafeSum("latency_count"),
            latency_sum=SafeSum("latency_sum_ms"),
        )
        .order_by("-cost", "-request_count", "prompt_name", "version_tag")[:limit]
    )
    names = {row["prompt_name"] for row in rows if row["prompt_name"]}
    runs: dict[tuple[str, str], dict[str, int]] = {}
    if names:
        runs = {
            (row["trace__prompt_name"], row["trace__version_tag"]): row
            for row in _runs(workspace_id, window)
            .filter(trace__prompt_name__in=names)
            .values("trace__prompt_name", "trace__version_tag")
            .annotate(total=Count("id"), failed=Count("id", filter=Q(status=RunStatus.FAILED)))
            .order_by()
        }
    prompts = []
    for row in rows:
        run = runs.get((row["prompt_name"], row["version_tag"]), {}) if row["prompt_name"] else {}
        prompts.append(
            {
                "prompt_name": row["prompt_name"],
                "version_tag": row["version_tag"],
                "request_count": _int(row["request_count"]),
                "total_tokens_in": _int(row["tokens_in"]),
                "total_tokens_out": _int(row["tokens_out"]),
                "total_cost_usd": _cost(row["cost"]),
                "avg_latency_ms": _avg(row["latency_sum"], row["latency_count"]),
                "error_rate": _ratio(run.get("failed"), run.get("total")),
            }
        )
    return {"window": window.name, "prompts": prompts}


# --- evaluations ----------------------------------------------------------------------------------


def evaluation_trends(
    *, workspace_id: str, window: Window, evaluation_id: int | None = None
) -> dict[str, Any]:
    """Per evaluation with results in the window, per UTC day: average, minimum, maximum score and
    the number of results, from the evaluations' hourly rollups."""
    trends = evaluations_selectors.daily_trends(
        workspace_id=workspace_id, since=window.first_hour, until=window.end, evaluation_id=evaluation_id
    )
    return {"window": window.name, "evaluations": trends}


# --- activity -------------------------------------------------------------------------------------


_LOG_COUNTS_MAX = 4096
_log_counts: dict[str, tuple[Any, int]] = {}


def log_count(*, workspace_id: str) -> int:
    """Every log of the workspace, from the rollups: tens of thousands of rows at 1M logs, not a
    million. On SQLite the sum is kept per process under the database's change token (exact: any
    write anywhere invalidates it), so an unchanged table is not summed again for every page."""
    change_token = getattr(connection, "change_token", None)
    token = change_token() if change_token is not None else None
    cached = _log_counts.get(workspace_id)
    if token is not None and cached is not None and cached[0] == token:
        return cached[1]
    count = _int(
        LogRollup.objects.filter(workspace_id=workspace_id).aggregate(n=SafeSum("request_count"))["n"]
    )
    if token is not None:
        if len(_log_counts) >= _LOG_COUNTS_MAX:
            _log_counts.clear()
        _log_counts[workspace_id] = (token, count)
    return count


def _active_prompts(workspace_id: str) -> int:
    """Prompts with at least one active version (not windowed, as upstream)."""
    from registry.models import Prompt
    from registry.selectors import prompts_with_versions

    return prompts_with_versions(Prompt.objects.filter(workspace_id=workspace_id)).count()


def activity(*, workspace_id: str, window: Window, page: int, limit: int) -> dict[str, Any]:
    """Counts of the window (each one bounded, indexed query; logs from the rollups) and a page of
    the window's runs, newest first."""
    runs = _runs(workspace_id, window)
    run_counts = runs.aggregate(total=Count("id"), failed=Count("id", filter=Q(status=RunStatus.FAILED)))
    total_runs = run_counts["total"]
    summary = {
        "total_runs": total_runs,
        "total_traces": _traces(workspace_id, window).count(),
        "total_logs": _int(_rollups(workspace_id, window).aggregate(n=SafeSum("request_count"))["n"]),
        "total_evaluations": evaluations_selectors.result_count(
            workspace_id=workspace_id, since=window.first_hour, until=window.end
        ),
        "active_prompts": _active_prompts(workspace_id),
        "failed_runs": run_counts["failed"],
    }
    offset = (page - 1) * limit
    # Past the end: no query, so an absurd page cannot overflow the SQL OFFSET.
    items: Iterable[Run] = []
    if offset < total_runs:
        items = runs.select_related("trace").order_by("-created_at", "-id")[offset : offset + limit]
    return {
        "window": window.name,
        "summary": summary,
        "recent_runs": {
            "items": [run_json(run) for run in items],
            "total": total_runs,
            "page": page,
            "limit": limit,
            "totalPages": math.ceil(total_runs / limit) if total_runs else 0,
        },
    }
