"""``/v1/metrics/*`` (upstream §2.12) from the hourly rollups, and the rollups themselves.

Logs are stored as the ingest service stores them (``bulk_create`` then ``rollup_logs`` in one
transaction), backdated over several days; every figure of every endpoint is checked against values
computed here from the logs, runs and traces the test made.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from registry.models import Prompt, PromptVersion, VersionStatus
from telemetry import metrics
from telemetry.models import LogRecord, LogRollup, Run, RunStatus, Trace
from telemetry.rollups import BOUNDS, histogram_quantile, latency_bucket, rebuild_rollups, rollup_logs
from tenancy.models import Workspace

ENDPOINTS = ("time-series", "prompts", "evaluations", "activity")
WINDOW_MESSAGE = "Invalid window parameter. Must be one of: 7d, 30d, 90d"
PROMPTS = [("summarize", "1.0.0"), ("summarize", "1.1.0"), ("classify", "2.0.0")]
DAY_FIELDS = {
    "date",
    "request_count",
    "total_tokens",
    "total_cost_usd",
    "avg_latency_ms",
    "p50_latency_ms",
    "p95_latency_ms",
    "error_rate",
    "log_error_rate",
}
# A percentile read from the histogram is within half a 5 % bucket of the exact one (+ rounding).
PERCENTILE_TOLERANCE = 0.025


def metrics_get(api: Any, endpoint: str, key: str, query: str = "", **kwargs: Any) -> dict[str, Any]:
    response = api.get(f"/v1/metrics/{endpoint}{query}", key=key, **kwargs)
    assert response.status_code == 200, response.content
    return response.json()


def ingest(records: list[LogRecord]) -> None:
    """What the ingest service does with a request's logs."""
    with transaction.atomic():
        LogRecord.objects.bulk_create(records)
        rollup_logs(records)


def utc_date(value: datetime) -> date:
    return value.astimezone(UTC).date()


def exact_quantile(values: list[int], q: float) -> float:
    """percentile_cont / R-7, the definition the histogram estimates."""
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def assert_percentile(estimate: float | None, values: list[int], q: float) -> None:
    exact = exact_quantile(values, q)
    assert estimate is not None
    assert abs(estimate - exact) <= PERCENTILE_TOLERANCE * exact + 0.01, (q, estimate, exact)


# --- a workspace's worth of telemetry ---------------------------------------------------------------


@dataclass
class Dataset:
    workspace_id: str
    now: datetime
    logs: list[LogRecord] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)


def build_dataset(workspace_id: str, seed: int, *, scale: float = 1.0) -> Dataset:
    """Logs on most of the last six days (some without latency, tokens or cost, some errors), a few
    older ones (inside 30d or 90d only, or outside every window), runs of several statuses linked
    to traces that carry a prompt version, all backdated. Nothing lies within hours of a window edge."""
    rng = random.Random(seed)
    now = timezone.now()
    Workspace.objects.get_or_create(id=workspace_id, defaults={"name": workspace_id})
    ds = Dataset(workspace_id=workspace_id, now=now)

    def log(at: datetime, prompt: tuple[str, str]) -> LogRecord:
        return LogRecord(
            workspace_id=workspace_id,
            prompt_name=prompt[0],
            version_tag=prompt[1],
            model="gpt-4o-mini",
            tokens_in=None if rng.random() < 0.05 else rng.randint(0, 3000),
            tokens_out=None if rng.random() < 0.05 else rng.randint(0, 1500),
            cost_usd=None if rng.random() < 0.1 else round(rng.uniform(0, 0.05), 6),
            latency_ms=None if rng.random() < 0.05 else int(rng.lognormvariate(6, 1.2)),
            status="error" if rng.random() < 0.1 else "ok",
            created_at=at,
        )

    for days_ago in (0, 1, 2, 4, 5):
        for _ in range(int(rng.randint(40, 120) * scale)):
            at = now - timedelta(days=days_ago, minutes=rng.randint(1, 20 * 60))
            ds.logs.append(log(at, rng.choices(PROMPTS, weights=(5, 3, 2))[0]))
    for days_ago, count in ((10, 3), (45, 2), (100, 2)):
        for _ in range(count):
            ds.logs.append(log(now - timedelta(days=days_ago), rng.choice(PROMPTS)))
    rng.shuffle(ds.logs)
    # Several requests, so the upserts add to rows earlier requests created.
    start = 0
    while start < len(ds.logs):
        size = rng.randint(1, 60)
        ingest(ds.logs[start : start + size])
        start += size

    for days_ago, (prompt, version) in [(1, PROMPTS[0]), (2, PROMPTS[1]), (4, PROMPTS[2]), (10, PROMPTS[0])]:
        ds.traces.append(
            Trace(
                workspace_id=workspace_id,
                trace_id=f"{workspace_id}-{prompt}-{version}-{days_ago}",
                prompt_name=prompt,
                version_tag=version,
                created_at=now - timedelta(days=days_ago, hours=1),
            )
        )
    ds.traces.append(  # a trace without a prompt: its runs count for no prompt version
        Trace(workspace_id=workspace_id, trace_id=f"{workspace_id}-plain", created_at=now - timedelta(days=1))
    )
    Trace.objects.bulk_create(ds.traces)
    statuses = [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.RUNNING]
    for index in range(int(40 * scale)):
        days_ago = rng.choice((0, 1, 1, 2, 3, 5, 10, 40))
        ds.runs.append(
            Run(
                workspace_id=workspace_id,
                run_id=f"{workspace_id}-run-{index}",
                workflow_name=rng.choice(["etl", "agent"]),
                status=rng.choices(statuses, weights=(6, 3, 1))[0],
                trace=rng.choice([None, *ds.traces]),
                created_at=now - timedelta(days=days_ago, minutes=rng.randint(1, 600)),
                updated_at=now,
            )
        )
    Run.objects.bulk_create(ds.runs)
    return ds


