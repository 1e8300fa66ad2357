"""Shared pieces of the HTTP benchmarks: start promptmetrics-server, drive it with wrk, measure it."""

from __future__ import annotations

import json
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = Path(sys.executable).with_name("promptmetrics-server")


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


@dataclass
class BenchServer:
    url: str
    key: str
    process: subprocess.Popen[bytes]
    workdir: Path
    env: dict[str, str]

    def manage(self, *args: str) -> None:
        """Run a management command against this server's data (same directory and environment)."""
        manage = SERVER.with_name("promptmetrics-manage")
        subprocess.run([str(manage), *args], cwd=self.workdir, env=self.env, check=True)


@contextmanager
def server(extra_env: dict[str, str] | None = None) -> Iterator[BenchServer]:
    """promptmetrics-server with its defaults (SQLite, git driver) in an empty directory; the rate
    limit is raised so that the limiter is still consulted on every request without answering 429."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is required (Debian: apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="pm-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DATA_DIR", "DEBUG"}}
    env.update({"PORT": str(port), "RATE_LIMIT_MAX_REQUESTS": "100000", **(extra_env or {})})
    log = open(workdir / "server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([str(SERVER)], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        key = re.search(r"pm_[0-9a-f]{64}", (workdir / "server.log").read_text()).group(0)  # type: ignore[union-attr]
        yield BenchServer(url, key, process, workdir, env)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


def post_script(directory: Path, body: str) -> list[str]:
    """wrk arguments that turn its requests into JSON POSTs of ``body``."""
    script = directory / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return ["-s", str(script)]


def measure(
    srv: BenchServer, path: str, duration: int, connections: int, body: str | None = None
) -> dict[str, str]:
    """wrk on one authenticated request (a GET, or a JSON POST of ``body``), then memory of every
    server process and the hello-world baseline under the same gunicorn settings, with the facts a
    reader needs to compare runs."""
    extra = post_script(srv.workdir, body) if body is not None else []
    output = wrk(srv.url + path, duration, connections, ["-H", f"X-API-Key: {srv.key}", *extra])
    rss, pss = memory_kib(process_tree(srv.process.pid))
    workers = len(process_tree(srv.process.pid)) - 1
    threads = int(os.environ.get("THREADS", "1"))
    result = parse_wrk(output)
    result.update(
        {
            "baseline": baseline(duration, connections, workers, threads),
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


def replace_block(path: Path, begin: str, end: str, block: str) -> None:
    """Replace the text between two HTML-comment markers of a markdown file (markers included)."""
    text = path.read_text()
    start, stop = text.index(begin), text.index(end) + len(end)
    path.write_text(text[:start] + block + text[stop:])
