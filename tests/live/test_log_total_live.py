"""The unfiltered log total of ``GET /v1/logs`` is exact on every worker.

On SQLite each worker keeps the workspace's total under the database's change token; a log written
through another worker (another process and connection) must change that token, so the next page
from any worker counts it. With PostgreSQL the total is summed on every request: the same test holds.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.live_server import LiveServer

pytestmark = pytest.mark.live

BURST = 12  # parallel requests, released together, so that every worker serves some


def _totals(server: LiveServer, key: str) -> set[int]:
    barrier = threading.Barrier(BURST)

    def one(_: int) -> int:
        barrier.wait(timeout=60)
        response = server.request("GET", "/v1/logs?limit=1", key=key, timeout=60)
        assert response.status == 200, response.body
        return response.json()["total"]

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        return {total for _ in range(3) for total in pool.map(one, range(BURST))}


def test_every_worker_counts_a_log_written_through_another(live_servers):
    server = live_servers.start(workers=3)
    key = server.admin_key
    log = {"prompt_name": "welcome", "version_tag": "1.0.0", "latency_ms": 12}
    assert _totals(server, key) == {0}  # now cached by every worker
    for expected in (1, 2, 3):
        assert server.request("POST", "/v1/logs", key=key, body=log).status == 202
        assert _totals(server, key) == {expected}
    batch = server.request("POST", "/v1/logs", key=key, body=[log] * 5)
    assert batch.status == 202, batch.body
    assert _totals(server, key) == {8}