def in_window(ds: Dataset, rows: Iterable[Any], days: int) -> list[Any]:
    start = ds.now - timedelta(days=days)
    return [row for row in rows if row.created_at >= start]


def expected_daily(ds: Dataset, days: int) -> dict[date, dict[str, Any]]:
    by_day: dict[date, dict[str, Any]] = defaultdict(
        lambda: {"logs": 0, "errors": 0, "tokens": 0, "cost": 0.0, "latencies": [], "runs": 0, "failed": 0}
    )
    for log in in_window(ds, ds.logs, days):
        day = by_day[utc_date(log.created_at)]
        day["logs"] += 1
        day["errors"] += log.status == "error"
        day["tokens"] += (log.tokens_in or 0) + (log.tokens_out or 0)
        day["cost"] += log.cost_usd or 0
        if log.latency_ms is not None:
            day["latencies"].append(log.latency_ms)
    for run in in_window(ds, ds.runs, days):
        day = by_day[utc_date(run.created_at)]
        day["runs"] += 1
        day["failed"] += run.status == RunStatus.FAILED
    return by_day


def check_day(entry: dict[str, Any], expected: dict[str, Any] | None) -> None:
    assert set(entry) == DAY_FIELDS
    if expected is None or (expected["logs"] == 0 and expected["runs"] == 0):
        assert entry == {
            "date": entry["date"],
            "request_count": 0,
            "total_tokens": 0,
            "total_cost_usd": 0,
            "avg_latency_ms": None,
            "p50_latency_ms": None,
            "p95_latency_ms": None,
            "error_rate": 0,
            "log_error_rate": 0,
        }
        return
    assert entry["request_count"] == expected["logs"]
    assert entry["total_tokens"] == expected["tokens"]
    assert entry["total_cost_usd"] == pytest.approx(expected["cost"], abs=1e-9)
    assert entry["log_error_rate"] == pytest.approx(
        expected["errors"] / expected["logs"] if expected["logs"] else 0
    )
    assert entry["error_rate"] == pytest.approx(
        expected["failed"] / expected["runs"] if expected["runs"] else 0
    )
    latencies = expected["latencies"]
    if latencies:
        assert entry["avg_latency_ms"] == pytest.approx(sum(latencies) / len(latencies), abs=0.006)
        assert_percentile(entry["p50_latency_ms"], latencies, 0.5)
        assert_percentile(entry["p95_latency_ms"], latencies, 0.95)
    else:
        assert entry["avg_latency_ms"] is entry["p50_latency_ms"] is entry["p95_latency_ms"] is None


@pytest.fixture
def reader(make_key) -> str:
    return make_key("read")[1]


@pytest.fixture
def dataset(db) -> Dataset:
    return build_dataset("default", seed=7)


# --- time series ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("window", "days"), [("7d", 7), ("30d", 30), ("90d", 90)])
def test_time_series_matches_the_logs_and_runs_day_by_day(api, reader, dataset, window, days):
    body = metrics_get(api, "time-series", reader, f"?window={window}")
    assert body["window"] == window
    assert body["end"] - body["start"] == days * 86400
    assert abs(body["end"] - dataset.now.timestamp()) < 60
    expected = expected_daily(dataset, days)
    start = utc_date(datetime.fromtimestamp(body["start"], UTC))
    # Every UTC day of the window, in order, zero-filled (upstream omitted days without logs).
    assert [entry["date"] for entry in body["daily"]] == [
        (start + timedelta(days=i)).isoformat() for i in range(days + 1)
    ]
    for entry in body["daily"]:
        check_day(entry, expected.get(date.fromisoformat(entry["date"])))
    with_logs = [e for e in body["daily"] if e["request_count"]]
    assert len(with_logs) >= 5
    assert any(e["request_count"] == 0 for e in body["daily"])
    assert sum(e["request_count"] for e in body["daily"]) == len(in_window(dataset, dataset.logs, days))


def test_the_default_window_is_30_days(api, reader, dataset):
    body = metrics_get(api, "time-series", reader)
    assert body["window"] == "30d"
    assert len(body["daily"]) == 31
    assert body == {
        **metrics_get(api, "time-series", reader, "?window="),
        "start": body["start"],
        "end": body["end"],
    }


