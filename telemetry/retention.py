"""Retention: delete the telemetry of each workspace older than its ``retention_days``.

``prune_telemetry`` (run by ``manage.py prune_telemetry``, typically from cron) walks every workspace
whose ``TelemetrySettings.retention_days`` is set and deletes, per table, the rows created before
``now - retention_days``:

- **logs** (``LogRecord.created_at``) and the **hourly rollups** that only counted such logs: whole
  hours before the cutoff are deleted, and the hour containing the cutoff is rebuilt from the logs
  that remain, so the metrics always agree with the logs;
- **runs** (``Run.created_at``);
- **traces** (``Trace.created_at``) with all their spans. Spans are not pruned on their own: a trace
  that is kept keeps every span, so the trace page and its totals stay whole. Runs that are kept but
  point at a deleted trace lose the link (``trace`` becomes null), as the foreign key says.

Deletes happen in batches: select at most ``batch_size`` primary keys over the ``(workspace,
created_at)`` indexes, then ``DELETE ... WHERE id IN (...)`` in a short transaction of its own. No
single statement locks a large part of a table, so ingest keeps flowing beside a prune on PostgreSQL
(row locks only) and on SQLite (one writer at a time: ingest waits for one batch at most, well
within the busy timeout). Rows created after the cutoff are never touched, so a prune running beside
ingest can only ever delete expired rows, and running two prunes at once is harmless.

A ``retention_days`` of 0 is treated like an empty one (keep everything): deleting all of a
workspace's telemetry is something to do on purpose, not through a setting that reads like "off".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import OperationalError, connection, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from telemetry.models import LogRecord, LogRollup, Run, Span, TelemetrySettings, Trace

TABLES = ("logs", "rollups", "runs", "traces", "spans")
DEFAULT_BATCH_SIZE = 5000
# A batch's ids are bound as parameters of one DELETE: SQLite takes at most 32,766 of them.
MAX_BATCH_SIZE = 20_000
# On SQLite, after each delete transaction, wait as long as it took (up to this many seconds)
# before the next: writers waiting on the busy timeout poll every 100 ms at most, so each of them
# finds the lock free in the gap, and none times out however long the prune runs.
SQLITE_PAUSE_MAX_S = 0.1
# A batch whose transaction the database refused (SQLite still busy after its timeout, a PostgreSQL
# deadlock or serialization failure) is tried again this many times, with a growing wait.
RETRIES = 8
RETRY_SQLSTATES = ("40P01", "40001")

T = TypeVar("T")

# progress(workspace_id, table, rows deleted by this batch)
Progress = Callable[[str, str, int], None]


def _floor_hour(value: datetime) -> datetime:
    from telemetry.rollups import floor_hour

    return floor_hour(value)


def retention_policies(*, workspace_id: str | None = None) -> list[tuple[str, int]]:
    """(workspace id, retention days) of every workspace with a retention, in id order."""
    settings = TelemetrySettings.objects.filter(retention_days__gt=0).order_by("workspace_id")
    if workspace_id is not None:
        settings = settings.filter(workspace_id=workspace_id)
    return list(settings.values_list("workspace_id", "retention_days"))


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """Rows created strictly before this instant are expired."""
    return now - timedelta(days=retention_days)


def _empty() -> dict[str, int]:
    return dict.fromkeys(TABLES, 0)


def expired_counts(*, now: datetime | None = None, workspace_id: str | None = None) -> dict[str, int]:
    """What ``prune_telemetry`` would delete right now, per table, without deleting anything."""
    now = now or timezone.now()
    counts = _empty()
    for ws, days in retention_policies(workspace_id=workspace_id):
        cutoff = retention_cutoff(now, days)
        expired_traces = Trace.objects.filter(workspace_id=ws, created_at__lt=cutoff)
        counts["logs"] += LogRecord.objects.filter(workspace_id=ws, created_at__lt=cutoff).count()
        counts["rollups"] += LogRollup.objects.filter(workspace_id=ws, hour__lt=_floor_hour(cutoff)).count()
        counts["runs"] += Run.objects.filter(workspace_id=ws, created_at__lt=cutoff).count()
        counts["traces"] += expired_traces.count()
        counts["spans"] += Span.objects.filter(trace__in=expired_traces.values("pk")).count()
    return counts


def prune_telemetry(
    *,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workspace_id: str | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Delete expired logs, rollups, runs, traces and their spans of every workspace with a
    retention (or of ``workspace_id`` only), in batches; returns the rows deleted per table."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
    now = now or timezone.now()
    totals = _empty()
    for ws, days in retention_policies(workspace_id=workspace_id):
        pruner = _Pruner(ws, retention_cutoff(now, days), batch_size, progress)
        for table, count in pruner.run().items():
            totals[table] += count
    return totals


class _Pruner:
    def __init__(self, workspace_id: str, cutoff: datetime, batch_size: int, progress: Progress | None):
        self.ws, self.cutoff, self.batch_size, self.progress = workspace_id, cutoff, batch_size, progress
        self.counts = _empty()

    def run(self) -> dict[str, int]:
        self._prune_logs()
        self._prune_rollups()
        self._delete_in_batches("runs", Run.objects.filter(workspace_id=self.ws, created_at__lt=self.cutoff))
        self._prune_traces()
        return self.counts

    def _report(self, table: str, count: int) -> None:
        self.counts[table] += count
        if self.progress is not None and count:
            self.progress(self.ws, table, count)

    def _ids(self, queryset: QuerySet, order: tuple[str, ...] = ("created_at", "id")) -> list[int]:
        # Oldest first, so that an interrupted prune leaves the newest of the expired rows.
        return list(queryset.order_by(*order).values_list("pk", flat=True)[: self.batch_size])

    def _delete_in_batches(
        self, table: str, queryset: QuerySet, order: tuple[str, ...] = ("created_at", "id")
    ) -> None:
        model: type[Model] = queryset.model
        while True:
            ids = self._ids(queryset, order)
            if not ids:
                return
            deleted, _ = _in_transaction(_delete_ids, model, ids)
            self._report(table, deleted)
            if len(ids) < self.batch_size:
                return

    def _prune_logs(self) -> None:
        self._delete_in_batches(
            "logs", LogRecord.objects.filter(workspace_id=self.ws, created_at__lt=self.cutoff)
        )

    def _prune_rollups(self) -> None:
        """Whole hours before the cutoff go; the hour holding the cutoff keeps the sums of the logs
        that remain in it (rebuilt from them), so the metrics match the logs exactly."""
        boundary = _floor_hour(self.cutoff)
        self._delete_in_batches(
            "rollups",
            LogRollup.objects.filter(workspace_id=self.ws, hour__lt=boundary),
            order=("hour", "id"),
        )
        if boundary < self.cutoff and LogRollup.objects.filter(workspace_id=self.ws, hour=boundary).exists():
            _in_transaction(_rebuild_hour, self.ws, boundary)

    def _prune_traces(self) -> None:
        expired = Trace.objects.filter(workspace_id=self.ws, created_at__lt=self.cutoff)
        while True:
            trace_ids = self._ids(expired)
            if not trace_ids:
                return
            # The spans first, in batches of their own: a batch of traces may hold many spans.
            self._delete_in_batches("spans", Span.objects.filter(trace_id__in=trace_ids), order=("id",))
            _, per_model = _in_transaction(_delete_traces, trace_ids)
            self._report("spans", per_model.get(Span._meta.label, 0))
            self._report("traces", per_model.get(Trace._meta.label, 0))
            if len(trace_ids) < self.batch_size:
                return


def _rebuild_hour(workspace_id: str, hour: datetime) -> int:
    from telemetry.rollups import rebuild_rollups

    return rebuild_rollups(workspace_id=workspace_id, since=hour, until=hour)


def _delete_ids(model: type[Model], ids: list[int]) -> tuple[int, dict[str, int]]:
    return model.objects.filter(pk__in=ids).delete()


def _delete_traces(trace_ids: list[int]) -> tuple[int, dict[str, int]]:
    # Lock the traces first, in the order ingest locks them (by trace id, so the two cannot
    # deadlock): a span being added to one of them right now commits first and is deleted with
    # it, instead of pointing at a deleted trace. On SQLite the transaction is the only writer.
    locked = list(
        Trace.objects.select_for_update()
        .filter(pk__in=trace_ids)
        .order_by("trace_id")
        .values_list("pk", flat=True)
    )
    # Deletes the late spans (cascade) and unlinks the runs that are kept (SET_NULL).
    return Trace.objects.filter(pk__in=locked).delete()


def _retryable(exc: OperationalError) -> bool:
    if connection.vendor == "sqlite":
        return "locked" in str(exc)  # the busy timeout ran out: ingest kept the lock that long
    return getattr(exc.__cause__, "sqlstate", None) in RETRY_SQLSTATES


def _in_transaction(work: Callable[..., T], *args: Any) -> T:
    """Run one batch in a transaction of its own, retried when the database asks for it (a busy
    SQLite, a PostgreSQL deadlock): a batch deletes rows by id, so running it again is harmless.
    On SQLite, pause after it so that waiting writers get the lock (see SQLITE_PAUSE_MAX_S)."""
    for attempt in range(RETRIES + 1):
        started = time.monotonic()
        try:
            with transaction.atomic():
                result = work(*args)
        except OperationalError as exc:
            if attempt == RETRIES or not _retryable(exc):
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt))
            continue
        if connection.vendor == "sqlite":
            time.sleep(min(SQLITE_PAUSE_MAX_S, time.monotonic() - started))
        return result
    raise AssertionError("unreachable")
