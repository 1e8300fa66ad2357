"""Benchmark: telemetry ingest and reads against promptmetrics-server (SQLite unless DATABASE_URL).

1. ``POST /v1/logs`` (one log per request) at concurrency 16 on an empty table;
2. ``seed_demo`` adds ``--logs`` logs (1M by default) to the same workspace;
3. ``POST /v1/logs`` again: the ingest rate must not depend on the table's size;
4. ``GET /v1/logs`` first page, and a keyset page deep in the table (``cursor``);
5. ``GET /v1/metrics/time-series?window=30d``;
6. ``GET /v1/traces/{id}`` of a trace with 50 spans.

    python bench/telemetry_load.py [--duration 20] [--logs 1000000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import measure, replace_block, server

MARK_BEGIN = "<!-- telemetry:begin -->"
MARK_END = "<!-- telemetry:end -->"
LOG = {
    "prompt_name": "welcome",
    "version_tag": "1.0.0",
    "provider": "openai",
    "model": "gpt-4o-mini",
    "tokens_in": 420,
    "tokens_out": 180,
    "latency_ms": 830,
    "metadata": {"user": "u-42", "feature": "onboarding"},
}


def call(url: str, key: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"X-API-Key": key, "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read() or b"null")


def trace_with_spans(url: str, key: str, count: int) -> str:
    trace_id = call(f"{url}/v1/traces", key, "POST", {"prompt_name": "welcome", "version_tag": "1.0.0"})[
        "trace_id"
    ]
    start = int(time.time() * 1000)
    spans = [
        {"span_id": f"s_root_{trace_id}", "name": "agent", "start_time": start, "end_time": start + 5000}
    ]
    spans += [
        {
            "span_id": f"s_{i}_{trace_id}",
            "parent_id": f"s_root_{trace_id}",
            "name": f"step-{i}",
            "start_time": start + i * 90,
            "end_time": start + i * 90 + 80,
            "model": "gpt-4o-mini",
            "tokens_in": 100,
            "tokens_out": 50,
            "status": "ok",
        }
        for i in range(count - 1)
    ]
    call(f"{url}/v1/traces/{trace_id}/spans", key, "POST", spans)
    return trace_id


def deep_cursor(url: str, key: str, total: int) -> str:
    # One OFFSET read to find a cursor 90 % of the way down; the benchmark then seeks from there.
    page = call(f"{url}/v1/logs?limit=1&page={int(total * 0.9)}", key)
    return page["nextCursor"]


def _database_env() -> dict[str, str]:
    """SQLite by default; with DATABASE_URL set, that PostgreSQL database (it must be empty)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return {}
    return {"DATABASE_URL": url, "SECRET_KEY": "bench-secret-key", "API_KEY_SALT": "bench-api-key-salt-000"}


def run(duration: int, logs: int) -> dict[str, dict[str, str]]:
    results: dict[str, dict[str, str]] = {}
    body = json.dumps(LOG)
    with server(_database_env()) as srv:
        results["ingest, empty table"] = measure(srv, "/v1/logs", duration, 16, body=body)
        started = time.perf_counter()
        srv.manage("seed_demo", "--workspace", "default", "--append", "--logs", str(logs), "--traces", "0")
        sys.stderr.write(f"seeded {logs} logs in {time.perf_counter() - started:.0f} s\n")
        total = call(f"{srv.url}/v1/logs?limit=1", srv.key)["total"]
        results[f"ingest, {total:,} logs"] = measure(srv, "/v1/logs", duration, 16, body=body)
        results["GET /v1/logs first page"] = measure(srv, "/v1/logs?limit=50", duration, 16)
        cursor = deep_cursor(srv.url, srv.key, total)
        results["GET /v1/logs keyset page at 90 %"] = measure(
            srv, f"/v1/logs?limit=50&cursor={cursor}", duration, 16
        )
        results["GET /v1/metrics/time-series 30d"] = measure(
            srv, "/v1/metrics/time-series?window=30d", duration, 16
        )
        trace_id = trace_with_spans(srv.url, srv.key, 50)
        results["GET /v1/traces/{id} (50 spans)"] = measure(srv, f"/v1/traces/{trace_id}", duration, 16)
    return results


def markdown(results: dict[str, dict[str, str]]) -> str:
    first = next(iter(results.values()))
    database = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
    lines = [
        MARK_BEGIN,
        f"{first['date']}, {first['cpus']} CPUs, {first['workers']} workers x threads, 16 connections, "
        f"{first['duration']} s per row, database: {database}",
        "",
        "| scenario | req/s | p50 | p90 | p99 | non-2xx | RSS all (MiB) | hello-world req/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['rps']} | {r['p50']} | {r['p90']} | {r['p99']} | {r['non2xx']} | {r['rss']} "
            f"| {r['baseline']} |"
        )
    lines.append(MARK_END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--write", type=Path, help="replace the results block in this markdown file")
    args = parser.parse_args()
    table = markdown(run(args.duration, args.logs))
    sys.stdout.write(table + "\n")
    if args.write:
        replace_block(args.write, MARK_BEGIN, MARK_END, table)


if __name__ == "__main__":
    main()
