"""The per-(workspace, key) sliding-window rate limit, against a real multi-worker server.

Both backends are exercised: the memory-mapped file shared by the gunicorn workers (no REDIS_URL)
and Redis. The servers of the exactness and header tests are shared by the module (a long window,
each test works in workspaces of its own, so their buckets never meet).
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.live_server import LiveServer, Response, ServerFactory, purge_redis_prefix, service_required

pytestmark = pytest.mark.live

LIMIT = 10
LONG_WINDOW_MS = 600_000
ME = "/v1/api-keys/me"


def _backend_env(backend: str, redis_url: str | None) -> dict[str, str]:
    """The file backend must not pick up the test run's REDIS_URL; Redis state is private per test."""
    if backend == "redis":
        assert redis_url
        return {"REDIS_URL": redis_url, "CACHE_KEY_PREFIX": f"pm-test-{uuid.uuid4().hex}"}
    return {"REDIS_URL": ""}


def _purge_redis(env: dict[str, str]) -> None:
    """Delete what the servers left under their private key prefix."""
    if env.get("REDIS_URL"):
        purge_redis_prefix(env["REDIS_URL"], env["CACHE_KEY_PREFIX"])


def _redis_url_or_skip() -> str:
    """What the ``redis_url`` fixture gives, for the module-scoped servers (which cannot use it)."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    service_required("redis", url)
    return url


@pytest.fixture(scope="module", params=["file", "redis"])
def limited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A 3-worker server allowing LIMIT requests per bucket in a window no test outlives."""
    if os.environ.get("DATABASE_URL"):
        service_required("postgres", os.environ["DATABASE_URL"])
    redis_url = _redis_url_or_skip() if request.param == "redis" else None
    factory = ServerFactory(tmp_path_factory.mktemp(f"ratelimit-{request.param}"))
    env = {
        "RATE_LIMIT_MAX_REQUESTS": str(LIMIT),
        "RATE_LIMIT_WINDOW_MS": str(LONG_WINDOW_MS),
        **_backend_env(request.param, redis_url),
    }
    try:
        yield factory.start(env=env, workers=3)
    finally:
        factory.close()
        _purge_redis(env)


def _workspace() -> str:
    return f"ws-{uuid.uuid4().hex[:12]}"


def _mint(server: LiveServer, workspace: str, *, master: bool = False) -> str:
    """A fresh read key (one request of the admin key's bucket in ``workspace``)."""
    body = {"name": f"rl-{uuid.uuid4().hex[:8]}", "scopes": "read"}
    if master:
        body["workspace_id"] = "*"
    created = server.request("POST", "/v1/api-keys", key=server.admin_key, workspace=workspace, body=body)
    assert created.status == 201, created.body
    return created.json()["key"]


def _burst(server: LiveServer, count: int, *, key: str, workspace: str) -> list[Response]:
    """``count`` GET /v1/api-keys/me in parallel threads, released together by a barrier."""
    barrier = threading.Barrier(count)

    def one(_: int) -> Response:
        barrier.wait(timeout=60)
        return server.request("GET", ME, key=key, workspace=workspace, timeout=60)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def _exhaust(server: LiveServer, *, key: str, workspace: str) -> None:
    for _ in range(LIMIT):
        assert server.request("GET", ME, key=key, workspace=workspace).status == 200
    assert server.request("GET", ME, key=key, workspace=workspace).status == 429


def test_exactly_n_of_2n_concurrent_requests_pass(limited):
    workspace = _workspace()
    key = _mint(limited, workspace)

    responses = _burst(limited, 2 * LIMIT, key=key, workspace=workspace)

    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * LIMIT + [429] * LIMIT
    # Each allowed request took its own place in the window: the counts are exact, not merely bounded.
    remaining = sorted(int(r.headers["ratelimit-remaining"]) for r in responses if r.status == 200)
    assert remaining == list(range(LIMIT))
    # The bucket stays full afterwards.
    assert limited.request("GET", ME, key=key, workspace=workspace).status == 429


def test_a_refusal_is_a_429_envelope_with_retry_after(limited):
    workspace = _workspace()
    key = _mint(limited, workspace)
    _exhaust(limited, key=key, workspace=workspace)

    refused = limited.request("GET", ME, key=key, workspace=workspace, headers={"x-request-id": "rl-1"})

    assert refused.status == 429
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.json() == {
        "error": "Rate limit exceeded",
        "code": "RATE_LIMIT_EXCEEDED",
        "detailsType": "context",
        "requestId": "rl-1",
    }
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= LONG_WINDOW_MS // 1000
    assert refused.headers["ratelimit-limit"] == str(LIMIT)
    assert refused.headers["ratelimit-remaining"] == "0"