def test_a_small_day_by_hand(api, reader, db):
    at = timezone.now() - timedelta(days=1)
    ingest(
        [
            LogRecord(
                workspace_id="default",
                prompt_name="summarize",
                version_tag="1.0.0",
                tokens_in=100,
                tokens_out=50,
                cost_usd=0.01,
                latency_ms=100,
                created_at=at,
            ),
            LogRecord(
                workspace_id="default",
                prompt_name="summarize",
                version_tag="1.0.0",
                tokens_in=200,
                cost_usd=0.02,
                latency_ms=200,
                status="error",
                created_at=at,
            ),
            LogRecord(
                workspace_id="default",
                prompt_name="classify",
                version_tag="2.0.0",
                latency_ms=300,
                created_at=at,
            ),
        ]
    )
    ingest(
        [
            LogRecord(
                workspace_id="default",
                prompt_name="classify",
                version_tag="2.0.0",
                tokens_in=10,
                tokens_out=20,
                cost_usd=0.5,
                created_at=at,
            )
        ]
    )
    trace = Trace.objects.create(
        workspace_id="default", trace_id="t1", prompt_name="summarize", version_tag="1.0.0", created_at=at
    )
    Run.objects.create(
        workspace_id="default", run_id="r1", workflow_name="w", status="failed", trace=trace, created_at=at
    )
    Run.objects.create(
        workspace_id="default", run_id="r2", workflow_name="w", status="completed", trace=trace, created_at=at
    )

    daily = metrics_get(api, "time-series", reader, "?window=7d")["daily"]
    day = next(e for e in daily if e["date"] == utc_date(at).isoformat())
    assert day["request_count"] == 4
    assert day["total_tokens"] == 380
    assert day["total_cost_usd"] == 0.53
    assert day["avg_latency_ms"] == 200.0
    assert day["p50_latency_ms"] == pytest.approx(200, rel=PERCENTILE_TOLERANCE)
    assert day["p95_latency_ms"] == pytest.approx(290, rel=PERCENTILE_TOLERANCE)  # 200 + 0.9 * 100
    assert day["log_error_rate"] == 0.25
    assert day["error_rate"] == 0.5
    assert sum(e["request_count"] for e in daily) == 4

    prompts = metrics_get(api, "prompts", reader, "?window=7d")
    assert prompts == {
        "window": "7d",
        "prompts": [
            {
                "prompt_name": "classify",
                "version_tag": "2.0.0",
                "request_count": 2,
                "total_tokens_in": 10,
                "total_tokens_out": 20,
                "total_cost_usd": 0.5,
                "avg_latency_ms": 300.0,
                "error_rate": 0.0,
            },
            {
                "prompt_name": "summarize",
                "version_tag": "1.0.0",
                "request_count": 2,
                "total_tokens_in": 300,
                "total_tokens_out": 50,
                "total_cost_usd": 0.03,
                "avg_latency_ms": 150.0,
                "error_rate": 0.5,
            },
        ],
    }
    summary = metrics_get(api, "activity", reader, "?window=7d")["summary"]
    assert summary == {
        "total_runs": 2,
        "total_traces": 1,
        "total_logs": 4,
        "total_evaluations": 0,
        "active_prompts": 0,
        "failed_runs": 1,
    }


def test_a_log_posted_through_the_api_is_in_todays_figures(api, make_key):
    _, writer = make_key("read,write")
    response = api.post(
        "/v1/logs",
        key=writer,
        json={"prompt_name": "p", "version_tag": "1.0.0", "tokens_in": 3, "tokens_out": 4, "latency_ms": 42},
    )
    assert response.status_code == 202, response.content
    today = metrics_get(api, "time-series", writer, "?window=7d")["daily"][-1]
    assert today["date"] == utc_date(timezone.now()).isoformat()
    assert (today["request_count"], today["total_tokens"], today["avg_latency_ms"]) == (1, 7, 42.0)
    assert today["p50_latency_ms"] == today["p95_latency_ms"] == pytest.approx(42, rel=PERCENTILE_TOLERANCE)


def test_a_batch_spread_over_hundreds_of_buckets_is_counted_exactly(api, make_key):
    # One request's logs share an hour; 1 ms .. ~1.2 h spans ~270 histogram buckets, more than one
    # SQL function call can add at once. Two batches: the second merges into the stored row.
    _, writer = make_key("read,write")
    latencies = [int(1.05**i) + j for i in range(270) for j in range(2)][:500]
    for _ in range(2):
        batch = [{"prompt_name": "p", "version_tag": "1.0.0", "latency_ms": ms} for ms in latencies]
        assert api.post("/v1/logs", key=writer, json=batch).status_code == 202
    (rollup,) = LogRollup.objects.filter(workspace_id="default")
    expected = Counter(latency_bucket(ms) for ms in latencies * 2)
    assert len(expected) > 200
    assert {int(k): v for k, v in rollup.latency_histogram.items()} == expected
    assert (rollup.request_count, rollup.latency_sum_ms) == (1000, 2 * sum(latencies))


