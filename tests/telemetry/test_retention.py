"""Retention: ``prune_telemetry`` and ``manage.py prune_telemetry`` delete exactly the telemetry past
each workspace's retention, in batches, rollups included, while ingest keeps writing."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from telemetry.models import LogRecord, LogRollup, Run, Span, SpanStatus, TelemetrySettings, Trace
from telemetry.retention import expired_counts, prune_telemetry
from tenancy.context import Actor
from tenancy.models import Workspace

ACTOR = Actor(api_key_name="pytest")
# Not on an hour boundary, so the cutoff falls inside an hour whose rollup must be split.
NOW = datetime(2026, 3, 15, 12, 30, tzinfo=UTC)


def days_ago(days: float, now: datetime = NOW) -> datetime:
    return now - timedelta(days=days)


def make_workspace(workspace_id: str, retention_days: int | None = None) -> Workspace:
    ws = Workspace.objects.create(id=workspace_id, name=workspace_id)
    if retention_days is not None:
        TelemetrySettings.objects.create(workspace=ws, retention_days=retention_days)
    return ws


def make_logs(workspace_id: str, instants: list[datetime], **fields) -> list[LogRecord]:
    """Logs as ingest writes them: the rows, then their hourly rollups."""
    from telemetry.rollups import rollup_logs

    records = [
        LogRecord(
            workspace_id=workspace_id,
            prompt_name=fields.get("prompt_name", "greet"),
            version_tag="1.0.0",
            model="gpt-4o-mini",
            tokens_in=100,
            tokens_out=20,
            latency_ms=250 + i,
            cost_usd=0.001,
            created_at=at,
        )
        for i, at in enumerate(instants)
    ]
    LogRecord.objects.bulk_create(records)
    rollup_logs(records)
    return records


def make_trace(workspace_id: str, created_at: datetime, spans: int = 3, trace_id: str = "") -> Trace:
    trace = Trace.objects.create(
        workspace_id=workspace_id,
        trace_id=trace_id or f"t_{workspace_id}_{created_at.timestamp():.0f}_{Trace.objects.count()}",
        created_at=created_at,
        span_count=spans,
    )
    Span.objects.bulk_create(
        Span(
            workspace_id=workspace_id,
            trace=trace,
            span_id=f"s_{i}",
            parent_id="" if i == 0 else "s_0",
            name=f"step {i}",
            status=SpanStatus.OK,
            start_time=created_at + timedelta(seconds=i),
            end_time=created_at + timedelta(seconds=i + 1),
            created_at=created_at,
        )
        for i in range(spans)
    )
    return trace


def make_run(workspace_id: str, created_at: datetime, trace: Trace | None = None) -> Run:
    return Run.objects.create(
        workspace_id=workspace_id,
        run_id=f"run_{Run.objects.count()}",
        workflow_name="etl",
        trace=trace,
        created_at=created_at,
        updated_at=created_at,
    )


def populate(workspace_id: str, now: datetime = NOW) -> dict[str, object]:
    """Rows on both sides of a 30-day retention; returns the ones that matter to the assertions."""
    make_logs(workspace_id, [days_ago(d, now) for d in (0, 1, 29, 29.99, 30.01, 31, 45, 90)])
    recent_trace = make_trace(workspace_id, days_ago(29, now), spans=3)
    # A kept trace keeps all its spans, whatever their own timestamps say.
    Span.objects.filter(trace=recent_trace, span_id="s_2").update(created_at=days_ago(40, now))
    make_trace(workspace_id, days_ago(1, now), spans=2)
    old_trace = make_trace(workspace_id, days_ago(31, now), spans=4)
    make_trace(workspace_id, days_ago(60, now), spans=5)
    run_of_old_trace = make_run(workspace_id, days_ago(2, now), trace=old_trace)
    make_run(workspace_id, days_ago(29, now))
    make_run(workspace_id, days_ago(31, now), trace=recent_trace)
    make_run(workspace_id, days_ago(60, now))
    return {"recent_trace": recent_trace, "run_of_old_trace": run_of_old_trace}


def snapshot(workspace_id: str) -> dict[str, int]:
    return {
        "logs": LogRecord.objects.filter(workspace_id=workspace_id).count(),
        "rollups": LogRollup.objects.filter(workspace_id=workspace_id).count(),
        "runs": Run.objects.filter(workspace_id=workspace_id).count(),
        "traces": Trace.objects.filter(workspace_id=workspace_id).count(),
        "spans": Span.objects.filter(workspace_id=workspace_id).count(),
    }


def assert_rollups_match_logs(workspace_id: str) -> None:
    logs = LogRecord.objects.filter(workspace_id=workspace_id)
    rollups = LogRollup.objects.filter(workspace_id=workspace_id).aggregate(
        n=Sum("request_count"), latency=Sum("latency_sum_ms"), tokens=Sum("tokens_in")
    )
    exact = logs.aggregate(latency=Sum("latency_ms"), tokens=Sum("tokens_in"))
    assert (rollups["n"] or 0) == logs.count()
    assert (rollups["latency"] or 0) == (exact["latency"] or 0)
    assert (rollups["tokens"] or 0) == (exact["tokens"] or 0)


# --- what is deleted --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_prune_deletes_exactly_the_expired_rows_of_each_workspace():
    make_workspace("keep")  # no retention
    make_workspace("zero", retention_days=0)  # 0 reads like "off": keeps everything too
    make_workspace("short", retention_days=30)
    kept = {ws: populate(ws) for ws in ("keep", "zero", "short")}
    before = {ws: snapshot(ws) for ws in ("keep", "zero", "short")}

    counts = prune_telemetry(now=NOW)

    assert counts == {"logs": 4, "rollups": 3, "runs": 2, "traces": 2, "spans": 9}
    assert snapshot("keep") == before["keep"]
    assert snapshot("zero") == before["zero"]
    cutoff = days_ago(30)
    short = LogRecord.objects.filter(workspace_id="short")
    assert short.count() == 4
    assert not short.filter(created_at__lt=cutoff).exists()
    assert sorted(short.values_list("created_at", flat=True)) == sorted(
        days_ago(d) for d in (0, 1, 29, 29.99)
    )
    assert list(
        Trace.objects.filter(workspace_id="short").order_by("created_at").values_list("created_at", flat=True)
    ) == [
        days_ago(29),
        days_ago(1),
    ]
    # The kept trace keeps its three spans, the one with an old timestamp included.
    assert Span.objects.filter(trace=kept["short"]["recent_trace"]).count() == 3
    assert not Span.objects.filter(workspace_id="short", trace__created_at__lt=cutoff).exists()
    # Runs: the expired ones are gone; a kept run of a deleted trace stays, unlinked.
    runs = Run.objects.filter(workspace_id="short")
    assert sorted(runs.values_list("created_at", flat=True)) == [days_ago(29), days_ago(2)]
    run = runs.get(pk=kept["short"]["run_of_old_trace"].pk)
    assert run.trace_id is None
    assert_rollups_match_logs("short")
    assert_rollups_match_logs("keep")
    # Nothing left to do: a second prune deletes nothing.
    assert prune_telemetry(now=NOW) == dict.fromkeys(counts, 0)


@pytest.mark.django_db
def test_retention_of_30_days_keeps_rows_of_29_days_and_one_workspace_can_be_named():
    make_workspace("a", retention_days=30)
    make_workspace("b", retention_days=30)
    for ws in ("a", "b"):
        make_logs(ws, [days_ago(29), days_ago(29.96), days_ago(31)])
        make_trace(ws, days_ago(29))
        make_run(ws, days_ago(29))

    counts = prune_telemetry(now=NOW, workspace_id="a")

    assert counts["logs"] == 1 and counts["traces"] == 0 and counts["runs"] == 0
    assert LogRecord.objects.filter(workspace_id="a").count() == 2
    assert LogRecord.objects.filter(workspace_id="b").count() == 3  # not named: untouched
    assert Trace.objects.filter(workspace_id="a").count() == Run.objects.filter(workspace_id="a").count() == 1


@pytest.mark.django_db
def test_prune_works_in_batches_of_primary_keys():
    make_workspace("big", retention_days=7)
    # 50 expired logs, each in an hour of its own (50 rollup rows), 10 expired traces of 3 spans.
    make_logs("big", [days_ago(8) - timedelta(hours=i) for i in range(50)])
    make_logs("big", [days_ago(1)])
    traces = [make_trace("big", days_ago(10) - timedelta(minutes=i)) for i in range(10)]
    for trace in traces[:3]:
        make_run("big", days_ago(9), trace=trace)
    batches: list[tuple[str, str, int]] = []

    with CaptureQueriesContext(connection) as queries:
        counts = prune_telemetry(now=NOW, batch_size=7, progress=lambda *batch: batches.append(batch))

    assert counts == {"logs": 50, "rollups": 50, "runs": 3, "traces": 10, "spans": 30}
    log_batches = [n for ws, table, n in batches if table == "logs"]
    assert log_batches == [7, 7, 7, 7, 7, 7, 7, 1]
    assert [n for _, table, n in batches if table == "rollups"] == [7] * 7 + [1]
    assert [n for _, table, n in batches if table == "traces"] == [7, 3]
    assert sum(n for _, table, n in batches if table == "spans") == 30
    assert all(n <= 7 for *_, n in batches)
    log_deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE FROM")]
    log_deletes = [sql for sql in log_deletes if LogRecord._meta.db_table in sql.split(" WHERE")[0]]
    assert len(log_deletes) == 8  # one short DELETE per batch, never one for the whole table
    assert LogRecord.objects.filter(workspace_id="big").count() == 1
    assert_rollups_match_logs("big")


@pytest.mark.django_db
def test_rollups_are_pruned_by_whole_hours_and_the_cutoff_hour_is_rebuilt():
    make_workspace("m", retention_days=30)
    cutoff = days_ago(30)  # 12:30, thirty days before NOW
    make_logs(
        "m",
        [
            cutoff - timedelta(hours=2),
            cutoff - timedelta(minutes=20),  # same hour as the cutoff, expired
            cutoff - timedelta(minutes=10),  # same hour as the cutoff, expired
            cutoff + timedelta(minutes=10),  # same hour as the cutoff, kept
            cutoff + timedelta(hours=2),
        ],
    )
    boundary = cutoff.replace(minute=0)
    assert LogRollup.objects.get(workspace_id="m", hour=boundary).request_count == 3

    counts = prune_telemetry(now=NOW)

    assert counts["logs"] == 3
    assert counts["rollups"] == 1  # the hour wholly before the cutoff
    assert LogRollup.objects.get(workspace_id="m", hour=boundary).request_count == 1
    assert not LogRollup.objects.filter(workspace_id="m", hour__lt=boundary).exists()
    assert_rollups_match_logs("m")


@pytest.mark.django_db
def test_a_batch_the_database_refuses_is_tried_again(monkeypatch):
    from django.db import OperationalError

    from telemetry import retention

    make_workspace("short", retention_days=30)
    make_logs("short", [days_ago(40), days_ago(41), days_ago(1)])
    real, failures = retention._delete_ids, []

    def flaky(model, ids):
        if not failures:
            failures.append(ids)
            message = "database is locked" if connection.vendor == "sqlite" else "deadlock detected"
            error = OperationalError(message)
            error.__cause__ = type("Cause", (Exception,), {"sqlstate": "40P01"})()
            raise error
        return real(model, ids)

    monkeypatch.setattr(retention, "_delete_ids", flaky)
    monkeypatch.setattr(retention.time, "sleep", lambda seconds: None)

    assert prune_telemetry(now=NOW)["logs"] == 2
    assert len(failures) == 1
    assert LogRecord.objects.filter(workspace_id="short").count() == 1


@pytest.mark.django_db
def test_prune_refuses_a_batch_size_out_of_range():
    with pytest.raises(ValueError):
        prune_telemetry(batch_size=0)
    with pytest.raises(ValueError):
        prune_telemetry(batch_size=1_000_000)


# --- the command -----------------------------------------------------------------------------------


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("prune_telemetry", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_command_dry_run_counts_without_deleting():
    make_workspace("keep")
    make_workspace("short", retention_days=30)
    now = timezone.now()  # the command works with the real clock
    for ws in ("keep", "short"):
        populate(ws, now)
    before = {ws: snapshot(ws) for ws in ("keep", "short")}
    expected = expired_counts(workspace_id="short")

    output = run_command("--dry-run")

    assert "short: retention 30 days" in output
    summary = ", ".join(f"{expected[t]:,} {t}" for t in ("logs", "rollups", "runs", "traces", "spans"))
    assert f"Dry run: would delete {summary}." in output
    assert (expected["logs"], expected["runs"], expected["traces"], expected["spans"]) == (4, 2, 2, 9)
    assert expected["rollups"] >= 3
    assert {ws: snapshot(ws) for ws in ("keep", "short")} == before


@pytest.mark.django_db
def test_command_prints_each_batch_and_a_summary():
    make_workspace("short", retention_days=30)
    make_logs("short", [timezone.now() - timedelta(days=40, minutes=i) for i in range(12)])

    output = run_command("--batch-size", "5")

    assert output.count("short: deleted 5 logs") == 2
    assert "short: deleted 2 logs (12 so far)" in output
    assert "Deleted 12 logs" in output
    assert LogRecord.objects.filter(workspace_id="short").count() == 0


@pytest.mark.django_db
def test_command_is_quiet_and_successful_when_there_is_nothing_to_do():
    make_workspace("keep")
    make_logs("keep", [timezone.now() - timedelta(days=400)])
    assert "nothing to prune" in run_command()
    assert "nothing to prune" in run_command("--workspace", "keep")
    make_workspace("short", retention_days=30)
    assert "deleted nothing" in run_command()
    assert LogRecord.objects.filter(workspace_id="keep").count() == 1


@pytest.mark.django_db
def test_command_refuses_bad_arguments():
    with pytest.raises(CommandError, match="does not exist"):
        run_command("--workspace", "nope")
    with pytest.raises(CommandError, match="batch-size"):
        run_command("--batch-size", "0")


# --- prune while writing ---------------------------------------------------------------------------


@pytest.fixture
def concurrent_db(transactional_db: None, tmp_path) -> Iterator[None]:
    """A test database that several connections can write at once, like the server's.

    PostgreSQL's test database is one already. SQLite's is in memory with a shared cache, where a
    second writer fails at once ("database table is locked") instead of waiting on the busy timeout
    as it does with the server's WAL file: so copy it into a file for this test, and come back after.
    """
    conn = connections["default"]
    if conn.vendor != "sqlite" or not conn.is_in_memory_db():
        yield
        return
    memory_name = conn.settings_dict["NAME"]
    conn.ensure_connection()
    keeper = sqlite3.connect(memory_name, uri=True)  # keeps the in-memory database alive meanwhile
    path = tmp_path / "concurrent.sqlite3"
    target = sqlite3.connect(path)
    conn.connection.backup(target)
    target.close()
    conn.settings_dict["NAME"] = str(path)  # shared by every thread's connection
    conn.close()
    try:
        yield
    finally:
        connections.close_all()
        conn.settings_dict["NAME"] = memory_name
        conn.ensure_connection()
        keeper.close()


@pytest.mark.django_db(transaction=True)
def test_prune_while_ingest_keeps_writing(concurrent_db):
    from telemetry.services import SpanInput, logs_ingest, spans_ingest

    make_workspace("busy", retention_days=30)
    make_workspace("other")
    now = timezone.now()
    cutoff = now - timedelta(days=30)
    expired_logs = make_logs("busy", [now - timedelta(days=31, minutes=7 * i) for i in range(400)])
    make_logs("busy", [now - timedelta(days=29, minutes=i) for i in range(20)])
    make_logs("other", [now - timedelta(days=60)])
    for i in range(25):
        trace = make_trace("busy", now - timedelta(days=35, hours=i), spans=4)
        make_run("busy", now - timedelta(days=33), trace=trace)

    written: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def ingest() -> None:
        try:
            n = 0
            while not stop.is_set():
                records, _ = logs_ingest(
                    workspace_id="busy",
                    body=[
                        {
                            "prompt_name": "live",
                            "version_tag": "1.0.0",
                            "model": "gpt-4o-mini",
                            "tokens_in": 5,
                        }
                    ]
                    * 5,
                    actor=ACTOR,
                )
                written.extend(record.pk for record in records)
                spans_ingest(
                    workspace_id="busy",
                    spans=[SpanInput(trace_id=f"live-{n}", span_id="root", name="live", status="ok")],
                    source="api",
                    actor=ACTOR,
                )
                n += 1
                time.sleep(0.002)  # a busy client, not a tight loop that starves everyone else
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's own connections

    thread = threading.Thread(target=ingest)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(written) < 20 and not errors and time.monotonic() < deadline:
            time.sleep(0.01)
        before = len(written)
        counts = prune_telemetry(batch_size=7)
        during = len(written) - before
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert not errors, errors

    assert counts["logs"] == len(expired_logs)
    assert counts["traces"] == 25 and counts["spans"] == 100 and counts["runs"] == 25
    assert during > 0, "ingest stalled while the prune ran"
    busy = LogRecord.objects.filter(workspace_id="busy")
    assert not busy.filter(created_at__lt=cutoff).exists()
    assert not Trace.objects.filter(workspace_id="busy", created_at__lt=cutoff).exists()
    assert not Run.objects.filter(workspace_id="busy", created_at__lt=cutoff).exists()
    # Nothing fresh was lost: every ingested log, the 20 recent ones, every live trace and its span.
    assert set(written) <= set(busy.values_list("pk", flat=True))
    assert busy.filter(prompt_name="live").count() == len(written)
    assert busy.filter(created_at__gte=cutoff).exclude(prompt_name="live").count() == 20
    live = Trace.objects.filter(workspace_id="busy", trace_id__startswith="live-")
    assert live.count() == Span.objects.filter(trace__in=live).count() > 0
    assert LogRecord.objects.filter(workspace_id="other").count() == 1
    assert_rollups_match_logs("busy")
