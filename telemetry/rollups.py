"""Hourly log rollups: kept current at ingest, rebuilt from the logs after re-pricing or pruning.

One ``LogRollup`` row per (workspace, UTC hour, prompt name, version tag) holds the sums the metrics
need, so ``/v1/metrics/*`` read a few hundred rows instead of scanning millions of logs.

Latency percentiles come from a sparse log-scale histogram stored as JSON (``{"<bucket>": count}``):
bucket 0 holds latencies below 1 ms, bucket ``i >= 1`` holds ``[GROWTH**(i-1), GROWTH**i)`` ms with
``GROWTH = 1.05``. Every bucket is 5 % wide, so a percentile read from the histogram is within
about 2.5 % of the exact one, at any scale (no upper bound: 10 minutes is bucket 273, a day bucket
375). Only buckets that occur are stored; a busy hour holds a few dozen keys.

Concurrency. Ingest calls ``rollup_logs`` inside its transaction, from many worker processes at
once. Each batch becomes ONE ``INSERT ... ON CONFLICT DO UPDATE`` whose SET adds the new sums to the
row (``n = n + excluded.n``) and merges the histograms in SQL (``json_each``/``jsonb_each_text``,
summed per key). The database evaluates that against the conflicting row after locking it, so the
increments are exact without a read-modify-write in Python: on PostgreSQL a concurrent upsert of the
same row waits for the row lock and then sees the committed version; on SQLite transactions are
IMMEDIATE (one writer at a time). The JSON merge was chosen over ~280 fixed bucket columns (no model
change, sparse storage); the time series merges a day's histograms with the same JSON table
functions, in the database. Rows are upserted in sorted key order so two batches touching the same
rows lock them in the same order and cannot deadlock. On PostgreSQL a row stays locked until the
ingest transaction commits, so concurrent requests for the same prompt version and hour queue for
that short tail; other rows are not blocked.
"""

from __future__ import annotations

import bisect
import functools
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, DateField, DateTimeField, F, Func, Max, Min, Q, Sum, Value
from django.db.models.expressions import Combinable
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from telemetry.models import LogRecord, LogRollup, LogStatus
from tenancy.models import Workspace

GROWTH = 1.05
# BOUNDS[i] is the upper bound of bucket i (and the lower bound of bucket i + 1): 1.05**i ms. Up to
# past 2**64 ms, so every PositiveBigIntegerField latency has a bucket.
BOUNDS: tuple[float, ...] = tuple(GROWTH**i for i in range(int(64 * math.log(2) / math.log(GROWTH)) + 2))

MAX_BIGINT = 2**63 - 1
HOUR = timedelta(hours=1)
REBUILD_CHUNK = timedelta(days=1)

RollupKey = tuple[str, datetime, str, str]  # workspace_id, hour, prompt_name, version_tag


# --- UTC hours and days in SQL ---------------------------------------------------------------------
# Django's Trunc* call a Python function per row on SQLite; over tens of thousands of rows that is
# most of a metrics request. SQLite stores datetimes as UTC text, so its own date functions do.


def utc_hour(column: str) -> Combinable:
    if connection.vendor == "sqlite":
        return Func(Value("%Y-%m-%d %H:00:00"), F(column), function="strftime", output_field=DateTimeField())
    return TruncHour(column, tzinfo=UTC)


def utc_date(column: str) -> Combinable:
    if connection.vendor == "sqlite":
        return Func(F(column), function="date", output_field=DateField())
    return TruncDate(column, tzinfo=UTC)


class SafeSum(Sum):
    """A SUM that cannot overflow. SQLite's SUM raises "integer overflow" past 2**63; its TOTAL
    does not (a float: exact below 2**53, callers take ``int()``). PostgreSQL's SUM of bigint is
    a numeric already."""

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return super().as_sql(compiler, connection, function="TOTAL", **extra_context)


def _clamp(value: int) -> int:
    return min(int(value), MAX_BIGINT)


# --- the histogram --------------------------------------------------------------------------------


