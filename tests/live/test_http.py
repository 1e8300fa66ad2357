"""HTTP behaviour of the real server (gunicorn + the WSGI wrapper + the request middleware).

Chunked bodies (as the Node OTLP exporter sends them), body limits, JSON errors for bad input and
unknown routes, request ids, CORS preflight, and a graceful SIGTERM with a request in flight.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.live_server import LiveServer, Response, ServerFactory, service_required

pytestmark = pytest.mark.live

MAX_BODY = 2048
UUID_LENGTH = 36


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module, with a small body limit."""
    if os.environ.get("DATABASE_URL"):
        service_required("postgres", os.environ["DATABASE_URL"])
    factory = ServerFactory(tmp_path_factory.mktemp("http"))
    env = {"MAX_BODY_BYTES": str(MAX_BODY), "CACHE_KEY_PREFIX": f"pm-test-{uuid.uuid4().hex}"}
    try:
        yield factory.start(env=env, workers=2)
    finally:
        factory.close()


def _connection(server: LiveServer) -> http.client.HTTPConnection:
    parts = urlsplit(server.url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)


def _chunked_post(server: LiveServer, path: str, chunks: Iterable[bytes]) -> Response:
    """POST with ``Transfer-Encoding: chunked`` and no Content-Length, one HTTP chunk per item."""
    conn = _connection(server)
    try:
        conn.request(
            "POST",
            path,
            body=iter(chunks),
            headers={
                "X-API-Key": server.admin_key,
                "Content-Type": "application/json",
                "Transfer-Encoding": "chunked",
            },
            encode_chunked=True,
        )
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _assert_envelope(response: Response, status: int, code: str) -> dict:
    assert response.status == status, response.body
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert body["requestId"] == response.headers["x-request-id"]
    assert body["detailsType"] in {"context", "fields"}
    return body


def test_a_chunked_body_is_read_in_full(server):
    name = "chunked-" + "x" * 100
    data = json.dumps({"name": name, "scopes": "read"}).encode()

    created = _chunked_post(server, "/v1/api-keys", _pieces(data, 7))

    assert created.status == 201, created.body
    assert created.json()["name"] == name
    assert server.request("GET", "/v1/api-keys/me", key=created.json()["key"]).json()["name"] == name


def test_a_chunked_body_over_the_limit_is_a_413(server):
    data = json.dumps({"name": "big", "padding": "y" * (2 * MAX_BODY)}).encode()

    refused = _chunked_post(server, "/v1/api-keys", _pieces(data, 500))

    body = _assert_envelope(refused, 413, "PAYLOAD_TOO_LARGE")
    assert str(MAX_BODY) in body["error"]
    # Nothing was created, and the server is fine.
    names = {k["name"] for k in server.request("GET", "/v1/api-keys", key=server.admin_key).json()["items"]}
    assert "big" not in names


def test_a_content_length_body_over_the_limit_is_a_413(server):
    data = json.dumps({"name": "big-cl", "padding": "z" * MAX_BODY}).encode()

    refused = server.request("POST", "/v1/api-keys", key=server.admin_key, body=data)

    _assert_envelope(refused, 413, "PAYLOAD_TOO_LARGE")


def test_a_body_at_the_limit_is_accepted(server):
    head = json.dumps({"name": "at-limit", "scopes": "read", "padding": ""}).encode()
    data = head.replace(b'"padding": ""', b'"padding": "' + b"p" * (MAX_BODY - len(head)) + b'"')
    assert len(data) == MAX_BODY

    by_length = server.request("POST", "/v1/api-keys", key=server.admin_key, body=data)
    chunked = _chunked_post(server, "/v1/api-keys", _pieces(data, 512))

    assert (by_length.status, chunked.status) == (201, 201)


def test_malformed_json_is_a_400_envelope(server):
    response = server.request("POST", "/v1/api-keys", key=server.admin_key, body=b'{"name": ')

    body = _assert_envelope(response, 400, "BAD_REQUEST")
    assert body["error"] == "Bad Request"
    assert body["message"] == "Invalid JSON body"


