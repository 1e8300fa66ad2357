"""The error envelope ``{error, code, details?, detailsType, requestId}`` for every error class,
request ids, and the rate limiter as seen through HTTP."""

from __future__ import annotations

import time
import uuid

import pytest
from django.test import override_settings

from tenancy.api.views import ApiKeyViewSet
from tenancy.models import ApiKey

ME = "/v1/api-keys/me"
KEYS = "/v1/api-keys"
ENVELOPE = {"error", "code", "detailsType", "requestId"}


def envelope(response, status: int, code: str) -> dict:
    """Check the common shape and return the body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert ENVELOPE <= set(body), body
    assert set(body) <= ENVELOPE | {"details", "message"}, body
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    assert body["requestId"] == response["x-request-id"]
    return body


@pytest.fixture
def admin(admin):
    """This module only needs the plaintext."""
    return admin[1]


# --- 400 ---


@pytest.mark.parametrize("raw", ["{not json", '{"name": ', "[1,", "nul", '{"name": "x"}}'])
def test_malformed_json_is_a_bad_request(api, admin, raw):
    count = ApiKey.objects.count()
    body = envelope(api.post(KEYS, key=admin, data=raw), 400, "BAD_REQUEST")
    assert body["error"] == "Bad Request"
    assert body["message"] == "Invalid JSON body"
    assert body["detailsType"] == "context"
    assert "details" not in body
    assert ApiKey.objects.count() == count


def test_a_malformed_workspace_header_is_a_bad_request(api):
    body = envelope(api.get("/health", workspace="no spaces"), 400, "BAD_REQUEST")
    assert body["error"].startswith("Invalid X-Workspace-Id header")
    assert body["detailsType"] == "context"


def test_a_malformed_content_length_is_a_bad_request(api, admin):
    response = api.post(KEYS, key=admin, data='{"name": "x"}', CONTENT_LENGTH="abc")
    body = envelope(response, 400, "BAD_REQUEST")
    assert body["error"] == "Invalid Content-Length header"


# --- 401 / 403 ---


def test_a_missing_key_is_unauthorized(api):
    body = envelope(api.get(KEYS), 401, "UNAUTHORIZED")
    assert body["error"] == "Missing X-API-Key header"
    assert body["detailsType"] == "context"
    assert "details" not in body


def test_an_invalid_key_is_unauthorized(api):
    body = envelope(api.get(KEYS, key="pm_nope"), 401, "UNAUTHORIZED")
    assert body["error"] == "Invalid API key"


def test_a_missing_scope_is_forbidden(api, make_key):
    _, reader = make_key("read")
    body = envelope(api.get(KEYS, key=reader), 403, "FORBIDDEN")
    assert body["error"] == "Missing required scope: admin"
    assert body["detailsType"] == "context"


def test_a_forbidden_cross_workspace_mint_uses_the_envelope(api, admin):
    body = envelope(api.post(KEYS, key=admin, json={"name": "x", "workspace_id": "*"}), 403, "FORBIDDEN")
    assert body["error"] == "Only a master key can create master keys"


# --- 404 ---


# ("/" is the dashboard: an anonymous visitor is sent to its sign-in page.)
@pytest.mark.parametrize("route", ["/v1/nope", "/v1/api-keys/", "/v1/", "/nope", "/v1/api-keys/1/x"])
@pytest.mark.parametrize("with_key", [False, True], ids=["no-key", "valid-key"])
def test_an_unknown_route_is_a_json_not_found(api, admin, route, with_key):
    response = api.get(route, key=admin if with_key else None)
    body = envelope(response, 404, "NOT_FOUND")
    assert body["error"] == f"Route GET {route} not found"
    assert body["detailsType"] == "context"
    assert b"<html" not in response.content.lower()


def test_an_unknown_resource_is_not_found(api, admin):
    body = envelope(api.delete(f"{KEYS}/424242", key=admin), 404, "NOT_FOUND")
    assert body["error"] == "API key not found"


# --- 405 ---


@pytest.mark.parametrize(
    ("method", "route"), [("PUT", KEYS), ("PATCH", KEYS), ("GET", f"{KEYS}/1"), ("POST", ME)]
)
def test_an_unsupported_method_is_not_allowed(api, admin, method, route):
    response = api.request(method, route, key=admin, json={})
    body = envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert method in body["error"]
    allowed = {m.strip() for m in response["Allow"].split(",")}
    assert method not in allowed
    assert "OPTIONS" in allowed


def test_a_successful_response_does_not_carry_allow(api, admin):
    assert "Allow" not in api.get(ME, key=admin)


@pytest.mark.parametrize("path", [ME, "/health", "/v1/nowhere"])
def test_responses_declare_their_length(api, admin, path):
    """A declared length spares gunicorn chunked encoding and lets clients detect truncation."""
    response = api.get(path, key=admin)
    assert int(response["Content-Length"]) == len(response.content) > 0


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT"])
@pytest.mark.parametrize("route", ["/health", "/health/deep"])
def test_an_unsupported_method_on_health_is_a_json_not_allowed(api, method, route):
    response = api.request(method, route)
    body = envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert method in body["error"]
    assert "GET" in response["Allow"]


# --- 413 ---


@override_settings(MAX_BODY_BYTES=1024)
@pytest.mark.parametrize("with_key", [False, True], ids=["no-key", "valid-key"])
def test_a_body_over_the_limit_is_refused(api, admin, with_key):
    count = ApiKey.objects.count()
    big = '{"name": "' + "x" * 2000 + '"}'
    response = api.post(KEYS, key=admin if with_key else None, data=big)
    body = envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert "1024" in body["error"]
    assert body["detailsType"] == "context"
    assert ApiKey.objects.count() == count


@override_settings(MAX_BODY_BYTES=1024)
def test_a_body_at_the_limit_is_accepted(api, admin):
    padding = " " * (1024 - len('{"name": "ok"}'))
    data = '{"name": "ok"}' + padding
    assert len(data.encode()) == 1024
    assert api.post(KEYS, key=admin, data=data).status_code == 201


# --- 415 ---


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_non_json_body_is_unsupported(api, admin, content_type):
    count = ApiKey.objects.count()
    response = api.post(KEYS, key=admin, data="name=x", content_type=content_type)
    body = envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert content_type.split(";")[0] in body["error"]
    assert ApiKey.objects.count() == count


def test_json_with_a_charset_is_accepted(api, admin):
    response = api.post(KEYS, key=admin, data='{"name": "x"}', content_type="application/json; charset=utf-8")
    assert response.status_code == 201


# --- 422 ---


def test_validation_errors_list_their_fields(api, admin):
    response = api.post(KEYS, key=admin, json={"scopes": ["read"], "expires_in_days": 0})
    body = envelope(response, 422, "VALIDATION_FAILED")
    assert body["error"] == "Validation failed"
    assert body["detailsType"] == "fields"
    fields = body["details"]["fields"]
    assert isinstance(fields, list)
    assert '"name" is required' in fields
    assert any(line.startswith('"scopes"') for line in fields)
    assert any(line.startswith('"expires_in_days"') for line in fields)
    assert len(fields) == 3


def test_query_validation_errors_list_their_fields(api, admin):
    body = envelope(api.get(f"{KEYS}?page=x&limit=500", key=admin), 422, "VALIDATION_FAILED")
    assert body["details"]["fields"] == [
        '"page" must be a number',
        '"limit" must be less than or equal to 100',
    ]


@pytest.mark.parametrize("route", [KEYS, "/v1/audit-logs", "/v1/workspaces"])
def test_an_absurd_page_number_is_not_a_server_error(api, make_key, route):
    _, master = make_key("read,write,admin", workspace=None)
    response = api.get(f"{route}?page=99999999999999999999", key=master)
    assert response.status_code == 200, response.content
    assert response.json()["items"] == []
    assert response.json()["total"] >= 1


# --- 500 ---


def test_an_unhandled_error_is_a_json_internal_error(api, admin, monkeypatch):
    def explode(self, request):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ApiKeyViewSet, "me", explode)
    response = api.get(ME, key=admin)
    body = envelope(response, 500, "INTERNAL_ERROR")
    assert body["error"] == "Internal server error"
    assert b"secret internals" not in response.content


# --- Request ids ---


@pytest.mark.parametrize(
    ("route", "with_key"), [(ME, True), (ME, False), ("/health", False), ("/nope", False)]
)
def test_a_supplied_request_id_is_echoed(api, admin, route, with_key):
    response = api.get(route, key=admin if with_key else None, HTTP_X_REQUEST_ID="req-42.abc")
    assert response["x-request-id"] == "req-42.abc"
    if response.status_code >= 400:
        assert response.json()["requestId"] == "req-42.abc"


@pytest.mark.parametrize("route", [ME, "/health", "/nope"])
def test_a_request_id_is_generated_when_absent(api, route):
    first = api.get(route)
    second = api.get(route)
    generated = first["x-request-id"]
    assert str(uuid.UUID(generated)) == generated
    assert second["x-request-id"] != generated
    if first.status_code >= 400:
        assert first.json()["requestId"] == generated


@pytest.mark.parametrize("incoming", ["has space", "x" * 201, "caf\u00e9", ""])
def test_an_unsafe_request_id_is_replaced(api, incoming):
    response = api.get("/nope", HTTP_X_REQUEST_ID=incoming)
    generated = response["x-request-id"]
    assert generated != incoming
    assert str(uuid.UUID(generated)) == generated
    assert response.json()["requestId"] == generated


# --- 429 and the rate-limit headers ---


def rate_headers(response) -> tuple[int, int, int]:
    return (
        int(response["RateLimit-Limit"]),
        int(response["RateLimit-Remaining"]),
        int(response["RateLimit-Reset"]),
    )


@override_settings(RATE_LIMIT_MAX_REQUESTS=3)
def test_the_request_over_the_limit_is_refused(api, make_key):
    _, plaintext = make_key("read")
    start = time.time()
    remaining = []
    for _ in range(3):
        response = api.get(ME, key=plaintext)
        assert response.status_code == 200
        limit, left, reset = rate_headers(response)
        assert limit == 3
        assert start <= reset <= time.time() + 61
        remaining.append(left)
    assert remaining == [2, 1, 0]

    refused = api.get(ME, key=plaintext)
    body = envelope(refused, 429, "RATE_LIMIT_EXCEEDED")
    assert body["error"] == "Rate limit exceeded"
    assert body["detailsType"] == "context"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert rate_headers(refused)[:2] == (3, 0)


@override_settings(RATE_LIMIT_MAX_REQUESTS=3)
def test_each_key_has_its_own_bucket(api, make_key):
    _, first = make_key("read")
    _, second = make_key("read")
    for _ in range(3):
        api.get(ME, key=first)
    assert api.get(ME, key=first).status_code == 429
    response = api.get(ME, key=second)
    assert response.status_code == 200
    assert response["RateLimit-Remaining"] == "2"


@override_settings(RATE_LIMIT_MAX_REQUESTS=3)
def test_each_workspace_has_its_own_bucket_for_a_master_key(api, make_key):
    _, master = make_key("read", workspace=None)
    for _ in range(3):
        api.get(ME, key=master, workspace="one")
    assert api.get(ME, key=master, workspace="one").status_code == 429
    assert api.get(ME, key=master, workspace="two").status_code == 200


@override_settings(RATE_LIMIT_MAX_REQUESTS=3)
def test_each_request_is_counted_once(api, make_key):
    _, admin = make_key("read,write,admin")
    api.get(KEYS, key=admin)
    api.post(KEYS, key=admin, json={"name": "x"})
    response = api.get("/v1/audit-logs", key=admin)
    assert response.status_code == 200
    assert response["RateLimit-Remaining"] == "0"


@override_settings(RATE_LIMIT_MAX_REQUESTS=3)
def test_refused_requests_are_not_counted(api, make_key):
    _, plaintext = make_key("read")
    api.get(ME, key=plaintext, workspace="elsewhere")  # 401: wrong workspace
    api.get(KEYS, key=plaintext)  # 403: missing scope
    response = api.get(ME, key=plaintext)
    assert response.status_code == 200
    assert response["RateLimit-Remaining"] == "2"


@override_settings(RATE_LIMIT_MAX_REQUESTS=3)
def test_health_is_never_rate_limited(api, make_key):
    _, plaintext = make_key("read")
    for _ in range(3):
        api.get(ME, key=plaintext)
    for _ in range(5):
        response = api.get("/health", key=plaintext)
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response


@override_settings(RATE_LIMIT_MAX_REQUESTS=0)
def test_a_limit_of_zero_disables_rate_limiting(api, make_key):
    _, plaintext = make_key("read")
    for _ in range(10):
        response = api.get(ME, key=plaintext)
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response


def test_the_rate_limit_headers_are_exposed_to_browsers(api, make_key):
    _, plaintext = make_key("read")
    response = api.get(ME, key=plaintext, HTTP_ORIGIN="https://dashboard.example")
    assert response["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {
        "x-request-id",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "retry-after",
    } <= exposed


# --- Hostile input is a 4xx, never a 500 ---


def test_deeply_nested_json_is_a_bad_request(api, admin):
    response = api.post(KEYS, key=admin, data="[" * 100_000)
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_REQUEST"


def test_too_many_query_fields_is_a_bad_request(api, admin):
    response = api.get(KEYS + "?" + "&".join(f"f{i}=1" for i in range(1200)), key=admin)
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("raw", ["1_0", "+5", " 1", "１", "1.0", "1e3", "9" * 31])
def test_page_and_limit_take_ascii_integers_only(api, admin, raw):
    for name in ("page", "limit"):
        response = api.get(f"{KEYS}?{name}={raw}", key=admin)
        assert response.status_code == 422, (name, raw)
        assert response.json()["details"]["fields"] == [f'"{name}" must be a number']


@pytest.mark.parametrize("header", ["abc\n", "acme\n"])
def test_a_trailing_newline_is_not_a_valid_id(api, admin, header):
    response = api.get("/health", HTTP_X_WORKSPACE_ID=header)
    assert response.status_code == 400


def test_cors_headers_are_only_sent_to_browsers(api, admin):
    assert "Access-Control-Allow-Origin" not in api.get(ME, key=admin)


def test_generated_request_ids_are_version_4_uuids(api):
    import uuid

    ids = {api.get("/health")["x-request-id"] for _ in range(20)}
    assert len(ids) == 20
    for value in ids:
        parsed = uuid.UUID(value)
        assert (str(parsed), parsed.version, parsed.variant) == (value, 4, uuid.RFC_4122)