def latency_bucket(latency_ms: float) -> int:
    """The histogram bucket of a latency: 0 below 1 ms, else ``i`` with 1.05**(i-1) <= ms < 1.05**i."""
    if latency_ms < 1:
        return 0
    return min(bisect.bisect_right(BOUNDS, latency_ms), len(BOUNDS) - 1)


def bucket_value(index: int) -> float:
    """The value that stands for every latency of a bucket.

    Latencies are whole milliseconds, so this is the middle of the integers the bucket can hold
    (exact below ~20 ms, where a bucket holds one integer), else its geometric middle.
    """
    if index <= 0:
        return 0.0
    low, high = BOUNDS[index - 1], BOUNDS[min(index, len(BOUNDS) - 1)]
    first, last = math.ceil(low), math.ceil(high) - 1
    if first <= last:
        return (first + last) / 2
    return math.sqrt(low * high)


def histogram_quantile(histogram: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0..1) of the latencies counted in ``histogram``, or None if it is empty.

    Same definition as PostgreSQL's ``percentile_cont`` and ``statistics.quantiles(method=
    "inclusive")``: interpolate between the order statistics around rank ``q * (n - 1)``, each taken
    as its bucket's value. Error: at most half a bucket, about 2.5 %.
    """
    items = sorted((int(k), int(v)) for k, v in histogram.items() if int(v) > 0)
    total = sum(count for _, count in items)
    if total == 0:
        return None
    rank = q * (total - 1)
    below, fraction = int(rank), rank - int(rank)
    lower = _order_statistic(items, below)
    if fraction == 0:
        return lower
    upper = _order_statistic(items, below + 1)
    return lower + (upper - lower) * fraction


def _order_statistic(items: Sequence[tuple[int, int]], rank: int) -> float:
    seen = 0
    for index, count in items:
        seen += count
        if rank < seen:
            return bucket_value(index)
    return bucket_value(items[-1][0])


# --- ingest ---------------------------------------------------------------------------------------


@dataclass
class _Sums:
    request_count: int = 0
    error_count: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_count: int = 0
    latency_sum_ms: int = 0
    histogram: Counter[int] = field(default_factory=Counter)


def floor_hour(value: datetime) -> datetime:
    """The start of the UTC hour containing ``value`` (aware, UTC)."""
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def rollup_logs(records: Sequence[Any]) -> None:
    """Add freshly inserted logs to their hourly rollups. Call it inside the ingest transaction,
    right after the logs' INSERT, so logs and rollups commit (or roll back) together."""
    groups = _group(records)
    if groups:
        _upsert(sorted(groups.items()))


def unroll_logs(records: Sequence[Any]) -> None:
    """Take logs out of the rollups they were counted in (before they move to another prompt
    version), in the transaction that changes them. A plain UPDATE: the upsert cannot carry
    negative sums (the VALUES row fails the columns' non-negative CHECK before ON CONFLICT)."""
    vendor = connection.vendor
    qn = connection.ops.quote_name
    floor0 = "GREATEST({}, 0)" if vendor == "postgresql" else "max({}, 0)"
    histogram = qn("latency_histogram")
    json_param = "CAST(%s AS jsonb)" if vendor == "postgresql" else "%s"
    merge = _MERGE_SQL[vendor].format(table=qn(LogRollup._meta.db_table), col=histogram)
    merge = merge.replace(f"excluded.{histogram}", json_param)
    sets = [f"{qn(c)} = {floor0.format(f'{qn(c)} - %s')}" for c in (*_COUNTERS, "cost_usd")]
    sql = (
        f"UPDATE {qn(LogRollup._meta.db_table)} SET {', '.join(sets)}, {histogram} = {merge} "
        f"WHERE {qn('workspace_id')} = %s AND {qn('hour')} = %s AND {qn('prompt_name')} = %s "
        f"AND {qn('version_tag')} = %s"
    )
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        for (workspace_id, hour, prompt_name, version_tag), s in sorted(_group(records).items()):
            counters = [getattr(s, c) for c in _COUNTERS]
            negative = json.dumps({str(k): -v for k, v in sorted(s.histogram.items())})
            params = [*counters, s.cost_usd, negative, workspace_id, adapt(hour), prompt_name, version_tag]
            cursor.execute(sql, params)