def test_huge_counts_saturate_instead_of_failing(api, reader, db):
    """Counts of 2**62 are valid input; sums past the bigint range saturate per hourly row and the
    figures stay numbers (never a 500), through ingest, metrics and a rebuild."""
    top = 2**63 - 1
    day = timezone.now() - timedelta(days=1)
    hour = day.replace(hour=12, minute=30)  # the hour before is the same day
    huge = {"prompt_name": "p", "version_tag": "1", "tokens_in": 2**62, "latency_ms": 2**62}
    ingest([LogRecord(workspace_id="default", created_at=hour, **huge) for _ in range(3)])
    ingest([LogRecord(workspace_id="default", created_at=hour - timedelta(hours=1), **huge)])
    row = LogRollup.objects.get(hour=hour.replace(minute=0, second=0, microsecond=0))
    assert (row.request_count, row.tokens_in, row.latency_sum_ms, row.latency_count) == (3, top, top, 3)
    incremental = rollup_rows()
    rebuild_rollups()
    assert rollup_rows() == incremental
    entry = next(
        e for e in metrics_get(api, "time-series", reader)["daily"] if e["date"] == day.date().isoformat()
    )
    assert entry["request_count"] == 4
    assert entry["total_tokens"] == pytest.approx(top + 2**62, rel=1e-12)
    assert entry["p50_latency_ms"] == pytest.approx(2**62, rel=PERCENTILE_TOLERANCE)
    prompt = metrics_get(api, "prompts", reader)["prompts"][0]
    assert prompt["total_tokens_in"] == pytest.approx(top + 2**62, rel=1e-12)


def test_window_edges_are_whole_utc_hours(db):
    """Documented approximation: the hour containing ``now - days`` counts whole."""
    now = datetime(2030, 1, 15, 12, 30, tzinfo=UTC)
    Workspace.objects.create(id="edges", name="edges")
    times = [
        datetime(2030, 1, 8, 11, 59, tzinfo=UTC),  # the hour before the window's first: out
        datetime(2030, 1, 8, 12, 10, tzinfo=UTC),  # before now - 7d, but in its hour: in
        datetime(2030, 1, 8, 12, 45, tzinfo=UTC),  # in
        datetime(2030, 1, 15, 12, 29, tzinfo=UTC),  # in
    ]
    ingest([LogRecord(workspace_id="edges", prompt_name="p", version_tag="1", created_at=t) for t in times])
    Run.objects.bulk_create(
        Run(workspace_id="edges", run_id=f"r{i}", workflow_name="w", status="failed", created_at=t)
        for i, t in enumerate(times)
    )
    window = metrics.window_from("7d", now=now)
    body = metrics.time_series(workspace_id="edges", window=window)
    assert body["start"] == int(datetime(2030, 1, 8, 12, 30, tzinfo=UTC).timestamp())
    counts = {e["date"]: e["request_count"] for e in body["daily"]}
    assert counts["2030-01-08"] == 2
    assert counts["2030-01-15"] == 1
    assert sum(counts.values()) == 3
    assert (
        metrics.activity(workspace_id="edges", window=window, page=1, limit=50)["summary"]["total_runs"] == 3
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("window", ["1d", "7", "30D", "all", "7d ", "365d"])
def test_a_bad_window_is_upstreams_400(api, reader, endpoint, window):
    response = api.get(f"/v1/metrics/{endpoint}?window={window}", key=reader)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == WINDOW_MESSAGE
    assert body["code"] == "BAD_REQUEST"
    assert body["detailsType"] == "context"
    assert body["requestId"] == response["x-request-id"]


# --- per prompt version -----------------------------------------------------------------------------


def expected_prompts(ds: Dataset, days: int) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "in": 0, "out": 0, "cost": 0.0, "latencies": [], "runs": 0, "failed": 0}
    )
    for log in in_window(ds, ds.logs, days):
        g = groups[(log.prompt_name, log.version_tag)]
        g["n"] += 1
        g["in"] += log.tokens_in or 0
        g["out"] += log.tokens_out or 0
        g["cost"] += log.cost_usd or 0
        if log.latency_ms is not None:
            g["latencies"].append(log.latency_ms)
    for run in in_window(ds, ds.runs, days):
        if run.trace is not None and run.trace.prompt_name:
            key = (run.trace.prompt_name, run.trace.version_tag)
            if key in groups:
                groups[key]["runs"] += 1
                groups[key]["failed"] += run.status == RunStatus.FAILED
    rows = [
        {
            "prompt_name": name,
            "version_tag": version,
            "request_count": g["n"],
            "total_tokens_in": g["in"],
            "total_tokens_out": g["out"],
            "total_cost_usd": pytest.approx(g["cost"], abs=1e-9),
            "avg_latency_ms": pytest.approx(sum(g["latencies"]) / len(g["latencies"]), abs=0.006),
            "error_rate": pytest.approx(g["failed"] / g["runs"] if g["runs"] else 0),
        }
        for (name, version), g in groups.items()
    ]
    return sorted(rows, key=lambda row: -row["total_cost_usd"].expected)


@pytest.mark.parametrize(("window", "days"), [("7d", 7), ("30d", 30), ("90d", 90)])
def test_prompts_per_version_most_expensive_first(api, reader, dataset, window, days):
    body = metrics_get(api, "prompts", reader, f"?window={window}")
    assert body["window"] == window
    assert body["prompts"] == expected_prompts(dataset, days)
    costs = [row["total_cost_usd"] for row in body["prompts"]]
    assert costs == sorted(costs, reverse=True)
    assert any(row["error_rate"] > 0 for row in body["prompts"])


@pytest.mark.parametrize(
    ("limit", "count"), [("1", 1), ("2", 2), ("0", 1), ("-5", 1), ("1000", 3), ("abc", 3), ("", 3)]
)
def test_prompts_limit_is_clamped(api, reader, dataset, limit, count):
    body = metrics_get(api, "prompts", reader, f"?limit={limit}")
    assert len(body["prompts"]) == count
    assert body["prompts"] == expected_prompts(dataset, 30)[:count]


