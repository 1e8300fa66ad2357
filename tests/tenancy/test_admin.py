"""The Django admin for workspaces, API keys and the audit log, used by a superuser."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from tenancy.keys import hash_key
from tenancy.models import ApiKey, AuditLog, Workspace
from tenancy.services import audit_record
from tests.conftest import TEST_ACTOR

KEY_RE = re.compile(r"pm_[0-9a-f]{64}")


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(username="ops", email="", password="pw-not-used")


@pytest.fixture
def browser(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def add_key(browser: Client, **fields) -> tuple[object, list[str]]:
    data = {"name": "from-admin", "workspace": "default", "scopes": ["read", "write"], **fields}
    response = browser.post("/admin/tenancy/apikey/add/", data, follow=True)
    return response, [str(m) for m in get_messages(response.wsgi_request)]


def test_the_admin_requires_a_login(db):
    response = Client().get("/admin/tenancy/apikey/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_adding_a_key_shows_the_plaintext_once_and_stores_only_its_hash(browser, api):
    response, messages = add_key(browser, scopes=["read", "admin"], expires_in_days="")
    assert response.status_code == 200
    shown = [KEY_RE.search(m) for m in messages]
    plaintexts = [m.group(0) for m in shown if m]
    assert len(plaintexts) == 1
    plaintext = plaintexts[0]
    assert response.content.decode().count(plaintext) == 1

    key = ApiKey.objects.get(name="from-admin")
    assert key.key_hash == hash_key(plaintext)
    assert key.scopes == "read,admin"
    assert key.workspace_id == "default"
    assert key.expires_at is None
    for value in ApiKey.objects.filter(pk=key.pk).values().get().values():
        assert plaintext[3:] not in str(value)
    assert api.get("/v1/api-keys/me", key=plaintext).json()["id"] == key.pk

    # The next page load does not show it again.
    again = browser.get(f"/admin/tenancy/apikey/{key.pk}/change/")
    assert plaintext not in again.content.decode()


def test_adding_a_key_is_audited_with_the_admin_user(browser, superuser):
    add_key(browser)
    key = ApiKey.objects.get(name="from-admin")
    entry = AuditLog.objects.get(action="api_key:create", target_id=str(key.pk))
    assert entry.user == superuser
    assert entry.api_key_name == "ops"
    assert entry.workspace_id == "default"


def test_adding_a_master_key(browser):
    _, messages = add_key(browser, workspace="", master="on", scopes=["read", "write", "admin"])
    key = ApiKey.objects.get(name="from-admin")
    assert key.workspace_id is None
    assert key.scopes == "read,write,admin"
    assert any(KEY_RE.search(m) for m in messages)


def test_adding_a_key_with_an_expiry(browser):
    from django.utils import timezone

    add_key(browser, expires_in_days="2")
    key = ApiKey.objects.get(name="from-admin")
    delta = (key.expires_at - timezone.now()).total_seconds()
    assert 2 * 86400 - 60 < delta <= 2 * 86400


def test_a_key_needs_a_workspace_or_master(browser):
    response = browser.post(
        "/admin/tenancy/apikey/add/", {"name": "nowhere", "workspace": "", "scopes": ["read"]}
    )
    assert response.status_code == 200
    assert "Choose a workspace" in response.content.decode()
    assert not ApiKey.objects.filter(name="nowhere").exists()


def test_the_change_page_shows_the_hash_read_only(browser, make_key):
    key, plaintext = make_key("read", name="existing")
    response = browser.get(f"/admin/tenancy/apikey/{key.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert key.key_hash in html
    assert plaintext[3:] not in html
    assert 'name="key_hash"' not in html
    assert 'name="scopes"' not in html
    assert 'name="workspace"' not in html


def test_posting_the_change_form_does_not_alter_the_key(browser, make_key):
    key, _ = make_key("read", name="existing")
    browser.post(
        f"/admin/tenancy/apikey/{key.pk}/change/",
        {"name": "renamed", "scopes": "read,write,admin", "key_hash": "0" * 64, "workspace": ""},
    )
    fresh = ApiKey.objects.get(pk=key.pk)
    assert (fresh.name, fresh.scopes, fresh.key_hash, fresh.workspace_id) == (
        "existing",
        "read",
        key.key_hash,
        "default",
    )


def test_the_revoke_action_revokes(browser, make_key, api, django_capture_on_commit_callbacks):
    first, first_plaintext = make_key("read", name="first")
    second = make_key("read", name="second")[0]
    keep, keep_plaintext = make_key("read", name="keep")
    assert api.get("/v1/api-keys/me", key=first_plaintext).status_code == 200  # cached
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            "/admin/tenancy/apikey/",
            {"action": "revoke_selected", "_selected_action": [first.pk, second.pk]},
            follow=True,
        )
    assert response.status_code == 200
    assert set(ApiKey.objects.filter(revoked_at__isnull=False).values_list("pk", flat=True)) == {
        first.pk,
        second.pk,
    }
    revoked = AuditLog.objects.filter(action="api_key:revoke")
    assert set(revoked.values_list("target_id", flat=True)) == {str(first.pk), str(second.pk)}
    assert set(revoked.values_list("api_key_name", flat=True)) == {"ops"}
    assert api.get("/v1/api-keys/me", key=first_plaintext).status_code == 401
    assert api.get("/v1/api-keys/me", key=keep_plaintext).status_code == 200


def test_keys_cannot_be_deleted_in_the_admin(browser, make_key):
    key = make_key("read")[0]
    assert browser.get(f"/admin/tenancy/apikey/{key.pk}/delete/").status_code == 403
    assert browser.post(f"/admin/tenancy/apikey/{key.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_the_audit_log_admin_is_read_only(browser):
    entry = audit_record(actor=TEST_ACTOR, workspace_id="default", action="test:event", target_id="t1")
    assert browser.get("/admin/tenancy/auditlog/").status_code == 200
    assert browser.get("/admin/tenancy/auditlog/add/").status_code == 403
    view = browser.get(f"/admin/tenancy/auditlog/{entry.pk}/change/")
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    changed = browser.post(
        f"/admin/tenancy/auditlog/{entry.pk}/change/",
        {"action": "tampered", "target_id": "t2", "workspace": "default"},
    )
    assert changed.status_code == 403
    assert browser.post(f"/admin/tenancy/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert (entry.action, entry.target_id) == ("test:event", "t1")


def test_adding_a_workspace_in_the_admin_is_audited(browser, superuser):
    response = browser.post(
        "/admin/tenancy/workspace/add/",
        {
            "id": "acme",
            "name": "Acme Inc.",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Workspace.objects.get(pk="acme").name == "Acme Inc."
    entry = AuditLog.objects.get(action="workspace:create")
    assert (entry.workspace_id, entry.target_id, entry.user, entry.api_key_name) == (
        "acme",
        "acme",
        superuser,
        "ops",
    )


def test_adding_a_duplicate_workspace_in_the_admin_is_refused(browser):
    response = browser.post(
        "/admin/tenancy/workspace/add/",
        {
            "id": "default",
            "name": "again",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert Workspace.objects.get(pk="default").name == "default"
    assert not AuditLog.objects.filter(action="workspace:create").exists()


def test_the_new_key_never_travels_in_a_cookie(browser):
    response = browser.post(
        "/admin/tenancy/apikey/add/", {"name": "c", "workspace": "default", "scopes": ["read"]}
    )
    assert response.status_code == 302
    for morsel in response.cookies.values():
        assert "pm_" not in morsel.value
        assert morsel.key != "messages"


def test_a_workspace_is_deleted_with_its_keys_through_the_admin(
    browser, api, make_key, django_capture_on_commit_callbacks
):
    _, plaintext = make_key("read", workspace="doomed")
    assert api.get("/v1/api-keys/me", key=plaintext, workspace="doomed").status_code == 200

    confirm = browser.get("/admin/tenancy/workspace/doomed/delete/")
    assert confirm.status_code == 200
    assert b"Are you sure" in confirm.content
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post("/admin/tenancy/workspace/doomed/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Workspace.objects.filter(pk="doomed").exists()
    assert not ApiKey.objects.filter(workspace_id="doomed").exists()
    assert api.get("/v1/api-keys/me", key=plaintext, workspace="doomed").status_code == 401


def test_memberships_are_set_and_removed_through_audited_services(browser, superuser, django_user_model):
    alice = django_user_model.objects.create_user(username="alice", password="pw-not-used")
    response = browser.post(
        "/admin/tenancy/membership/add/", {"user": alice.pk, "workspace": "default", "role": "editor"}
    )
    assert response.status_code == 302
    membership = alice.memberships.get()
    assert membership.role == "editor"
    entry = AuditLog.objects.get(action="membership:set")
    assert (entry.workspace_id, entry.target_id, entry.user) == ("default", "alice:editor", superuser)

    response = browser.post(f"/admin/tenancy/membership/{membership.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not alice.memberships.exists()
    assert AuditLog.objects.filter(action="membership:delete", target_id="alice").count() == 1