def _group(records: Sequence[Any]) -> dict[RollupKey, _Sums]:
    groups: dict[RollupKey, _Sums] = {}
    for record in records:
        key = (
            record.workspace_id,
            floor_hour(record.created_at),
            record.prompt_name or "",
            record.version_tag or "",
        )
        sums = groups.get(key)
        if sums is None:
            sums = groups[key] = _Sums()
        sums.request_count += 1
        sums.error_count += record.status == LogStatus.ERROR
        sums.tokens_in += record.tokens_in or 0
        sums.tokens_out += record.tokens_out or 0
        sums.cost_usd += record.cost_usd or 0.0
        if record.latency_ms is not None:
            sums.latency_count += 1
            sums.latency_sum_ms += record.latency_ms
            sums.histogram[latency_bucket(record.latency_ms)] += 1
    return groups


_COLUMNS = (
    "workspace_id",
    "hour",
    "prompt_name",
    "version_tag",
    "request_count",
    "error_count",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "latency_count",
    "latency_sum_ms",
    "latency_histogram",
)
_JSON_SET_PAIRS = 60
_COUNTERS = ("request_count", "error_count", "tokens_in", "tokens_out", "latency_count", "latency_sum_ms")

# Sum the stored and the incoming histogram per bucket, in SQL, inside the upsert.
_MERGE_SQL = {
    "sqlite": (
        "(SELECT COALESCE(json_group_object(b, n), '{{}}') FROM (SELECT b, SUM(v) AS n FROM ("
        "SELECT key AS b, value AS v FROM json_each({table}.{col}) "
        "UNION ALL SELECT key, value FROM json_each(excluded.{col})) GROUP BY b HAVING SUM(v) != 0))"
    ),
    "postgresql": (
        "(SELECT COALESCE(jsonb_object_agg(b, n), '{{}}'::jsonb) FROM (SELECT b, SUM(v) AS n FROM ("
        "SELECT key AS b, value::bigint AS v FROM jsonb_each_text({table}.{col}) "
        "UNION ALL SELECT key, value::bigint FROM jsonb_each_text(excluded.{col})) AS u GROUP BY b "
        "HAVING SUM(v) <> 0) AS s)"
    ),
}