def test_prompts_limit_defaults_to_50_and_caps_at_100(api, reader, db):
    at = timezone.now() - timedelta(hours=2)
    ingest(
        [
            LogRecord(
                workspace_id="default", prompt_name=f"p{i:03}", version_tag="1", cost_usd=i, created_at=at
            )
            for i in range(120)
        ]
    )
    default = metrics_get(api, "prompts", reader)["prompts"]
    assert [row["prompt_name"] for row in default] == [f"p{i:03}" for i in range(119, 69, -1)]
    assert len(metrics_get(api, "prompts", reader, "?limit=100")["prompts"]) == 100
    assert len(metrics_get(api, "prompts", reader, "?limit=101")["prompts"]) == 100


# --- evaluations ------------------------------------------------------------------------------------


def test_evaluations_are_an_empty_list_without_results(api, reader, dataset):
    assert metrics_get(api, "evaluations", reader) == {"window": "30d", "evaluations": []}
    assert metrics_get(api, "evaluations", reader, "?window=90d&evaluation_id=3") == {
        "window": "90d",
        "evaluations": [],
    }


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "1.5"])
def test_evaluations_refuse_a_malformed_evaluation_id(api, reader, raw):
    response = api.get(f"/v1/metrics/evaluations?evaluation_id={raw}", key=reader)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == f"Invalid ID parameter: {raw}"


# --- activity ---------------------------------------------------------------------------------------


def make_prompts(workspace_id: str) -> None:
    """Two prompts with an active version, one with only a pending version (not yet visible)."""
    for name, status in [
        ("a", VersionStatus.ACTIVE),
        ("b", VersionStatus.ACTIVE),
        ("c", VersionStatus.PENDING),
    ]:
        prompt = Prompt.objects.create(workspace_id=workspace_id, name=name)
        for version in ("1.0.0", "1.1.0"):
            PromptVersion.objects.create(
                workspace_id=workspace_id,
                prompt=prompt,
                version=version,
                document={"name": name},
                sha256="0" * 64,
                driver="git",
                status=status,
            )


@pytest.mark.parametrize(("window", "days"), [("7d", 7), ("30d", 30), ("90d", 90)])
def test_activity_counts_the_window(api, reader, dataset, window, days):
    make_prompts("default")
    body = metrics_get(api, "activity", reader, f"?window={window}")
    runs = in_window(dataset, dataset.runs, days)
    assert body["window"] == window
    assert body["summary"] == {
        "total_runs": len(runs),
        "total_traces": len(in_window(dataset, dataset.traces, days)),
        "total_logs": len(in_window(dataset, dataset.logs, days)),
        "total_evaluations": 0,
        "active_prompts": 2,
        "failed_runs": sum(run.status == RunStatus.FAILED for run in runs),
    }
    newest = sorted(runs, key=lambda run: (run.created_at, run.pk), reverse=True)
    page = body["recent_runs"]
    assert page["total"] == len(runs)
    assert (page["page"], page["limit"], page["totalPages"]) == (1, 50, 1)
    assert [item["run_id"] for item in page["items"]] == [run.run_id for run in newest]
    first = newest[0]
    assert page["items"][0] == {
        "run_id": first.run_id,
        "workflow_name": first.workflow_name,
        "status": first.status,
        "input": None,
        "output": None,
        "trace_id": first.trace.trace_id if first.trace else None,
        "metadata": {},
        "created_at": int(first.created_at.timestamp()),
        "updated_at": int(first.updated_at.timestamp()),
    }