def test_allowed_responses_carry_the_ratelimit_headers(limited):
    workspace = _workspace()
    key = _mint(limited, workspace)

    before = time.time()
    first = limited.request("GET", ME, key=key, workspace=workspace)
    second = limited.request("GET", ME, key=key, workspace=workspace)
    after = time.time()

    assert (first.status, second.status) == (200, 200)
    assert first.headers["ratelimit-limit"] == str(LIMIT)
    assert first.headers["ratelimit-remaining"] == str(LIMIT - 1)
    assert second.headers["ratelimit-remaining"] == str(LIMIT - 2)
    # Reset: Unix seconds at which the oldest counted request (the first) leaves the window.
    reset = int(first.headers["ratelimit-reset"])
    assert math.floor(before + LONG_WINDOW_MS / 1000) <= reset <= math.ceil(after + LONG_WINDOW_MS / 1000)
    assert second.headers["ratelimit-reset"] == first.headers["ratelimit-reset"]


def test_two_keys_have_independent_buckets(limited):
    workspace = _workspace()
    first, second = _mint(limited, workspace), _mint(limited, workspace)
    _exhaust(limited, key=first, workspace=workspace)

    other = limited.request("GET", ME, key=second, workspace=workspace)

    assert other.status == 200
    assert other.headers["ratelimit-remaining"] == str(LIMIT - 1)
    assert limited.request("GET", ME, key=first, workspace=workspace).status == 429


def test_a_master_key_has_a_bucket_per_workspace(limited):
    master = _mint(limited, _workspace(), master=True)
    one, two = _workspace(), _workspace()
    _exhaust(limited, key=master, workspace=one)

    elsewhere = limited.request("GET", ME, key=master, workspace=two)

    assert elsewhere.status == 200
    assert elsewhere.headers["ratelimit-remaining"] == str(LIMIT - 1)
    assert limited.request("GET", ME, key=master, workspace=one).status == 429


def test_health_is_never_limited(limited):
    workspace = _workspace()
    key = _mint(limited, workspace)
    _exhaust(limited, key=key, workspace=workspace)

    for _ in range(2 * LIMIT):
        health = limited.request("GET", "/health", key=key, workspace=workspace)
        assert health.status == 200
        assert "ratelimit-limit" not in health.headers


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_the_window_slides(live_servers, request, backend):
    """Refused until the oldest request leaves the window, then exactly one place frees up.

    Timing on a loaded machine is only bounded from the client side, so each assertion is one the
    bounds imply: a request answered before ``sent(A) + window`` must be refused; one allowed must
    have been answered after it.
    """
    window_ms, limit = 1500, 3
    window = window_ms / 1000
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    env = {
        "RATE_LIMIT_MAX_REQUESTS": str(limit),
        "RATE_LIMIT_WINDOW_MS": str(window_ms),
        **_backend_env(backend, redis_url),
    }
    request.addfinalizer(lambda: _purge_redis(env))
    server = live_servers.start(env=env, workers=3)
    key = _mint(server, "default")

    def hit() -> tuple[Response, float, float]:
        sent = time.time()
        response = server.request("GET", ME, key=key)
        return response, sent, time.time()

    first, first_sent, _ = hit()
    assert first.status == 200
    time.sleep(window / 2)
    second, second_sent, _ = hit()
    assert second.status == 200
    for _ in range(limit - 2):
        assert hit()[0].status == 200

    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "the oldest request never left the window"
        freed, _, freed_answered = hit()
        if freed.status == 200:
            break
        assert freed.status == 429
        assert 1 <= int(freed.headers["retry-after"]) <= math.ceil(window)
        time.sleep(0.05)
    assert freed_answered >= first_sent + window, "allowed before the oldest request left the window"
    # Exactly one place was freed: a fixed window would be empty again, a sliding one still holds the
    # later requests (as long as they are inside it, which the client can only bound).
    after, _, after_answered = hit()
    if freed_answered < second_sent + window:
        assert freed.headers["ratelimit-remaining"] == "0"
    if after_answered < second_sent + window:
        assert after.status == 429


def test_zero_disables_rate_limiting(live_servers):
    server = live_servers.start(
        env={"RATE_LIMIT_MAX_REQUESTS": "0", "CACHE_KEY_PREFIX": f"pm-test-{uuid.uuid4().hex}"}
    )

    for _ in range(15):
        response = server.request("GET", ME, key=server.admin_key)
        assert response.status == 200
        assert not {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} & set(response.headers)