def _upsert(rows: Sequence[tuple[RollupKey, _Sums]]) -> None:
    vendor = connection.vendor
    if vendor not in _MERGE_SQL:
        raise NotImplementedError(f"rollups support SQLite and PostgreSQL, not {vendor}")
    head, row_sql, tail, table, histogram = _upsert_sql(vendor)
    if vendor == "sqlite":
        # One statement per row, each adding its own buckets with json_set: a third of the cost
        # of the generic merge (two json_each scans, a UNION and a GROUP BY), inside the only
        # write lock, once per ingest request.
        for key, s in rows:
            sql = head + row_sql + tail + _sqlite_bucket_adds(table, histogram, s.histogram)
            params = _upsert_params(key, s) + [n for _, n in sorted(s.histogram.items())]
            connection.execute_direct(sql, params)
        return
    merge = _MERGE_SQL[vendor].format(table=table, col=histogram)
    max_params = connection.features.max_query_params or 10_000
    per_statement = max(1, min(500, max_params // len(_COLUMNS)))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params = [value for key, s in chunk for value in _upsert_params(key, s)]
            cursor.execute(head + ", ".join([row_sql] * len(chunk)) + tail + merge, params)


@functools.cache
def _upsert_sql(vendor: str) -> tuple[str, str, str, str, str]:
    """The upsert's pieces, built once per process: ``INSERT ... VALUES``, one row's placeholders,
    ``ON CONFLICT ... SET ..., <histogram> =`` (the histogram's merge follows), the table and the
    histogram column, quoted."""
    qn = connection.ops.quote_name
    table = qn(LogRollup._meta.db_table)
    json_param = "CAST(%s AS jsonb)" if vendor == "postgresql" else "%s"
    row_sql = "(" + ", ".join(["%s"] * (len(_COLUMNS) - 1) + [json_param]) + ")"
    # Counters saturate at the bigint maximum rather than fail the ingest (tokens of 2**62 are valid
    # input; PostgreSQL would refuse the overflow, SQLite turn the column into a float).
    updates = [
        f"{qn(c)} = CASE WHEN {table}.{qn(c)} > {MAX_BIGINT} - excluded.{qn(c)} THEN {MAX_BIGINT} "
        f"ELSE {table}.{qn(c)} + excluded.{qn(c)} END"
        for c in _COUNTERS
    ]
    updates.append(f"{qn('cost_usd')} = {table}.{qn('cost_usd')} + excluded.{qn('cost_usd')}")
    histogram = qn("latency_histogram")
    head = f"INSERT INTO {table} ({', '.join(qn(c) for c in _COLUMNS)}) VALUES "
    conflict = ", ".join(qn(c) for c in ("workspace_id", "hour", "prompt_name", "version_tag"))
    tail = f" ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(updates)}, {histogram} = "
    return head, row_sql, tail, table, histogram


def _upsert_params(key: RollupKey, s: _Sums) -> list[object]:
    workspace_id, hour, prompt_name, version_tag = key
    return [
        workspace_id,
        connection.ops.adapt_datetimefield_value(hour),
        prompt_name,
        version_tag,
        _clamp(s.request_count),
        _clamp(s.error_count),
        _clamp(s.tokens_in),
        _clamp(s.tokens_out),
        s.cost_usd,
        _clamp(s.latency_count),
        _clamp(s.latency_sum_ms),
        json.dumps({str(k): v for k, v in sorted(s.histogram.items())}),
    ]


def _sqlite_bucket_adds(table: str, column: str, histogram: Counter[int]) -> str:
    """``json_set`` adding each bucket's count (a parameter, in bucket order) to the stored one.
    Bucket numbers are ints we computed, so they are written into the JSON paths directly. SQLite
    caps a function at 127 arguments: past 60 buckets the calls nest (the paths are distinct, so
    every ``json_extract`` may read the stored column)."""
    merged = f"{table}.{column}"
    buckets = sorted(histogram)
    for start in range(0, len(buckets), _JSON_SET_PAIRS):
        paths = [f"'$.\"{int(k)}\"'" for k in buckets[start : start + _JSON_SET_PAIRS]]
        adds = ", ".join(f"{p}, COALESCE(json_extract({table}.{column}, {p}), 0) + %s" for p in paths)
        merged = f"json_set({merged}, {adds})"
    return merged


# --- rebuild --------------------------------------------------------------------------------------


def rebuild_rollups(
    *,
    workspace_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Recompute the rollups of the hours from ``since`` to ``until`` (whole UTC hours; default:
    from the first log or rollup to now) from the logs; all workspaces unless one is named.
    Returns the number of rollup rows written.

    Used after re-pricing (``since``) and by pruning (``until`` the cutoff: hours with no logs
    left lose their rollups). Works one workspace-day per transaction, so ingest waits at most for
    one day's recomputation. Safe beside ingest: within a chunk no ingest can add to the rollups
    between our read of the logs and our write (SQLite: the IMMEDIATE transaction is the only
    writer; PostgreSQL: the rollup table is locked against concurrent upserts, which then wait and
    add their logs on top of the rebuilt rows).
    """
    if workspace_id is not None:
        workspaces: Iterable[str] = [workspace_id]
    else:
        workspaces = Workspace.objects.order_by("id").values_list("id", flat=True)
    written = 0
    for ws in list(workspaces):
        span = _rebuild_span(ws, since, until)
        if span is None:
            continue
        low, high = span
        while low < high:
            chunk_end = min(low + REBUILD_CHUNK, high)
            written += _rebuild_chunk(ws, low, chunk_end)
            low = chunk_end
    return written


def _rebuild_span(
    ws: str, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime] | None:
    """[first hour, end hour) to rebuild for one workspace, or None when there is nothing."""
    logs = LogRecord.objects.filter(workspace_id=ws)
    rollups = LogRollup.objects.filter(workspace_id=ws)
    if since is None or until is None:
        log_range = logs.aggregate(first=Min("created_at"), last=Max("created_at"))
        rollup_range = rollups.aggregate(first=Min("hour"), last=Max("hour"))
    if since is not None:
        low = floor_hour(since)
    else:
        starts = [d for d in (log_range["first"], rollup_range["first"]) if d is not None]
        if not starts:
            return None
        low = floor_hour(min(starts))
    if until is not None:
        high = floor_hour(until) + HOUR
    else:
        ends = [d for d in (log_range["last"], rollup_range["last"], timezone.now()) if d is not None]
        high = floor_hour(max(ends)) + HOUR
    return (low, high) if low < high else None


def _rebuild_chunk(ws: str, low: datetime, high: datetime) -> int:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Blocks concurrent upserts (ROW EXCLUSIVE) until this chunk commits, and waits for
            # those in flight: their logs are then committed and visible to the reads below.
            with connection.cursor() as cursor:
                table = connection.ops.quote_name(LogRollup._meta.db_table)
                cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        LogRollup.objects.filter(workspace_id=ws, hour__gte=low, hour__lt=high).delete()
        logs = (
            LogRecord.objects.filter(workspace_id=ws, created_at__gte=low, created_at__lt=high)
            .annotate(h=utc_hour("created_at"))
            .order_by()
        )
        groups: dict[RollupKey, _Sums] = {}
        sums = logs.values("h", "prompt_name", "version_tag").annotate(
            n=Count("id"),
            errors=Count("id", filter=Q(status=LogStatus.ERROR)),
            tin=SafeSum("tokens_in"),
            tout=SafeSum("tokens_out"),
            cost=Sum("cost_usd"),
            lat_n=Count("latency_ms"),
            lat_sum=SafeSum("latency_ms"),
        )
        for row in sums:
            groups[(ws, floor_hour(row["h"]), row["prompt_name"], row["version_tag"])] = _Sums(
                request_count=row["n"],
                error_count=row["errors"],
                tokens_in=int(row["tin"] or 0),
                tokens_out=int(row["tout"] or 0),
                cost_usd=row["cost"] or 0.0,
                latency_count=row["lat_n"],
                latency_sum_ms=int(row["lat_sum"] or 0),
            )
        # Latencies are whole milliseconds and repeat a lot: count each distinct value once.
        latencies = (
            logs.filter(latency_ms__isnull=False)
            .values("h", "prompt_name", "version_tag", "latency_ms")
            .annotate(n=Count("id"))
        )
        for row in latencies:
            key = (ws, floor_hour(row["h"]), row["prompt_name"], row["version_tag"])
            groups[key].histogram[latency_bucket(row["latency_ms"])] += row["n"]
        LogRollup.objects.bulk_create(
            [
                LogRollup(
                    workspace_id=key[0],
                    hour=key[1],
                    prompt_name=key[2],
                    version_tag=key[3],
                    request_count=_clamp(s.request_count),
                    error_count=_clamp(s.error_count),
                    tokens_in=_clamp(s.tokens_in),
                    tokens_out=_clamp(s.tokens_out),
                    cost_usd=s.cost_usd,
                    latency_count=_clamp(s.latency_count),
                    latency_sum_ms=_clamp(s.latency_sum_ms),
                    latency_histogram={str(k): v for k, v in sorted(s.histogram.items())},
                )
                for key, s in sorted(groups.items())
            ],
            batch_size=500,
        )
    return len(groups)
