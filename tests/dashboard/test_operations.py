"""Operations pages: health, API keys (admins mint and revoke), the audit log, rate limits, storage."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.access import SESSION_KEY
from tenancy.models import ApiKey, AuditLog
from tenancy.services import api_key_revoke
from tests.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

OPS = "/operations"
CREATE = "/operations/keys"
AUDIT = "/operations/audit"


def _revoke_url(key: ApiKey) -> str:
    return f"/operations/keys/{key.pk}/revoke"


def _doc(name: str, version: str) -> dict[str, object]:
    return {"name": name, "version": version, "messages": [{"role": "user", "content": "Hi {{who}}"}]}


def _new_key(html: str) -> str | None:
    match = re.search(r'id="new-key-value">(pm_[0-9a-f]+)<', html)
    return match.group(1) if match else None


# --- the status page ----------------------------------------------------------------------------


def test_a_viewer_sees_health_rate_limits_storage_and_keys_without_forms(client_as, make_key) -> None:
    key, plaintext = make_key("read,ingest", workspace="acme", name="billing-service")

    response = client_as("viewer", "acme").get(OPS)

    assert response.status_code == 200
    html = response.content.decode()
    assert "System health" in html and "Ingest lag" in html
    assert 'id="api-keys"' in html and "billing-service" in html and "read,ingest" in html
    assert plaintext not in html and key.key_hash not in html
    assert 'data-rate="limit">300 requests per 60 s' in html
    assert "RATE_LIMIT_WINDOW_MS=60000" in html
    assert 'data-storage="driver">git<' in html
    assert "http://testserver/git/acme.git" in html
    assert "git clone http://x:$PROMPTMETRICS_API_KEY@testserver/git/acme.git" in html
    assert 'id="key-form"' not in html and "/revoke" not in html
    assert "Only admins of this workspace" in html


def test_an_editor_sees_no_key_forms_either(client_as, make_key) -> None:
    make_key("read", workspace="acme")

    html = client_as("editor", "acme").get(OPS).content.decode()

    assert 'id="key-form"' not in html and "/revoke" not in html


def test_an_admin_sees_the_create_form_and_revoke_buttons(client_as, make_key) -> None:
    key, _ = make_key("read", workspace="acme")

    html = client_as("admin", "acme").get(OPS).content.decode()

    assert 'id="key-form"' in html
    assert f'action="{_revoke_url(key)}"' in html and "data-confirm=" in html


def test_an_empty_workspace_says_it_has_no_keys(client_as) -> None:
    html = client_as("viewer", "acme").get(OPS).content.decode()

    assert "This workspace has no API keys yet." in html


def test_revoked_and_expired_keys_are_marked(client_as, make_key) -> None:
    revoked, _ = make_key("read", workspace="acme", name="old")
    api_key_revoke(api_key=revoked, actor=TEST_ACTOR)
    make_key("read", workspace="acme", name="stale", expires_at=timezone.now() - timedelta(days=1))
    make_key("read", workspace="acme", name="fresh")

    html = client_as("admin", "acme").get(OPS).content.decode()

    statuses = dict(
        re.findall(r"<td>(old|stale|fresh)</td>.*?class=\"badge [a-z]+\"[^>]*>(\w+)<", html, re.S)
    )
    assert statuses == {"old": "revoked", "stale": "expired", "fresh": "active"}
    # A revoked key has nothing left to revoke.
    assert _revoke_url(revoked) not in html


def test_disabled_rate_limiting_and_redis_backend_are_shown(client_as, settings) -> None:
    settings.RATE_LIMIT_MAX_REQUESTS = 0
    settings.REDIS_URL = "redis://cache.internal:6379/0"

    html = client_as("viewer", "acme").get(OPS).content.decode()

    assert 'data-rate="limit">disabled' in html
    assert "Redis, shared by every worker and node" in html


def test_a_custom_rate_limit_is_shown_with_its_rate(client_as, settings) -> None:
    settings.RATE_LIMIT_MAX_REQUESTS = 120
    settings.RATE_LIMIT_WINDOW_MS = 30_000

    html = client_as("viewer", "acme").get(OPS).content.decode()

    assert "120 requests per 30 s" in html and "4 requests/s" in html


class _S3Store:
    driver = "s3"

    def describe(self) -> dict[str, str]:
        return {
            "driver": "s3",
            "location": "s3://prompts-bucket/prompts/",
            "endpoint": "http://minio:9000",
            "region": "eu-west-1",
        }

    def healthy(self) -> bool:
        return True


def test_the_s3_driver_shows_its_bucket_and_no_git_section(client_as, monkeypatch, settings) -> None:
    settings.DRIVER = "s3"
    settings.S3_SECRET_KEY = "very-secret-value"
    monkeypatch.setattr("dashboard.views.operations.get_store", lambda: _S3Store())
    monkeypatch.setattr("config.health.storage_healthy", lambda: True)

    html = client_as("viewer", "acme").get(OPS).content.decode()

    assert "s3://prompts-bucket/prompts/" in html and "http://minio:9000" in html and "eu-west-1" in html
    assert "git clone" not in html and "/git/acme.git" not in html
    assert "very-secret-value" not in html


def test_the_status_page_costs_a_fixed_number_of_queries(client_as, make_key, django_assert_max_num_queries):
    for _ in range(30):
        make_key("read", workspace="acme")
    client = client_as("admin", "acme")

    # Session, user, memberships, health's SELECT 1, key count and one page of keys.
    with django_assert_max_num_queries(7):
        response = client.get(OPS)

    assert response.content.decode().count("data-key-id=") == 30


def test_keys_are_paged(client_as, make_key) -> None:
    for i in range(55):
        make_key("read", workspace="acme", name=f"k{i:02d}")
    client = client_as("viewer", "acme")

    first = client.get(OPS).content.decode()
    second = client.get(OPS, {"page": 2}).content.decode()

    assert first.count("data-key-id=") == 50 and "Page 1 of 2" in first
    assert second.count("data-key-id=") == 5 and "<td>k00</td>" in second


# --- minting keys ---------------------------------------------------------------------------------


def test_an_admin_mints_a_key_and_sees_it_exactly_once(client_as, api) -> None:
    client = client_as("admin", "acme")

    response = client.post(CREATE, {"name": "ci-bot", "scopes": ["read", "write"]})

    assert response.status_code == 302
    assert response["Location"] == "/operations#new-key"
    key = ApiKey.objects.get(name="ci-bot")
    assert key.workspace_id == "acme" and key.scopes == "read,write" and key.expires_at is None
    entry = AuditLog.objects.get(action="api_key:create", target_id=str(key.pk))
    assert entry.workspace_id == "acme" and entry.user is not None and entry.ip_address == "127.0.0.1"

    assert client.head(OPS).status_code == 200
    shown = client.get(OPS)
    plaintext = _new_key(shown.content.decode())
    assert plaintext is not None and "shown only this once" in shown.content.decode()
    assert "no-store" in shown["Cache-Control"]
    assert _new_key(client.get(OPS).content.decode()) is None
    assert plaintext not in response["Location"]

    me = api.get("/v1/api-keys/me", key=plaintext, workspace="acme")
    assert me.status_code == 200 and me.json()["name"] == "ci-bot" and me.json()["workspace_id"] == "acme"


def test_a_key_with_an_expiry_expires_after_those_days(client_as) -> None:
    client_as("admin", "acme").post(CREATE, {"name": "temp", "scopes": ["ingest"], "expires_in_days": "30"})

    key = ApiKey.objects.get(name="temp")
    assert key.scopes == "ingest"
    assert abs(key.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "scopes": ["read"]}, "This field is required."),
        ({"name": "x", "scopes": []}, "Choose at least one scope."),
        ({"name": "x", "scopes": ["root"]}, "Select a valid choice."),
        ({"name": "x", "scopes": ["read"], "expires_in_days": "0"}, "greater than or equal to 1"),
        ({"name": "x", "scopes": ["read"], "expires_in_days": "soon"}, "Enter a whole number."),
        ({"name": "x" * 129, "scopes": ["read"]}, "at most 128 characters"),
    ],
)
def test_bad_key_input_is_explained_and_creates_nothing(
    client_as, data: dict[str, Any], message: str
) -> None:
    response = client_as("admin", "acme").post(CREATE, data)

    assert response.status_code == 422
    assert message in response.content.decode()
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_admins_mint_keys(client_as, role: str) -> None:
    response = client_as(role, "acme").post(CREATE, {"name": "sneaky", "scopes": ["admin"]})

    assert response.status_code == 403
    assert not ApiKey.objects.exists() and not AuditLog.objects.exists()


# --- revoking keys --------------------------------------------------------------------------------


def test_an_admin_revokes_a_key_and_it_stops_working(
    client_as, make_key, api, django_capture_on_commit_callbacks
) -> None:
    key, plaintext = make_key("read", workspace="acme", name="leaked")
    assert api.get("/v1/api-keys/me", key=plaintext, workspace="acme").status_code == 200
    client = client_as("admin", "acme")

    # The revocation reaches every worker's key cache when its transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_revoke_url(key), follow=True)

    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "API key “leaked” revoked" in response.content.decode()
    assert AuditLog.objects.filter(
        action="api_key:revoke", target_id=str(key.pk), workspace_id="acme"
    ).exists()
    assert api.get("/v1/api-keys/me", key=plaintext, workspace="acme").status_code == 401

    again = client.post(_revoke_url(key), follow=True)
    assert "was already revoked" in again.content.decode()
    assert AuditLog.objects.filter(action="api_key:revoke").count() == 1


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_admins_revoke_keys(client_as, make_key, role: str) -> None:
    key, _ = make_key("read", workspace="acme")

    response = client_as(role, "acme").post(_revoke_url(key))

    assert response.status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_key_urls_take_no_reads(client_as, make_key) -> None:
    key, _ = make_key("read", workspace="acme")
    client = client_as("admin", "acme")

    assert client.get(CREATE, {"page": "2"})["Location"] == "/operations?page=2"
    assert client.get(_revoke_url(key)).status_code == 405


# --- tenant isolation -----------------------------------------------------------------------------


def test_another_workspaces_keys_and_master_keys_are_invisible_and_unrevocable(client_as, make_key) -> None:
    other, _ = make_key("read", workspace="globex", name="globex-key")
    master, _ = make_key("read,write,admin", workspace=None, name="root-master")
    mine, _ = make_key("read", workspace="acme", name="acme-key")
    client = client_as("admin", "acme")

    html = client.get(OPS).content.decode()

    assert "acme-key" in html and "globex-key" not in html and "root-master" not in html
    for key in (other, master):
        assert client.post(_revoke_url(key)).status_code == 404
        key.refresh_from_db()
        assert key.revoked_at is None
    assert mine.revoked_at is None


def test_a_key_shown_once_stays_in_its_workspace(member) -> None:
    user = member("admin", "acme", username="both")
    member("admin", "globex", username="both")
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_KEY] = "acme"
    session.save()
    client.post(CREATE, {"name": "acme-only", "scopes": ["read"]})

    client.post("/workspace", {"workspace": "globex", "next": OPS})
    html = client.get(OPS).content.decode()

    assert _new_key(html) is None and "acme-only" not in html


# --- the audit log --------------------------------------------------------------------------------


def _audit_rows(html: str) -> list[str]:
    return re.findall(r'<a class="mono" href="[^"]*" title="Only [^"]+">([^<]+)</a>', html)


def test_the_audit_log_lists_changes_newest_first(client_as, make_key, api) -> None:
    _, key = make_key("read,write", workspace="acme", name="writer")
    assert (
        api.post("/v1/prompts", key=key, workspace="acme", json=_doc("welcome", "1.0.0")).status_code == 201
    )

    response = client_as("admin", "acme").get(AUDIT)

    assert response.status_code == 200
    html = response.content.decode()
    assert _audit_rows(html) == ["create_prompt", "api_key:create"]
    assert "welcome" in html and "1.0.0" in html and ">writer <" in html
    assert 'id="audit-log"' in html
    assert '<option value="api_key:create">' in html and '<option value="create_prompt">' in html


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_admins_read_the_audit_log(client_as, role) -> None:
    client = client_as(role, "acme")
    response = client.get(AUDIT)
    assert response.status_code == 403
    assert "Audit log" not in client.get("/operations").content.decode()


def test_an_empty_audit_log_says_so(client_as) -> None:
    html = client_as("admin", "acme").get(AUDIT).content.decode()

    assert "Nothing has been changed in this workspace yet." in html


def test_audit_filters_by_action_and_time(client_as, make_key) -> None:
    key, _ = make_key("read", workspace="acme")
    api_key_revoke(api_key=key, actor=TEST_ACTOR)
    AuditLog.objects.filter(action="api_key:create").update(timestamp=timezone.now() - timedelta(days=3))
    client = client_as("admin", "acme")

    by_action = client.get(AUDIT, {"action": "api_key:create"}).content.decode()
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    recent = client.get(AUDIT, {"from": since}).content.decode()
    old = client.get(AUDIT, {"to": since}).content.decode()
    none = client.get(AUDIT, {"action": "label:create"}).content.decode()

    assert _audit_rows(by_action) == ["api_key:create"]
    assert _audit_rows(recent) == ["api_key:revoke"]
    assert _audit_rows(old) == ["api_key:create"]
    assert _audit_rows(none) == [] and "No audit entries match these filters." in none


def test_a_bad_audit_time_is_explained_not_a_500(client_as, make_key) -> None:
    make_key("read", workspace="acme")

    response = client_as("admin", "acme").get(AUDIT, {"from": "yesterday-ish"})

    assert response.status_code == 200
    assert "From: must be Unix seconds or an ISO 8601 date-time" in response.content.decode()
    assert _audit_rows(response.content.decode()) == []


def test_the_audit_log_is_paged(client_as, make_key) -> None:
    for _ in range(55):
        make_key("read", workspace="acme")
    client = client_as("admin", "acme")

    first = client.get(AUDIT).content.decode()
    second = client.get(AUDIT, {"page": 2}).content.decode()

    assert len(_audit_rows(first)) == 50 and "Page 1 of 2" in first
    assert len(_audit_rows(second)) == 5


def test_the_audit_log_never_shows_another_workspace(client_as, make_key) -> None:
    make_key("read", workspace="globex", name="globex-key")
    make_key("read", workspace="acme", name="acme-key")

    html = client_as("admin", "acme").get(AUDIT).content.decode()

    assert len(_audit_rows(html)) == 1
    globex_id = str(ApiKey.objects.get(name="globex-key").pk)
    assert f'title="{globex_id}"' not in html


def test_the_audit_page_costs_a_fixed_number_of_queries(
    client_as, make_key, django_assert_max_num_queries
) -> None:
    for _ in range(30):
        make_key("read", workspace="acme")
    client = client_as("admin", "acme")

    # Session, user, memberships, entry count, one page of entries, the distinct actions.
    with django_assert_max_num_queries(6):
        response = client.get(AUDIT)

    assert len(_audit_rows(response.content.decode())) == 30
