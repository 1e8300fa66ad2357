"""A real S3-compatible server for tests: moto's standalone server, run as a subprocess.

The s3 driver is tested over HTTP against this server rather than with moto's in-process mocks, so
the requests boto3 actually sends (conditional headers, path-style addressing, timeouts, retries)
are exercised. moto is a test dependency that is always installed: failing to start it is an error,
never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.live_server import free_port

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_s3_server(log_dir: Path | None = None, timeout: float = 30, attempts: int = 3) -> S3Server:
    """Start ``python -m moto.server`` on a free port and wait until it answers S3 requests."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="pm-moto-"))
    failures: list[str] = []
    # The free port is probed, then released before moto binds it: another process may take it in
    # between, so a server that exits at once is retried on a fresh port.
    for attempt in range(attempts):
        port = free_port()
        log_path = log_dir / f"moto-{port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MOTO_PORT"}
        env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "NO_PROXY": "*"})
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = S3Server(f"http://127.0.0.1:{port}", process, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            if server.answers():
                return server
            time.sleep(0.1)
        server.stop()
        failures.append(f"attempt {attempt + 1} (port {port}, exit {process.returncode}):\n{server.log()}")
    raise RuntimeError("moto's S3 server did not start:\n" + "\n".join(failures))


def s3_client(endpoint: str, **config: Any) -> Any:
    """A raw boto3 client for the test server (to create buckets and inspect objects directly)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}, **config),
    )
