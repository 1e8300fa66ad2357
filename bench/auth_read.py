"""Benchmark: authenticated ``GET /v1/api-keys/me`` at concurrency 16 against promptmetrics-server.

Starts the server from this environment's ``promptmetrics-server`` in an empty directory with its
default settings, except that the rate limit is raised so that the limiter is still consulted on
every request but does not turn the load into 429s. Drives it with wrk (a second process), then
reports throughput, latency percentiles and the memory of all server processes (RSS, and PSS, which
counts pages shared by the forked workers once).

    python bench/auth_read.py [--duration 20] [--connections 16] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import measure, replace_block, server

MARK_BEGIN = "<!-- auth_read:begin -->"
MARK_END = "<!-- auth_read:end -->"


def run(duration: int, connections: int) -> dict[str, str]:
    with server() as srv:
        return measure(srv, "/v1/api-keys/me", duration, connections)


def markdown(r: dict[str, str]) -> str:
    return (
        f"{MARK_BEGIN}\n"
        "| date | CPUs | workers x threads | conns | duration | req/s | p50 | p90 | p99 | non-2xx "
        "| RSS all (MiB) | PSS all (MiB) | hello-world req/s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {r['date']} | {r['cpus']} | {r['workers']} | {r['connections']} | {r['duration']} s | {r['rps']} "
        f"| {r['p50']} | {r['p90']} | {r['p99']} | {r['non2xx']} | {r['rss']} | {r['pss']} "
        f"| {r['baseline']} |\n"
        f"{MARK_END}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--write", type=Path, help="replace the results block in this markdown file")
    args = parser.parse_args()
    table = markdown(run(args.duration, args.connections))
    sys.stdout.write(table + "\n")
    if args.write:
        replace_block(args.write, MARK_BEGIN, MARK_END, table)


if __name__ == "__main__":
    main()
