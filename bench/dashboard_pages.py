"""Benchmark: the server time of every dashboard page on demo data of 1M logs and 100k traces.

Seeds a SQLite database under ``--data-dir`` once with ``seed_demo`` (reused by later runs), then
requests each page in-process through Django's test client as a signed-in superuser: two warm-up
requests, then ``--repeat`` timed ones; reports p50 and p95 of the server time (the whole Django
request, templates included; no network, no browser) and the number of SQL queries per request.

    python bench/dashboard_pages.py [--data-dir DIR] [--logs 1000000] [--traces 100000]
                                    [--repeat 30] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK_BEGIN = "<!-- dashboard:begin -->"
MARK_END = "<!-- dashboard:end -->"
WORKSPACE = "demo"
TARGET_P95_MS = 300


def _setup(data_dir: Path) -> None:
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("API_KEY_SALT", "bench-salt-0000000000")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _seed(data_dir: Path, logs: int, traces: int) -> None:
    from django.core.management import call_command

    stamp = data_dir / f".seeded-{logs}-{traces}"
    call_command("migrate", verbosity=0)
    if stamp.exists():
        return
    started = time.monotonic()
    sizes = ["--logs", str(logs), "--traces", str(traces), "--results", "100000"]
    call_command("seed_demo", "--workspace", WORKSPACE, *sizes)
    stamp.write_text(f"seeded in {time.monotonic() - started:.0f} s\n")


def _pages() -> list[tuple[str, str]]:
    from evaluations.models import Dataset, Evaluation
    from registry.models import Prompt
    from telemetry.models import LogRecord, Run, Trace

    def newest(model: type) -> object:
        return model.objects.filter(workspace_id=WORKSPACE).order_by("-created_at", "-id").first()

    log, trace, run = newest(LogRecord), newest(Trace), newest(Run)
    prompt = Prompt.objects.filter(workspace_id=WORKSPACE).order_by("name").first()
    evaluation = Evaluation.objects.filter(workspace_id=WORKSPACE).order_by("id").first()
    dataset = Dataset.objects.filter(workspace_id=WORKSPACE).order_by("id").first()
    pages = [
        ("overview, 7d", "/"),
        ("overview, 90d", "/?window=90d"),
        ("prompts", "/prompts"),
        ("logs", "/logs"),
        ("logs, filtered by model", f"/logs?model={log.model}"),
        ("traces", "/traces"),
        ("traces, errors only", "/traces?status=error"),
        ("runs", "/runs"),
        ("runs, failed only", "/runs?status=failed"),
        ("evaluations", "/evaluations"),
        ("datasets", "/datasets"),
        ("operations", "/operations"),
        ("audit log", "/operations/audit"),
    ]
    if prompt is not None:
        pages += [
            ("prompt", f"/prompts/{prompt.name}"),
            ("prompt diff", f"/prompts/{prompt.name}/diff"),
            ("prompt render", f"/prompts/{prompt.name}/render"),
            ("label history", f"/prompts/{prompt.name}/labels/production/history"),
        ]
    pages += [
        ("log", f"/logs/{log.pk}"),
        ("trace", f"/traces/{trace.trace_id}"),
        ("run", f"/runs/{run.run_id}"),
    ]
    if evaluation is not None:
        pages.append(("evaluation, 30d", f"/evaluations/{evaluation.pk}"))
        pages.append(("evaluation, 90d", f"/evaluations/{evaluation.pk}?window=90d"))
    if dataset is not None:
        pages.append(("dataset", f"/datasets/{dataset.pk}"))
    return pages


def _cold(client: object, path: str) -> float:
    """The time of a request with every cache empty: the first view after a restart or a flush."""
    from django.core.cache import cache

    from telemetry import metrics

    cache.clear()
    metrics._log_counts.clear()
    started = time.perf_counter()
    client.get(path)  # type: ignore[attr-defined]
    return (time.perf_counter() - started) * 1000


def _measure(client: object, path: str, repeat: int) -> tuple[float, float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(path)  # type: ignore[attr-defined]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, len(queries.captured_queries), response.status_code


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/pm-dashboard-bench"))
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--write", type=Path, help="markdown file whose dashboard block to replace")
    parser.add_argument("--seed-only", action="store_true", help="prepare the data and stop")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    _setup(args.data_dir)
    _seed(args.data_dir, args.logs, args.traces)
    if args.seed_only:
        return

    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True})
    client = Client()
    client.force_login(user)
    session = client.session
    session["dashboard_workspace"] = WORKSPACE
    session.save()

    lines = [
        f"{datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} CPUs, SQLite, {args.logs:,} logs, "
        f"{args.traces:,} traces, {args.repeat} timed requests per page, in-process (server time only)",
        "",
        "| page | p50 (ms) | p95 (ms) | SQL queries | p95 < 300 ms | first view, caches empty (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for name, path in _pages():
        cold = _cold(client, path)
        p50, p95, queries, _ = _measure(client, path, args.repeat)
        verdict = "yes" if p95 < TARGET_P95_MS else "NO"
        lines.append(f"| {name} | {p50:.1f} | {p95:.1f} | {queries} | {verdict} | {cold:.0f} |")
        sys.stdout.write(lines[-1] + "\n")
        sys.stdout.flush()
    block = "\n".join([MARK_BEGIN, *lines, MARK_END])
    if args.write:
        from common import replace_block

        replace_block(args.write, MARK_BEGIN, MARK_END, block)
    else:
        sys.stdout.write(block + "\n")


if __name__ == "__main__":
    main()
