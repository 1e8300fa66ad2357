"""The authentication and scope matrix of the /v1 pipeline, through the HTTP API."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.urls import include, path
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from tenancy import authentication
from tenancy.api.base import TELEMETRY_WRITE_SCOPES, ScopedAPIView
from tenancy.authcache import KeyCache, key_cache
from tenancy.keys import hash_key
from tenancy.models import ApiKey, AuditLog, Workspace
from tenancy.services import api_key_revoke, workspace_delete
from tests.conftest import TEST_ACTOR

ME = "/v1/api-keys/me"


# --- A URLconf with one probe per scope class (no read-class endpoint exists yet) ---


class ReadProbe(ScopedAPIView):
    def get(self, request: Request) -> Response:
        return Response({"ok": "read"})


class WriteProbe(ScopedAPIView):
    def post(self, request: Request) -> Response:
        return Response({"ok": "write"}, status=201)


class IngestProbe(ScopedAPIView):
    """Models a telemetry write: ``ingest`` or ``write`` may call it."""

    scopes = {"post": TELEMETRY_WRITE_SCOPES}

    def post(self, request: Request) -> Response:
        return Response({"ok": "ingest"}, status=201)


urlpatterns = [
    path("v1/probe/read", ReadProbe.as_view()),
    path("v1/probe/write", WriteProbe.as_view()),
    path("v1/probe/ingest", IngestProbe.as_view()),
    path("", include("config.urls")),
]

PROBES = pytest.mark.urls(__name__)


def assert_unauthorized(response, message: str) -> None:
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["code"] == "UNAUTHORIZED"
    assert body["error"] == message


# --- Missing, unknown, malformed, expired and revoked keys ---


def test_a_request_without_a_key_is_refused(api):
    assert_unauthorized(api.get(ME), "Missing X-API-Key header")


@pytest.mark.parametrize("raw", ["pm_" + "0" * 64, "garbage", "pm_testkey123", "pm_" + "A" * 64])
def test_an_unknown_or_malformed_key_is_refused(api, make_key, raw):
    make_key("read,write,admin")  # a key exists, just not this one
    assert_unauthorized(api.get(ME, key=raw), "Invalid API key")


def test_a_key_differing_in_one_character_is_refused(api, make_key):
    _, plaintext = make_key("read")
    tampered = plaintext[:-1] + ("0" if plaintext[-1] != "0" else "1")
    assert_unauthorized(api.get(ME, key=tampered), "Invalid API key")
    assert api.get(ME, key=plaintext).status_code == 200


def test_an_expired_key_is_refused(api, make_key):
    _, plaintext = make_key("read", expires_at=timezone.now() - timedelta(seconds=5))
    assert_unauthorized(api.get(ME, key=plaintext), "API key expired")


def test_a_key_expiring_later_is_accepted(api, make_key):
    key, plaintext = make_key("read", expires_at=timezone.now() + timedelta(hours=1))
    response = api.get(ME, key=plaintext)
    assert response.status_code == 200
    assert response.json()["expires_at"] == int(key.expires_at.timestamp())


def test_a_cached_key_is_refused_once_it_expires(api, make_key, monkeypatch):
    _, plaintext = make_key("read", expires_at=timezone.now() + timedelta(minutes=5))
    assert api.get(ME, key=plaintext).status_code == 200  # cached by this process from here on
    later = time.time() + 600
    monkeypatch.setattr(authentication, "time", SimpleNamespace(time=lambda: later))
    assert_unauthorized(api.get(ME, key=plaintext), "API key expired")


def test_a_revoked_key_is_refused(api, make_key):
    key, plaintext = make_key("read")
    api_key_revoke(api_key=key, actor=TEST_ACTOR)
    assert_unauthorized(api.get(ME, key=plaintext), "Invalid API key")


def test_a_revoked_key_is_refused_on_the_very_next_request(api, make_key, django_capture_on_commit_callbacks):
    _, admin_key = make_key("read,write,admin")
    victim, victim_key = make_key("read")
    # This request leaves the key's snapshot in the per-process cache.
    assert api.get(ME, key=victim_key).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/v1/api-keys/{victim.pk}", key=admin_key).status_code == 204
    assert_unauthorized(api.get(ME, key=victim_key), "Invalid API key")
    # The revoker is unaffected.
    assert api.get(ME, key=admin_key).status_code == 200


def test_a_revocation_reaches_a_worker_that_cached_the_key(make_key, django_capture_on_commit_callbacks):
    key, plaintext = make_key("read")
    other_worker = KeyCache()  # a second process's cache, sharing only the epoch (file or Redis)
    assert other_worker.get(hash_key(plaintext)) is not None
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_key=key, actor=TEST_ACTOR)
    assert other_worker.get(hash_key(plaintext)) is None


def test_keys_of_a_deleted_workspace_are_refused_on_the_next_request(
    api, make_key, django_capture_on_commit_callbacks
):
    _, plaintext = make_key("read", workspace="doomed")
    assert api.get(ME, key=plaintext, workspace="doomed").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        workspace_delete(workspace=Workspace.objects.get(pk="doomed"))
    assert_unauthorized(api.get(ME, key=plaintext, workspace="doomed"), "Invalid API key")


def test_a_key_hashed_by_the_original_product_authenticates(api, workspace):
    # Upstream stores hex HMAC-SHA256(key=API_KEY_SALT, msg=plaintext) and never checks the format.
    digest = hmac.new(settings.API_KEY_SALT.encode(), b"pm_testkey123", hashlib.sha256).hexdigest()
    ApiKey.objects.create(name="legacy", workspace=workspace("default"), key_hash=digest, scopes="read")
    response = api.get(ME, key="pm_testkey123")
    assert response.status_code == 200
    assert response.json()["name"] == "legacy"


# --- Workspaces ---


@pytest.mark.parametrize("header", [None, "default"])
def test_a_workspace_key_is_refused_in_another_workspace(api, make_key, header):
    _, plaintext = make_key("read,write,admin", workspace="acme")
    assert_unauthorized(
        api.get(ME, key=plaintext, workspace=header), "API key does not belong to this workspace"
    )


def test_a_workspace_key_is_accepted_in_its_workspace(api, make_key):
    key, plaintext = make_key("read", workspace="acme")
    response = api.get(ME, key=plaintext, workspace="acme")
    assert response.status_code == 200
    assert response.json()["workspace_id"] == "acme"
    assert response.json()["id"] == key.pk


def test_a_master_key_works_in_any_workspace(api, make_key, workspace):
    workspace("acme")
    _, master = make_key("read,write,admin", workspace=None)
    for ws in (None, "default", "acme"):
        response = api.get(ME, key=master, workspace=ws)
        assert response.status_code == 200, ws
        assert response.json()["workspace_id"] == "*"


def test_a_master_key_creates_the_workspace_it_names(api, make_key):
    _, master = make_key("read,write,admin", workspace=None)
    assert not Workspace.objects.filter(pk="brand-new").exists()
    assert api.get(ME, key=master, workspace="brand-new").status_code == 200
    created = Workspace.objects.get(pk="brand-new")
    assert created.name == "brand-new"
    # The new workspace is usable straight away, e.g. for listing its (empty) audit trail.
    response = api.get("/v1/audit-logs", key=master, workspace="brand-new")
    assert response.status_code == 200
    assert response.json()["items"] == []


def test_an_unknown_key_does_not_create_the_workspace_it_names(api):
    assert_unauthorized(api.get(ME, key="pm_" + "1" * 64, workspace="ghost"), "Invalid API key")
    assert not Workspace.objects.filter(pk="ghost").exists()


def test_a_workspace_key_does_not_create_the_workspace_it_names(api, make_key):
    _, plaintext = make_key("read,write,admin")
    api.get(ME, key=plaintext, workspace="ghost")
    assert not Workspace.objects.filter(pk="ghost").exists()


@pytest.mark.parametrize("header", ["bad id", "a" * 129, "a/b", "", "café", "acme;drop", "*"])
@pytest.mark.parametrize("route", [ME, "/health", "/v1/api-keys", "/nowhere"])
def test_a_malformed_workspace_header_is_a_bad_request(api, make_key, header, route):
    _, master = make_key("read,write,admin", workspace=None)
    response = api.get(route, key=master, workspace=header)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "BAD_REQUEST"
    assert body["error"].startswith("Invalid X-Workspace-Id header")
    assert body["detailsType"] == "context"


def test_the_longest_valid_workspace_id_is_accepted(api, make_key):
    _, master = make_key("read", workspace=None)
    longest = "a" * 128
    assert api.get(ME, key=master, workspace=longest).status_code == 200
    assert Workspace.objects.filter(pk=longest).exists()


# --- Scopes per endpoint class ---

ANY, READ, WRITE, INGEST, ADMIN = "any", "read", "write", "ingest", "admin"

ENDPOINTS = {
    ANY: [("GET", ME)],
    READ: [("GET", "/v1/probe/read")],
    WRITE: [("POST", "/v1/probe/write")],
    INGEST: [("POST", "/v1/probe/ingest")],
    ADMIN: [("GET", "/v1/api-keys"), ("GET", "/v1/audit-logs"), ("GET", "/v1/workspaces")],
}

# key scopes -> the endpoint classes it may call (no hierarchy: admin does not imply read)
ALLOWED = {
    "read": {ANY, READ},
    "write": {ANY, WRITE, INGEST},
    "ingest": {ANY, INGEST},
    "admin": {ANY, ADMIN},
    "read,write": {ANY, READ, WRITE, INGEST},
    "read,write,admin": {ANY, READ, WRITE, INGEST, ADMIN},
}

# The message names the first accepted scope; telemetry writes name "write", as upstream does.
REQUIRED_SCOPE = {READ: "read", WRITE: "write", INGEST: "write", ADMIN: "admin"}

MATRIX = [
    (scopes, endpoint_class, method, route)
    for scopes in ALLOWED
    for endpoint_class, routes in ENDPOINTS.items()
    for method, route in routes
]


@PROBES
@pytest.mark.parametrize("master", [False, True], ids=["workspace-key", "master-key"])
@pytest.mark.parametrize(("scopes", "endpoint_class", "method", "route"), MATRIX)
def test_each_scope_is_allowed_or_refused_per_endpoint_class(
    api, make_key, scopes, endpoint_class, method, route, master
):
    _, plaintext = make_key(scopes, workspace=None if master else "default")
    response = api.request(method, route, key=plaintext, json={})
    if endpoint_class in ALLOWED[scopes]:
        assert response.status_code in (200, 201), response.content
    else:
        assert response.status_code == 403, response.content
        body = response.json()
        assert body["code"] == "FORBIDDEN"
        assert body["error"] == f"Missing required scope: {REQUIRED_SCOPE[endpoint_class]}"


def test_a_read_only_key_can_describe_itself_but_not_list_keys(api, make_key):
    key, plaintext = make_key("read")
    me = api.get(ME, key=plaintext)
    assert me.status_code == 200
    assert me.json()["id"] == key.pk
    refused = api.get("/v1/api-keys", key=plaintext)
    assert refused.status_code == 403
    assert refused.json()["error"] == "Missing required scope: admin"


def test_a_write_only_key_cannot_read(api, make_key):
    _, plaintext = make_key("write")
    assert api.get(ME, key=plaintext).status_code == 200
    for route in ("/v1/api-keys", "/v1/audit-logs"):
        response = api.get(route, key=plaintext)
        assert response.status_code == 403
        assert response.json()["error"] == "Missing required scope: admin"


@PROBES
def test_read_is_enforced_for_a_write_only_key(api, make_key):
    _, plaintext = make_key("write")
    response = api.get("/v1/probe/read", key=plaintext)
    assert response.status_code == 403
    assert response.json()["error"] == "Missing required scope: read"


def test_an_ingest_only_key_can_describe_itself_but_not_administer(api, make_key):
    _, plaintext = make_key("ingest")
    me = api.get(ME, key=plaintext)
    assert me.status_code == 200
    assert me.json()["scopes"] == "ingest"
    for method, route in [("GET", "/v1/api-keys"), ("GET", "/v1/audit-logs"), ("POST", "/v1/api-keys")]:
        response = api.request(method, route, key=plaintext, json={"name": "escalate"})
        assert response.status_code == 403, route
        assert response.json()["error"] == "Missing required scope: admin"
    assert ApiKey.objects.filter(name="escalate").count() == 0


def test_a_scope_refusal_happens_before_the_body_is_read(api, make_key):
    _, plaintext = make_key("read")
    response = api.post("/v1/api-keys", key=plaintext, data="{not json")
    assert response.status_code == 403


# --- last_used_at ---


def test_last_used_at_is_written_on_first_use(api, make_key):
    key, plaintext = make_key("read")
    assert key.last_used_at is None
    before = timezone.now()
    assert api.get(ME, key=plaintext).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert before - timedelta(seconds=1) <= key.last_used_at <= timezone.now()


def test_last_used_at_is_not_written_again_within_the_debounce_minute(api, make_key):
    key, plaintext = make_key("read")
    api.get(ME, key=plaintext)
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    api.get(ME, key=plaintext)  # same process: the snapshot knows it was just written
    key_cache.reset()  # another worker: only the database knows
    api.get(ME, key=plaintext)
    key.refresh_from_db()
    assert key.last_used_at == first


def test_a_worker_with_a_stale_snapshot_does_not_write_last_used_at_again(api, make_key):
    key, plaintext = make_key("read")
    api.get(ME, key=plaintext)
    key.refresh_from_db()
    first = key.last_used_at
    # Another worker loaded the key before that write: its snapshot still says "never used".
    key_cache.get(hash_key(plaintext)).last_used_at = None
    assert api.get(ME, key=plaintext).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at == first


def test_last_used_at_is_written_again_after_the_debounce_minute(api, make_key):
    key, plaintext = make_key("read")
    stale = timezone.now() - timedelta(seconds=61)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=stale)
    assert api.get(ME, key=plaintext).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at > stale + timedelta(seconds=60)


def test_the_cached_hot_path_needs_no_database_query(api, make_key, django_assert_num_queries):
    _, plaintext = make_key("read")
    assert api.get(ME, key=plaintext).status_code == 200
    with django_assert_num_queries(0):
        assert api.get(ME, key=plaintext).status_code == 200


def test_a_failed_authentication_writes_nothing(api, make_key):
    key, plaintext = make_key("read", workspace="acme")
    audit_before = AuditLog.objects.count()
    api.get(ME, key=plaintext)  # wrong workspace: 401
    key.refresh_from_db()
    assert key.last_used_at is None
    assert AuditLog.objects.count() == audit_before


@pytest.fixture
def redis_key_cache(redis_url, settings):
    """The key cache with its epoch in Redis (whatever backend this run uses otherwise)."""
    settings.REDIS_URL = redis_url
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"test-epoch-{time.monotonic_ns()}",
        }
    }
    key_cache.reset()
    yield key_cache
    from django.core.cache import cache

    cache.clear()
    key_cache.reset()


def test_a_revocation_after_redis_lost_the_epoch_is_seen(
    make_key, redis_key_cache, django_capture_on_commit_callbacks
):
    """Redis restarted without persistence, then a key is revoked: no worker may serve a stale copy."""
    from django.core.cache import cache

    key, plaintext = make_key("read")
    redis_key_cache.invalidate_everywhere()
    other_worker = KeyCache()
    assert other_worker.get(hash_key(plaintext)) is not None  # cached under the current epoch
    cache.delete("auth-epoch")
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_key=key, actor=TEST_ACTOR)
    # A restarted counter would be back at the value the worker holds and hide the revocation.
    assert other_worker.get(hash_key(plaintext)) is None


def test_an_unreachable_redis_epoch_falls_back_to_the_database(api, make_key, redis_key_cache, monkeypatch):
    key, plaintext = make_key("read")
    assert api.get("/v1/api-keys/me", key=plaintext).status_code == 200

    class Unreachable:
        def get(self, *args, **kwargs):
            raise ConnectionError("Redis is down")

    monkeypatch.setattr("tenancy.authcache.cache", Unreachable())
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert_unauthorized(api.get("/v1/api-keys/me", key=plaintext), "Invalid API key")
