"""Benchmark: evaluation results, ingested in batches and read back as trends.

1. ``POST /v1/evaluations/{name}/results`` with arrays of 1,000 results (concurrency 4): results/s;
2. ``seed_demo --results`` adds ``--results`` results (1M by default) over 90 days to six suites;
3. ``GET /v1/evaluations/{id}/trend?window=90d`` (day buckets) and ``&bucket=hour`` over the
   busiest seeded suite, and ``/compare`` of two of its versions, at concurrency 16.

    python bench/eval_results.py [--duration 20] [--results 1000000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from common import measure, replace_block, server
from telemetry_load import call

MARK_BEGIN = "<!-- eval_results:begin -->"
MARK_END = "<!-- eval_results:end -->"
BATCH = 1000
VERSIONS = ("1.4.2", "1.5.0")


def batch_body() -> str:
    rng = random.Random(7)
    return json.dumps(
        [
            {"run_id": f"run-{i}", "score": round(rng.random(), 3), "version_tag": rng.choice(VERSIONS)}
            for i in range(BATCH)
        ]
    )


def busiest_suite(url: str, key: str) -> tuple[int, list[str]]:
    """The seeded suite with the most results, and its versions (from a 90-day comparison)."""
    suites = call(f"{url}/v1/evaluations?limit=100", key)["items"]
    best: tuple[int, int, list[str]] = (-1, 0, [])
    for suite in suites:
        if not suite["name"].endswith("-quality"):
            continue
        points = call(f"{url}/v1/evaluations/{suite['id']}/trend?window=90d", key)["points"]
        total = sum(p["count"] for p in points)
        if total > best[0]:
            versions = _versions(url, key, suite["id"])
            best = (total, suite["id"], versions)
    return best[1], best[2]


def _versions(url: str, key: str, suite_id: int) -> list[str]:
    results = call(f"{url}/v1/evaluations/{suite_id}/results?limit=100", key)["items"]
    versions = sorted({r["version_tag"] for r in results if r["version_tag"]})
    return versions if len(versions) > 1 else [*versions, "0.0.0"][:2] or ["0.0.0", "0.0.1"]


def run(duration: int, results: int) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    with server() as srv:
        call(f"{srv.url}/v1/evaluations", srv.key, "POST", {"name": "bench", "prompt_name": "welcome"})
        rows["POST results, arrays of 1,000"] = measure(
            srv, "/v1/evaluations/bench/results", duration, 4, body=batch_body()
        )
        started = time.perf_counter()
        srv.manage(
            "seed_demo", "--workspace", "default", "--append", "--logs", "0", "--traces", "0",
            "--runs", "0", "--results", str(results),
        )  # fmt: skip
        sys.stderr.write(f"seeded {results} results in {time.perf_counter() - started:.0f} s\n")
        suite, versions = busiest_suite(srv.url, srv.key)
        base = f"/v1/evaluations/{suite}"
        rows["GET trend 90d, day buckets"] = measure(srv, f"{base}/trend?window=90d", duration, 16)
        hourly = f"{base}/trend?window=90d&bucket=hour"
        rows["GET trend 90d, hour buckets"] = measure(srv, hourly, duration, 16)
        pair = f"{versions[0]},{versions[-1]}"
        rows[f"GET compare {pair}"] = measure(srv, f"{base}/compare?versions={pair}", duration, 16)
    return rows


def markdown(rows: dict[str, dict[str, str]], results: int) -> str:
    first = next(iter(rows.values()))
    lines = [
        MARK_BEGIN,
        f"{first['date']}, {first['cpus']} CPUs, {first['workers']} workers x threads, {first['duration']} s "
        f"per row, SQLite, {results:,} seeded results",
        "",
        "| scenario | conns | req/s | results/s | p50 | p90 | p99 | non-2xx | hello-world req/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        per_second = f"{float(r['rps']) * BATCH:,.0f}" if name.startswith("POST") else ""
        lines.append(
            f"| {name} | {r['connections']} | {r['rps']} | {per_second} | {r['p50']} | {r['p90']} "
            f"| {r['p99']} | {r['non2xx']} | {r['baseline']} |"
        )
    lines.append(MARK_END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--write", type=Path, help="replace the results block in this markdown file")
    args = parser.parse_args()
    table = markdown(run(args.duration, args.results), args.results)
    sys.stdout.write(table + "\n")
    if args.write:
        replace_block(args.write, MARK_BEGIN, MARK_END, table)


if __name__ == "__main__":
    main()
