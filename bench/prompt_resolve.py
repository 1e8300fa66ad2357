"""Benchmark: resolve + render ``GET /v1/prompts/{name}?label=production&variables[name]=Alice``
at concurrency 16 against promptmetrics-server (SQLite, git driver), and the latency of creating a
version (one Git commit + tag each).

    python bench/prompt_resolve.py [--duration 20] [--connections 16] [--creates 200]
                                   [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

from common import measure, replace_block, server

MARK_BEGIN = "<!-- prompt_resolve:begin -->"
MARK_END = "<!-- prompt_resolve:end -->"
PATH = "/v1/prompts/welcome?label=production&variables[name]=Alice"


def post(url: str, key: str, body: dict[str, object]) -> float:
    """POST a JSON body, return the seconds it took; anything but a 2xx aborts the benchmark."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return time.perf_counter() - started


def document(version: str) -> dict[str, object]:
    return {
        "name": "welcome",
        "version": version,
        "messages": [
            {"role": "system", "content": "You are a friendly assistant for {{company}}."},
            {"role": "user", "content": "Say hello to {{name}}."},
        ],
        "variables": {"name": {"type": "string", "required": True}},
        "model_config": {"model": "gpt-4o", "temperature": 0.7},
    }


def run(duration: int, connections: int, creates: int) -> dict[str, str]:
    with server() as srv:
        create_times = [post(f"{srv.url}/v1/prompts", srv.key, document(f"1.0.{i}")) for i in range(creates)]
        post(f"{srv.url}/v1/prompts/welcome/labels", srv.key, {"name": "production", "version_tag": "1.0.0"})
        result = measure(srv, PATH, duration, connections)
    ordered = sorted(create_times)
    result["create_p50"] = f"{statistics.median(ordered) * 1000:.1f} ms"
    result["create_p99"] = f"{ordered[int(len(ordered) * 0.99) - 1] * 1000:.1f} ms"
    result["creates"] = str(creates)
    return result


def markdown(r: dict[str, str]) -> str:
    return (
        f"{MARK_BEGIN}\n"
        "| date | CPUs | workers | conns | duration | resolve+render req/s | p50 | p90 | p99 | non-2xx "
        "| RSS all (MiB) | hello-world req/s | create p50 | create p99 (n) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {r['date']} | {r['cpus']} | {r['workers']} | {r['connections']} | {r['duration']} s | {r['rps']} "
        f"| {r['p50']} | {r['p90']} | {r['p99']} | {r['non2xx']} | {r['rss']} | {r['baseline']} "
        f"| {r['create_p50']} | {r['create_p99']} ({r['creates']}) |\n"
        f"{MARK_END}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--write", type=Path, help="replace the results block in this markdown file")
    args = parser.parse_args()
    table = markdown(run(args.duration, args.connections, args.creates))
    sys.stdout.write(table + "\n")
    if args.write:
        replace_block(args.write, MARK_BEGIN, MARK_END, table)


if __name__ == "__main__":
    main()
