"""Run ``promptmetrics-server`` as a real subprocess for black-box tests.

Each server gets an empty working directory (so its ./data is fresh), a free port and the same
database backend as the test run: with DATABASE_URL set, a dedicated PostgreSQL database is created
for it (shared by the servers of one test that pass the same ``database``) and dropped afterwards.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

SERVER_BIN = Path(sys.executable).with_name("promptmetrics-server")
KEY_RE = re.compile(r"pm_[0-9a-f]{64}")


def service_required(name: str, url: str) -> None:
    """Skip when a service is unreachable; under CI=true fail instead (CI must run everything)."""
    parts = urlsplit(url)
    default_port = {"redis": 6379, "postgres": 5432}[name]
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return
    except OSError as exc:
        message = f"{name} at {url} is unreachable: {exc}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: unreachable services are failures)")
    pytest.skip(message)


def purge_redis_prefix(url: str, prefix: str) -> None:
    """Delete every Redis key a test's servers left under their private prefix."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LiveServer:
    url: str
    workdir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    admin_key: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        workspace: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Response:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["X-API-Key"] = key
        if workspace is not None:
            all_headers["X-Workspace-Id"] = workspace
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
        except urllib.error.HTTPError as err:
            return Response(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class ServerFactory:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.servers: list[LiveServer] = []
        self.databases: dict[str, str] = {}

    def database_url(self, name: str) -> str | None:
        """A PostgreSQL database for this test (created once per name) when the run uses PostgreSQL."""
        base = os.environ.get("DATABASE_URL")
        if not base:
            return None
        if name not in self.databases:
            import psycopg

            db_name = f"pm_live_{uuid.uuid4().hex[:12]}"
            admin_url = urlunsplit(urlsplit(base)._replace(path="/postgres"))
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{db_name}"')
            self.databases[name] = db_name
        return urlunsplit(urlsplit(base)._replace(path="/" + self.databases[name]))

    def start(
        self,
        *,
        env: dict[str, str] | None = None,
        workdir: Path | None = None,
        database: str = "main",
        workers: int = 2,
        wait: bool = True,
    ) -> LiveServer:
        workdir = workdir or Path(tempfile.mkdtemp(dir=self.tmp_path, prefix="server-"))
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        full_env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DJANGO_SETTINGS_MODULE", "DATA_DIR", "SECRET_KEY", "API_KEY_SALT", "DATABASE_URL"}
        }
        full_env.update({"PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": str(workers)})
        db_url = self.database_url(database)
        if db_url:
            full_env["DATABASE_URL"] = db_url
            # Required with a shared database; the same values for every server of the test.
            full_env["SECRET_KEY"] = "live-test-secret-key"
            full_env["API_KEY_SALT"] = "live-test-api-key-salt"
        full_env.update(env or {})
        log_path = workdir / "server.log"
        log = open(log_path, "wb")  # noqa: SIM115 - the child process owns it
        process = subprocess.Popen(
            [str(SERVER_BIN)], cwd=workdir, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
        server = LiveServer(f"http://127.0.0.1:{port}", workdir, process, log_path, env=full_env)
        self.servers.append(server)
        if wait:
            self.wait_ready(server)
        return server

    @staticmethod
    def wait_ready(server: LiveServer, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise AssertionError(f"server exited with {server.process.returncode}:\n{server.log()}")
            try:
                if server.request("GET", "/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"server did not become healthy:\n{server.log()}")
        match = KEY_RE.search(server.log())
        server.admin_key = server.env.get("PROMPTMETRICS_ADMIN_KEY") or (match.group(0) if match else "")

    def close(self) -> None:
        for server in self.servers:
            server.stop(signal.SIGKILL if server.process.poll() is None else signal.SIGTERM, timeout=10)
        if self.databases:
            import psycopg

            base = os.environ["DATABASE_URL"]
            admin_url = urlunsplit(urlsplit(base)._replace(path="/postgres"))
            with psycopg.connect(admin_url, autocommit=True) as conn:
                for db_name in self.databases.values():
                    conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