def test_activity_pages_through_the_windows_runs(api, reader, dataset):
    runs = sorted(in_window(dataset, dataset.runs, 30), key=lambda r: (r.created_at, r.pk), reverse=True)
    seen = []
    page = 1
    while True:
        body = metrics_get(api, "activity", reader, f"?page={page}&limit=7")["recent_runs"]
        assert (body["page"], body["limit"], body["total"]) == (page, 7, len(runs))
        assert body["totalPages"] == -(-len(runs) // 7)
        if not body["items"]:
            break
        seen += [item["run_id"] for item in body["items"]]
        page += 1
    assert seen == [run.run_id for run in runs]
    assert page == body["totalPages"] + 1


@pytest.mark.parametrize(
    ("query", "page", "limit"),
    [
        ("?page=0", 1, 50),
        ("?page=-3&limit=0", 1, 1),
        ("?page=abc&limit=xyz", 1, 50),
        ("?limit=500", 1, 100),
        ("?page=99999999999999999999", 99999999999999999999, 50),
    ],
)
def test_activity_clamps_page_and_limit(api, reader, dataset, query, page, limit):
    body = metrics_get(api, "activity", reader, query)["recent_runs"]
    assert (body["page"], body["limit"]) == (page, limit)
    expected_items = min(limit, body["total"]) if page == 1 else 0
    assert len(body["items"]) == expected_items


# --- tenancy and scopes -----------------------------------------------------------------------------


def all_metrics(api: Any, key: str, **kwargs: Any) -> dict[str, Any]:
    return {endpoint: metrics_get(api, endpoint, key, "?window=90d", **kwargs) for endpoint in ENDPOINTS}


def strip_clock(bodies: dict[str, Any]) -> dict[str, Any]:
    bodies = json.loads(json.dumps(bodies))
    bodies["time-series"].pop("start")
    bodies["time-series"].pop("end")
    return bodies


def test_each_workspace_sees_only_its_own_figures(api, make_key, db):
    default = build_dataset("default", seed=1, scale=0.5)
    alone = strip_clock(all_metrics(api, make_key("read")[1]))
    acme = build_dataset("acme", seed=2)
    make_prompts("acme")
    default_key, acme_key = make_key("read")[1], make_key("read", workspace="acme")[1]
    # The other workspace's data changes nothing here.
    assert strip_clock(all_metrics(api, default_key)) == alone
    acme_bodies = all_metrics(api, acme_key, workspace="acme")
    assert acme_bodies["prompts"]["prompts"] == expected_prompts(acme, 90)
    assert acme_bodies["activity"]["summary"]["total_logs"] == len(in_window(acme, acme.logs, 90))
    assert acme_bodies["activity"]["summary"]["active_prompts"] == 2
    assert alone["activity"]["summary"]["total_logs"] == len(in_window(default, default.logs, 90))
    assert alone["activity"]["summary"]["active_prompts"] == 0
    acme_runs = {item["run_id"] for item in acme_bodies["activity"]["recent_runs"]["items"]}
    assert acme_runs and all(run_id.startswith("acme-") for run_id in acme_runs)
    # A master key reads the workspace it names.
    master = make_key("read", workspace=None)[1]
    assert strip_clock(all_metrics(api, master, workspace="acme")) == strip_clock(acme_bodies)


def test_an_empty_workspace_has_zeros(api, make_key, dataset):
    key = make_key("read", workspace="empty")[1]
    bodies = all_metrics(api, key, workspace="empty")
    assert len(bodies["time-series"]["daily"]) == 91
    for entry in bodies["time-series"]["daily"]:
        check_day(entry, None)
    assert bodies["prompts"] == {"window": "90d", "prompts": []}
    assert bodies["evaluations"] == {"window": "90d", "evaluations": []}
    assert bodies["activity"] == {
        "window": "90d",
        "summary": {
            "total_runs": 0,
            "total_traces": 0,
            "total_logs": 0,
            "total_evaluations": 0,
            "active_prompts": 0,
            "failed_runs": 0,
        },
        "recent_runs": {"items": [], "total": 0, "page": 1, "limit": 50, "totalPages": 0},
    }


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("scopes", ["ingest", "write", "admin", "write,ingest,admin"])
def test_the_read_scope_is_required(api, make_key, endpoint, scopes):
    key = make_key(scopes)[1]
    response = api.get(f"/v1/metrics/{endpoint}", key=key)
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "FORBIDDEN"
    assert response.json()["error"] == "Missing required scope: read"
    assert api.get(f"/v1/metrics/{endpoint}").status_code == 401


@pytest.mark.parametrize(
    ("endpoint", "queries"), [("time-series", 3), ("prompts", 2), ("evaluations", 1), ("activity", 6)]
)
def test_each_endpoint_runs_a_fixed_number_of_queries(
    api, reader, dataset, endpoint, queries, django_assert_num_queries
):
    """However many days and rows: no query per day, per prompt version or per run."""
    metrics_get(api, "activity", reader)  # the key is cached from now on
    with django_assert_num_queries(queries):
        metrics_get(api, endpoint, reader, "?window=90d")


def test_daily_latency_merges_are_cached_until_the_days_rows_change(
    api, reader, dataset, django_assert_num_queries
):
    first = metrics_get(api, "time-series", reader, "?window=7d")
    with django_assert_num_queries(2):  # sums and runs: every day's merged histogram is cached
        second = metrics_get(api, "time-series", reader, "?window=7d")
    # The window is rolling: the clock may tick a second between the two requests.
    assert {k: v for k, v in second.items() if k not in ("start", "end")} == {
        k: v for k, v in first.items() if k not in ("start", "end")
    }
    assert 0 <= second["end"] - first["end"] <= 2
    assert second["end"] - second["start"] == first["end"] - first["start"]

    # A new log today: only today is merged again.
    now = timezone.now()
    ingest(
        [
            LogRecord(
                workspace_id="default", prompt_name="p", version_tag="1", latency_ms=10**6, created_at=now
            )
        ]
    )
    dataset.logs.append(LogRecord(latency_ms=10**6, created_at=now))
    with django_assert_num_queries(3):
        body = metrics_get(api, "time-series", reader, "?window=7d")
    expected = expected_daily(dataset, 7)
    for entry in body["daily"]:
        check_day(entry, expected.get(date.fromisoformat(entry["date"])))

    # A past day's latencies change and its rollups are rebuilt: its cached merge is not used.
    day = utc_date(now - timedelta(days=2))
    before = next(entry for entry in body["daily"] if entry["date"] == day.isoformat())
    changed = [log for log in dataset.logs if utc_date(log.created_at) == day and log.latency_ms is not None]
    LogRecord.objects.filter(pk__in=[log.pk for log in changed[::2]]).update(latency_ms=5 * 10**6)
    for log in changed[::2]:
        log.latency_ms = 5 * 10**6
    rebuild_rollups(workspace_id="default", since=datetime.combine(day, datetime.min.time(), UTC))
    body = metrics_get(api, "time-series", reader, "?window=7d")
    expected = expected_daily(dataset, 7)
    for entry in body["daily"]:
        check_day(entry, expected.get(date.fromisoformat(entry["date"])))
    after = next(entry for entry in body["daily"] if entry["date"] == day.isoformat())
    assert after["p50_latency_ms"] > 10 * before["p50_latency_ms"]


# --- the histogram ------------------------------------------------------------------------------------


def test_latency_buckets_are_5_percent_wide():
    assert latency_bucket(0) == 0
    assert latency_bucket(0.5) == 0
    assert latency_bucket(1) == 1
    assert latency_bucket(2**63) < len(BOUNDS)
    rng = random.Random(3)
    for _ in range(2000):
        value = rng.uniform(1, 3_600_000)
        index = latency_bucket(value)
        assert BOUNDS[index - 1] <= value < BOUNDS[index]
        assert BOUNDS[index] / BOUNDS[index - 1] == pytest.approx(1.05)


@pytest.mark.parametrize("seed", range(6))
def test_histogram_percentiles_are_within_a_few_percent(seed):
    rng = random.Random(seed)
    size = rng.choice([2, 3, 10, 100, 5000])
    mu = rng.choice([1, 4, 7, 11])  # ~3 ms to ~1 minute medians; tails to 10 minutes and beyond
    values = [int(rng.lognormvariate(mu, 1.5)) for _ in range(size)]
    histogram = Counter(latency_bucket(v) for v in values)
    for q in (0.5, 0.95, 0.99):
        assert_percentile(histogram_quantile(histogram, q), values, q)
    assert histogram_quantile({}, 0.5) is None


# --- rebuilding -------------------------------------------------------------------------------------


def rollup_rows(workspace_id: str | None = None) -> list[tuple[Any, ...]]:
    rows = (
        LogRollup.objects.all()
        if workspace_id is None
        else LogRollup.objects.filter(workspace_id=workspace_id)
    )
    return sorted(
        (
            r.workspace_id,
            r.hour,
            r.prompt_name,
            r.version_tag,
            r.request_count,
            r.error_count,
            r.tokens_in,
            r.tokens_out,
            round(r.cost_usd, 9),
            r.latency_count,
            r.latency_sum_ms,
            sorted((int(k), v) for k, v in r.latency_histogram.items()),
        )
        for r in rows
    )


def test_a_rebuild_reproduces_the_incremental_rollups(db):
    build_dataset("default", seed=11)
    build_dataset("acme", seed=12)
    incremental = rollup_rows()
    LogRollup.objects.all().delete()
    assert rebuild_rollups() == len(incremental)
    assert rollup_rows() == incremental
    LogRollup.objects.filter(workspace_id="acme").update(request_count=0, latency_histogram={})
    assert rebuild_rollups(workspace_id="acme") == len(rollup_rows("acme"))
    assert rollup_rows() == incremental


def test_a_rebuild_since_picks_up_new_prices(api, reader, dataset):
    cutoff = dataset.now - timedelta(days=3)
    LogRecord.objects.filter(workspace_id="default", created_at__gte=cutoff).update(cost_usd=1.0)
    old = {r[:4]: r for r in rollup_rows() if r[1] < cutoff - timedelta(hours=1)}
    rebuild_rollups(workspace_id="default", since=cutoff)
    for log in dataset.logs:
        if log.created_at >= cutoff:
            log.cost_usd = 1.0
    assert metrics_get(api, "prompts", reader, "?window=90d")["prompts"] == expected_prompts(dataset, 90)
    assert {r[:4]: r for r in rollup_rows() if r[1] < cutoff - timedelta(hours=1)} == old


def test_a_rebuild_until_a_prune_cutoff_drops_the_pruned_hours(api, reader, dataset):
    cutoff = dataset.now - timedelta(days=20)
    LogRecord.objects.filter(workspace_id="default", created_at__lt=cutoff).delete()
    rebuild_rollups(workspace_id="default", until=cutoff)
    assert not LogRollup.objects.filter(hour__lt=cutoff - timedelta(hours=1)).exists()
    dataset.logs = [log for log in dataset.logs if log.created_at >= cutoff]
    assert metrics_get(api, "activity", reader, "?window=90d")["summary"]["total_logs"] == len(dataset.logs)
    assert metrics_get(api, "prompts", reader, "?window=90d")["prompts"] == expected_prompts(dataset, 90)


# --- concurrency --------------------------------------------------------------------------------------

CONCURRENT_WS = "concurrent"
WORKERS, ROUNDS, PER_ROUND = 4, 10, 12


def concurrent_batch(worker: int, round_: int, hour: datetime) -> list[LogRecord]:
    """Deterministic logs: most hit rows every worker hits, some a row of the worker's own.
    Costs are multiples of 1/1024, so float sums are exact in any order."""
    rng = random.Random(worker * 10_000 + round_)
    shared = [("shared", "1.0.0"), ("shared", "2.0.0")]
    return [
        LogRecord(
            workspace_id=CONCURRENT_WS,
            prompt_name=(shared[i % 2] if i % 3 else (f"own{worker}", "1"))[0],
            version_tag=(shared[i % 2] if i % 3 else (f"own{worker}", "1"))[1],
            tokens_in=rng.randint(0, 500),
            tokens_out=rng.choice([None, rng.randint(0, 500)]),
            cost_usd=rng.choice([None, rng.randint(1, 64) / 1024]),
            latency_ms=rng.choice([None, rng.randint(0, 20_000)]),
            status=rng.choice(["ok", "ok", "error"]),
            created_at=hour + timedelta(minutes=rng.randint(0, 59), seconds=rng.randint(0, 59)),
        )
        for i in range(PER_ROUND)
    ]


def ingest_concurrently(worker: int, hour: datetime) -> None:
    for round_ in range(ROUNDS):
        ingest(concurrent_batch(worker, round_, hour))


def rebuild_repeatedly(times: int) -> None:
    for _ in range(times):
        rebuild_rollups(workspace_id=CONCURRENT_WS)
        time.sleep(0.01)


def expected_concurrent_rows(hour: datetime) -> list[tuple[Any, ...]]:
    groups: dict[tuple[str, str], list[Any]] = {}
    for worker in range(WORKERS):
        for round_ in range(ROUNDS):
            for log in concurrent_batch(worker, round_, hour):
                g = groups.setdefault((log.prompt_name, log.version_tag), [0, 0, 0, 0, 0.0, 0, 0, Counter()])
                g[0] += 1
                g[1] += log.status == "error"
                g[2] += log.tokens_in or 0
                g[3] += log.tokens_out or 0
                g[4] += log.cost_usd or 0
                if log.latency_ms is not None:
                    g[5] += 1
                    g[6] += log.latency_ms
                    g[7][latency_bucket(log.latency_ms)] += 1
    return sorted(
        (CONCURRENT_WS, hour, name, version, *g[:4], round(g[4], 9), g[5], g[6], sorted(g[7].items()))
        for (name, version), g in groups.items()
    )


def concurrent_hour() -> datetime:
    return (timezone.now() - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL run")
def test_concurrent_ingest_and_rebuilds_keep_exact_totals_on_postgresql(transactional_db):
    """Real concurrent connections (one per thread) upserting the same rows, while another
    connection rebuilds them: the totals are exact."""
    Workspace.objects.create(id=CONCURRENT_WS, name=CONCURRENT_WS)
    hour = concurrent_hour()
    barrier = threading.Barrier(WORKERS + 1)
    errors: list[BaseException] = []

    def run(target: Any, *args: Any) -> None:
        try:
            barrier.wait()
            target(*args)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(ingest_concurrently, w, hour)) for w in range(WORKERS)]
    threads.append(threading.Thread(target=run, args=(rebuild_repeatedly, 6)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert LogRecord.objects.filter(workspace_id=CONCURRENT_WS).count() == WORKERS * ROUNDS * PER_ROUND
    expected = expected_concurrent_rows(hour)
    assert rollup_rows(CONCURRENT_WS) == expected
    rebuild_rollups(workspace_id=CONCURRENT_WS)
    assert rollup_rows(CONCURRENT_WS) == expected


# The SQLite test database is an in-memory shared cache, whose table locks do not wait: production's
# concurrency (worker processes on one database file) is reproduced with real processes instead.
_PROCESS_SETUP = """
import django
django.setup()
from django.core.management import call_command
from tenancy.models import Workspace
call_command("migrate", verbosity=0)
Workspace.objects.create(id="concurrent", name="concurrent")
"""
_PROCESS_WORKER = """
import sys, time, django
django.setup()
from datetime import datetime
from tests.telemetry import test_metrics as t
role, arg, hour, start = sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), sys.argv[4]
time.sleep(max(0.0, float(start) - time.time()))
if role == "ingest":
    t.ingest_concurrently(arg, hour)
else:
    t.rebuild_repeatedly(arg)
"""
_PROCESS_REPORT = """
import json, django
django.setup()
from tests.telemetry import test_metrics as t
from telemetry.models import LogRecord
from telemetry.rollups import rebuild_rollups
before = t.rollup_rows(t.CONCURRENT_WS)
rebuild_rollups(workspace_id=t.CONCURRENT_WS)
after = t.rollup_rows(t.CONCURRENT_WS)
print(json.dumps({"logs": LogRecord.objects.count(), "before": before, "after": after}, default=str))
"""


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite run")
def test_concurrent_ingest_and_rebuilds_keep_exact_totals_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "DATA_DIR": str(tmp_path),
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    root = str(settings.BASE_DIR)

    def python(code: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", code, *args], cwd=root, env=env, stdout=subprocess.PIPE, text=True
        )

    def finish(process: subprocess.Popen[str]) -> str:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        return out

    finish(python(_PROCESS_SETUP))
    hour = concurrent_hour()
    start = str(time.time() + 2)
    processes = [python(_PROCESS_WORKER, "ingest", str(w), hour.isoformat(), start) for w in range(WORKERS)]
    processes.append(python(_PROCESS_WORKER, "rebuild", "6", hour.isoformat(), start))
    for process in processes:
        finish(process)
    report = json.loads(finish(python(_PROCESS_REPORT)))
    expected = json.loads(json.dumps(expected_concurrent_rows(hour), default=str))
    assert report["logs"] == WORKERS * ROUNDS * PER_ROUND
    assert report["before"] == expected
    assert report["after"] == expected
