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
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = Path(sys.executable).with_name("promptmetrics-server")
MARK_BEGIN = "<!-- auth_read:begin -->"
MARK_END = "<!-- auth_read:end -->"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("server exited during start-up")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not become healthy")


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, []))
    return pids


def memory_kib(pids: list[int]) -> tuple[int, int]:
    rss = pss = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        pss += int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1))  # type: ignore[union-attr]
    return rss, pss


def parse_wrk(output: str) -> dict[str, str]:
    result = {"rps": re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        result[f"p{pct}"] = re.search(rf"\s{pct}%\s+(\S+)", output).group(1)  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result["non2xx"] = errors.group(1) if errors else "0"
    return result


def wrk(url: str, duration: int, connections: int, headers: list[str]) -> str:
    command = ["wrk", "-t2", f"-c{connections}", "--latency", *headers]
    subprocess.run([*command, "-d3s", url], check=True, capture_output=True)  # warm-up
    return subprocess.run(
        [*command, f"-d{duration}s", url], check=True, capture_output=True, text=True
    ).stdout


def baseline(duration: int, connections: int, workers: int, threads: int) -> str:
    """Requests/s of a hello-world app under the same gunicorn settings, measured right after."""
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "-k", "gthread" if threads > 1 else "sync", "-w", str(workers)]
    command += ["--threads", str(threads), "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT / "bench")]
    command += ["--no-control-socket", "hello_wsgi:application"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        return parse_wrk(wrk(f"http://127.0.0.1:{port}/", duration, connections, []))["rps"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def run(duration: int, connections: int) -> dict[str, str]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is required (Debian: apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="pm-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DATA_DIR", "DEBUG"}}
    env.update({"PORT": str(port), "RATE_LIMIT_MAX_REQUESTS": "100000"})
    log = open(workdir / "server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen([str(SERVER)], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        key = re.search(r"pm_[0-9a-f]{64}", (workdir / "server.log").read_text()).group(0)  # type: ignore[union-attr]
        output = wrk(url + "/v1/api-keys/me", duration, connections, ["-H", f"X-API-Key: {key}"])
        rss, pss = memory_kib(process_tree(server.pid))
        workers = len(process_tree(server.pid)) - 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)
    result = parse_wrk(output)
    threads = int(os.environ.get("THREADS", "1"))
    result["baseline"] = baseline(duration, connections, workers, threads)
    result.update(
        {
            "rss": f"{rss / 1024:.0f}",
            "pss": f"{pss / 1024:.0f}",
            "workers": f"{workers} x {threads}",
            "connections": str(connections),
            "duration": str(duration),
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "cpus": str(os.cpu_count()),
        }
    )
    return result


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
        text = args.write.read_text()
        start, end = text.index(MARK_BEGIN), text.index(MARK_END) + len(MARK_END)
        args.write.write_text(text[:start] + table + text[end:])


if __name__ == "__main__":
    main()