def test_an_unknown_route_is_a_json_404(server):
    anonymous = server.request("GET", "/no/such/page")
    posted = server.request("POST", "/no/such/page", body={"a": 1})
    under_v1 = server.request("DELETE", "/v1/no-such-resource/1", key=server.admin_key)

    for response in (anonymous, posted, under_v1):
        body = _assert_envelope(response, 404, "NOT_FOUND")
        assert body["detailsType"] == "context"
    assert anonymous.json()["error"] == "Route GET /no/such/page not found"


def test_a_post_to_health_is_refused_without_an_html_page(server):
    # The real server runs CSRF checks (in-process test clients skip them).
    for path in ("/health", "/health/deep"):
        response = server.request("POST", path, body={})
        assert response.status == 405, response.body
        assert not response.body.lstrip().startswith(b"<")


def test_the_request_id_is_echoed_or_minted(server):
    me = "/v1/api-keys/me"
    given = server.request("GET", me, key=server.admin_key, headers={"x-request-id": "abc-123"})
    failed = server.request("GET", me, key="pm_nope", headers={"x-request-id": "abc-456"})
    minted = server.request("GET", "/health")

    assert given.status == 200
    assert given.headers["x-request-id"] == "abc-123"
    assert failed.status == 401
    assert failed.headers["x-request-id"] == "abc-456"
    assert failed.json()["requestId"] == "abc-456"
    assert str(uuid.UUID(minted.headers["x-request-id"])) == minted.headers["x-request-id"]
    assert len(minted.headers["x-request-id"]) == UUID_LENGTH


def test_a_cors_preflight_is_answered_without_a_key(server):
    preflight = server.request(
        "OPTIONS",
        "/v1/api-keys",
        headers={
            "Origin": "https://dashboard.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key, content-type",
        },
    )

    assert preflight.status == 204
    assert preflight.body == b""
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert {"x-api-key", "x-workspace-id", "content-type"} <= allowed
    # Actual responses are readable cross-origin too, error responses included.
    refused = server.request("GET", "/v1/api-keys", headers={"Origin": "https://dashboard.example"})
    assert refused.status == 401
    assert refused.headers["access-control-allow-origin"] == "*"


def _server_side_unread_bytes(port: int, client_port: int) -> int | None:
    """Bytes of our connection still waiting in the server's receive queue (None: no such socket)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if int(local.rsplit(":", 1)[1], 16) == port and int(remote.rsplit(":", 1)[1], 16) == client_port:
                return int(queues.split(":")[1], 16)
    return None


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_sigterm_lets_an_in_flight_request_finish(live_servers):
    server = live_servers.start(env={"CACHE_KEY_PREFIX": f"pm-test-{uuid.uuid4().hex}"})
    port = urlsplit(server.url).port
    assert port is not None
    data = json.dumps({"name": "in-flight", "scopes": "read"}).encode()
    first, rest = data[:10], data[10:]

    conn = _connection(server)
    conn.putrequest("POST", "/v1/api-keys")
    conn.putheader("X-API-Key", server.admin_key)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders(b"%x\r\n%s\r\n" % (len(first), first))
    client_port = conn.sock.getsockname()[1]
    # A worker has picked the request up once the server side of the connection has nothing unread:
    # it is now inside the application, waiting for the rest of the body.
    deadline = time.monotonic() + 30
    while _server_side_unread_bytes(port, client_port) != 0:
        assert time.monotonic() < deadline, "no worker picked the request up"
        time.sleep(0.05)

    server.process.send_signal(signal.SIGTERM)
    time.sleep(1)  # the shutdown is under way: gunicorn stops accepting
    assert server.process.poll() is None
    conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
    response = conn.getresponse()

    assert response.status == 201
    assert json.loads(response.read())["name"] == "in-flight"
    conn.close()
    assert server.process.wait(timeout=60) == 0
