"""A revoked key is refused on the very next request, by every worker of every server process.

Two ``promptmetrics-server`` processes share one database, as two nodes behind a load balancer
would. Each worker caches the keys it has seen, so the revocation must reach the caches of the other
process: through the auth-epoch file in the shared data directory, or through Redis.
"""

from __future__ import annotations

import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.live_server import LiveServer, Response, purge_redis_prefix

pytestmark = pytest.mark.live

ME = "/v1/api-keys/me"
# Enough parallel requests, repeated, that each of the 3 workers x 4 threads of a server gets some.
BURST = 12
ROUNDS = 3


def _burst(server: LiveServer, key: str) -> list[Response]:
    """BURST parallel GET /v1/api-keys/me, released together so that they spread over the workers."""
    barrier = threading.Barrier(BURST)

    def one(_: int) -> Response:
        barrier.wait(timeout=60)
        return server.request("GET", ME, key=key, timeout=60)

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        return list(pool.map(one, range(BURST)))


def _statuses(server: LiveServer, key: str) -> set[int]:
    return {r.status for _ in range(ROUNDS) for r in _burst(server, key)}


def _revoke_across_servers(a: LiveServer, b: LiveServer, admin_key: str) -> None:
    created = a.request("POST", "/v1/api-keys", key=admin_key, body={"name": "doomed", "scopes": "read"})
    assert created.status == 201, created.body
    key, key_id = created.json()["key"], created.json()["id"]
    # Now cached by the workers of both servers.
    assert _statuses(a, key) == {200}
    assert _statuses(b, key) == {200}

    assert b.request("DELETE", f"/v1/api-keys/{key_id}", key=admin_key).status == 204

    refused = a.request("GET", ME, key=key)
    assert refused.status == 401
    assert refused.json()["code"] == "UNAUTHORIZED"
    assert refused.json()["error"] == "Invalid API key"
    assert _statuses(a, key) == {401}
    assert _statuses(b, key) == {401}
    # The other keys are unaffected.
    assert a.request("GET", ME, key=admin_key).status == 200


def test_a_key_revoked_on_one_server_is_refused_by_the_other_via_the_shared_data_dir(live_servers):
    shared = live_servers.tmp_path / "shared-data"
    env = {"DATA_DIR": str(shared), "REDIS_URL": ""}
    a = live_servers.start(env=env, workers=3)
    b = live_servers.start(env=env, workers=3)

    _revoke_across_servers(a, b, a.admin_key)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own in Redis, emptied afterwards."""
    prefix = f"pm-test-{uuid.uuid4().hex}"
    yield prefix
    purge_redis_prefix(redis_url, prefix)


def test_a_key_revoked_on_one_node_is_refused_by_the_other_via_redis(live_servers, redis_url, redis_prefix):
    """Two nodes share only the database and Redis: separate data directories, so no epoch file."""
    env = {
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": redis_prefix,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "API_KEY_SALT": secrets.token_hex(32),
    }
    if not os.environ.get("DATABASE_URL"):
        env["SQLITE_PATH"] = str(live_servers.tmp_path / "shared.db")
    a = live_servers.start(env={**env, "DATA_DIR": str(live_servers.tmp_path / "node-a")}, workers=3)
    b = live_servers.start(env={**env, "DATA_DIR": str(live_servers.tmp_path / "node-b")}, workers=3)

    _revoke_across_servers(a, b, a.admin_key)
