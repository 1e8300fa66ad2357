"""``/v1/api-keys``: minting, listing, revoking and describing keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import pytest
from django.conf import settings

from tenancy.models import ApiKey, AuditLog, Workspace

KEYS = "/v1/api-keys"
ME = "/v1/api-keys/me"
KEY_RE = re.compile(r"^pm_[0-9a-f]{64}$")


def hmac_hex(plaintext: str) -> str:
    return hmac.new(settings.API_KEY_SALT.encode(), plaintext.encode(), hashlib.sha256).hexdigest()


def fields_of(response) -> list[str]:
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert body["error"] == "Validation failed"
    assert body["detailsType"] == "fields"
    return body["details"]["fields"]


# --- POST /v1/api-keys ---


def test_creating_a_key_returns_the_plaintext_once(api, admin):
    before = int(time.time())
    response = api.post(KEYS, key=admin[1], json={"name": "ci", "scopes": "read"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "name", "workspace_id", "scopes", "created_at", "expires_at", "key"}
    assert KEY_RE.match(body["key"])
    assert body["name"] == "ci"
    assert body["scopes"] == "read"
    assert body["workspace_id"] == "default"
    assert body["expires_at"] is None
    assert before - 1 <= body["created_at"] <= time.time() + 1
    row = ApiKey.objects.get(pk=body["id"])
    assert row.name == "ci"
    assert row.workspace_id == "default"
    assert row.scopes == "read"
    # The new key works.
    me = api.get(ME, key=body["key"])
    assert me.status_code == 200
    assert me.json()["id"] == body["id"]


def test_only_the_hmac_of_a_created_key_is_stored(api, admin):
    body = api.post(KEYS, key=admin[1], json={"name": "ci"}).json()
    plaintext = body["key"]
    row = ApiKey.objects.filter(pk=body["id"]).values().get()
    assert row["key_hash"] == hmac_hex(plaintext)
    for value in row.values():
        assert plaintext[3:] not in str(value)
    for entry in AuditLog.objects.values():
        for value in entry.values():
            assert plaintext[3:] not in str(value)


def test_two_created_keys_differ(api, admin):
    first = api.post(KEYS, key=admin[1], json={"name": "a"}).json()["key"]
    second = api.post(KEYS, key=admin[1], json={"name": "b"}).json()["key"]
    assert first != second


def test_the_default_scopes_are_read_and_write(api, admin):
    body = api.post(KEYS, key=admin[1], json={"name": "ci"}).json()
    assert body["scopes"] == "read,write"
    assert ApiKey.objects.get(pk=body["id"]).scopes == "read,write"


def test_scopes_are_normalized(api, admin):
    body = api.post(KEYS, key=admin[1], json={"name": "ci", "scopes": " admin , read,read"}).json()
    assert body["scopes"] == "read,admin"


def test_the_key_belongs_to_the_request_workspace_by_default(api, make_key):
    _, acme_admin = make_key("read,write,admin", workspace="acme")
    body = api.post(KEYS, key=acme_admin, workspace="acme", json={"name": "ci"}).json()
    assert body["workspace_id"] == "acme"
    assert ApiKey.objects.get(pk=body["id"]).workspace_id == "acme"


def test_expires_in_days_sets_expires_at(api, admin):
    before = time.time()
    response = api.post(KEYS, key=admin[1], json={"name": "ci", "expires_in_days": 7})
    assert response.status_code == 201
    body = response.json()
    expected = before + 7 * 86400
    assert expected - 2 <= body["expires_at"] <= expected + 5
    stored = ApiKey.objects.get(pk=body["id"]).expires_at.timestamp()
    assert int(stored) == body["expires_at"]
    assert api.get(ME, key=body["key"]).json()["expires_at"] == body["expires_at"]


@pytest.mark.parametrize("days", [0, -1, "soon", 1.5, 36501])
def test_an_invalid_expiry_is_refused(api, admin, days):
    fields = fields_of(api.post(KEYS, key=admin[1], json={"name": "ci", "expires_in_days": days}))
    assert any(line.startswith('"expires_in_days"') for line in fields), fields
    assert not ApiKey.objects.filter(name="ci").exists()


def test_an_array_of_scopes_is_refused(api, admin):
    fields = fields_of(api.post(KEYS, key=admin[1], json={"name": "ci", "scopes": ["read", "write"]}))
    assert len(fields) == 1
    assert fields[0].startswith('"scopes"')
    assert not ApiKey.objects.filter(name="ci").exists()


@pytest.mark.parametrize("scopes", ["read,superuser", "root", "", " , "])
def test_an_unknown_or_empty_scope_is_refused(api, admin, scopes):
    count = ApiKey.objects.count()
    fields = fields_of(api.post(KEYS, key=admin[1], json={"name": "ci", "scopes": scopes}))
    assert len(fields) == 1
    assert fields[0].startswith('"scopes"')
    assert ApiKey.objects.count() == count


def test_a_missing_name_is_refused(api, admin):
    assert fields_of(api.post(KEYS, key=admin[1], json={"scopes": "read"})) == ['"name" is required']


@pytest.mark.parametrize("name", ["", None])
def test_an_empty_name_is_refused(api, admin, name):
    assert fields_of(api.post(KEYS, key=admin[1], json={"name": name})) == ['"name" is required']


def test_a_name_longer_than_128_characters_is_refused(api, admin):
    fields = fields_of(api.post(KEYS, key=admin[1], json={"name": "n" * 129}))
    assert fields[0].startswith('"name"')
    assert api.post(KEYS, key=admin[1], json={"name": "n" * 128}).status_code == 201


def test_a_non_object_body_is_refused(api, admin):
    response = api.post(KEYS, key=admin[1], json=["name", "ci"])
    assert response.status_code == 422
    assert response.json()["detailsType"] == "fields"


def test_a_workspace_admin_cannot_mint_keys_for_another_workspace(api, admin, workspace):
    workspace("acme")
    count = ApiKey.objects.count()
    response = api.post(KEYS, key=admin[1], json={"name": "x", "workspace_id": "acme"})
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    assert response.json()["error"] == "Admin keys can only create keys for their own workspace"
    assert ApiKey.objects.count() == count


def test_a_workspace_admin_cannot_mint_keys_for_a_new_workspace(api, admin):
    response = api.post(KEYS, key=admin[1], json={"name": "x", "workspace_id": "elsewhere"})
    assert response.status_code == 403
    assert not Workspace.objects.filter(pk="elsewhere").exists()


def test_a_workspace_admin_cannot_mint_master_keys(api, admin):
    response = api.post(KEYS, key=admin[1], json={"name": "x", "workspace_id": "*"})
    assert response.status_code == 403
    assert response.json()["error"] == "Only a master key can create master keys"
    assert not ApiKey.objects.filter(name="x").exists()


def test_a_workspace_admin_may_name_its_own_workspace(api, make_key):
    _, acme_admin = make_key("read,write,admin", workspace="acme")
    response = api.post(KEYS, key=acme_admin, workspace="acme", json={"name": "x", "workspace_id": "acme"})
    assert response.status_code == 201
    assert response.json()["workspace_id"] == "acme"


def test_a_master_key_can_mint_master_keys(api, master):
    response = api.post(KEYS, key=master[1], json={"name": "root2", "workspace_id": "*", "scopes": "read"})
    assert response.status_code == 201
    body = response.json()
    assert body["workspace_id"] == "*"
    assert ApiKey.objects.get(pk=body["id"]).workspace_id is None
    me = api.get(ME, key=body["key"], workspace="anywhere")
    assert me.status_code == 200
    assert me.json()["workspace_id"] == "*"


def test_a_master_key_can_mint_keys_for_any_workspace(api, master):
    response = api.post(KEYS, key=master[1], json={"name": "newco-ci", "workspace_id": "newco"})
    assert response.status_code == 201
    body = response.json()
    assert body["workspace_id"] == "newco"
    assert Workspace.objects.filter(pk="newco").exists()
    assert api.get(ME, key=body["key"], workspace="newco").status_code == 200
    assert api.get(ME, key=body["key"]).status_code == 401


def test_an_invalid_workspace_id_in_the_body_is_refused(api, master):
    fields = fields_of(api.post(KEYS, key=master[1], json={"name": "x", "workspace_id": "bad id"}))
    assert fields[0].startswith('"workspace_id"')
    assert not Workspace.objects.filter(pk="bad id").exists()


def test_a_refused_creation_leaves_no_workspace_behind(api, master):
    response = api.post(KEYS, key=master[1], json={"name": "x", "workspace_id": "newco", "scopes": "nope"})
    assert response.status_code == 422
    assert not Workspace.objects.filter(pk="newco").exists()


# --- GET /v1/api-keys ---


def test_the_list_is_a_paginated_envelope_without_secrets(api, admin, make_key):
    _, plaintext = make_key("read", name="other")
    response = api.get(KEYS, key=admin[1])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "total", "page", "limit", "totalPages"}
    assert body["total"] == 2
    assert body["page"] == 1
    assert body["limit"] == 50
    assert body["totalPages"] == 1
    for item in body["items"]:
        assert "key_hash" not in item
        assert "key" not in item
        assert {"id", "name", "scopes", "workspace_id", "created_at", "expires_at"} <= set(item)
        assert isinstance(item["created_at"], int)
    assert plaintext[3:] not in response.content.decode()
    assert hmac_hex(plaintext) not in response.content.decode()


def test_the_list_is_newest_first(api, admin, make_key):
    created = [make_key("read", name=f"k{i}")[0].pk for i in range(3)]
    ids = [item["id"] for item in api.get(KEYS, key=admin[1]).json()["items"]]
    assert ids == sorted([admin[0].pk, *created], reverse=True)


def test_a_workspace_admin_lists_only_its_workspace(api, admin, make_key):
    mine = make_key("read", name="mine")[0]
    make_key("read", workspace="acme", name="theirs")
    make_key("read", workspace=None, name="master")
    items = api.get(KEYS, key=admin[1]).json()["items"]
    assert {item["id"] for item in items} == {admin[0].pk, mine.pk}
    assert {item["workspace_id"] for item in items} == {"default"}


def test_a_master_key_lists_every_workspace(api, master, make_key):
    acme = make_key("read", workspace="acme")[0]
    default = make_key("read")[0]
    body = api.get(KEYS, key=master[1]).json()
    by_id = {item["id"]: item["workspace_id"] for item in body["items"]}
    assert by_id == {master[0].pk: "*", acme.pk: "acme", default.pk: "default"}
    assert body["total"] == 3


def test_revoked_keys_are_not_listed(api, admin, make_key):
    gone = make_key("read")[0]
    assert api.delete(f"{KEYS}/{gone.pk}", key=admin[1]).status_code == 204
    ids = [item["id"] for item in api.get(KEYS, key=admin[1]).json()["items"]]
    assert ids == [admin[0].pk]


def test_the_list_pages(api, admin, make_key):
    for i in range(4):
        make_key("read", name=f"k{i}")
    all_ids = [item["id"] for item in api.get(KEYS, key=admin[1]).json()["items"]]
    page2 = api.get(f"{KEYS}?page=2&limit=2", key=admin[1]).json()
    assert page2["total"] == 5
    assert page2["page"] == 2
    assert page2["limit"] == 2
    assert page2["totalPages"] == 3
    assert [item["id"] for item in page2["items"]] == all_ids[2:4]
    beyond = api.get(f"{KEYS}?page=9&limit=2", key=admin[1]).json()
    assert beyond["items"] == []
    assert beyond["total"] == 5


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", '"limit" must be greater than or equal to 1'),
        ("limit=101", '"limit" must be less than or equal to 100'),
        ("page=abc", '"page" must be a number'),
        ("page=0", '"page" must be greater than or equal to 1'),
        ("limit=1.5", '"limit" must be a number'),
    ],
)
def test_invalid_pagination_is_refused(api, admin, query, message):
    assert fields_of(api.get(f"{KEYS}?{query}", key=admin[1])) == [message]


@pytest.mark.parametrize("page", ["99999999999999999999", "9223372036854775807", "3"])
def test_a_page_past_the_end_is_empty(api, admin, make_key, page):
    make_key("read")
    body = api.get(f"{KEYS}?page={page}&limit=1", key=admin[1]).json()
    assert body["items"] == []
    assert body["total"] == 2
    assert body["page"] == int(page)
    assert body["totalPages"] == 2


def test_the_largest_page_size_is_accepted(api, admin):
    body = api.get(f"{KEYS}?limit=100", key=admin[1]).json()
    assert body["limit"] == 100


def test_listing_keys_costs_a_fixed_number_of_queries(
    api, admin, make_key, django_assert_max_num_queries, django_assert_num_queries
):
    for i in range(12):
        make_key("read", name=f"k{i}")
        make_key("read", workspace=None, name=f"m{i}")
    # Cold: key lookup, last_used_at write, count, page.
    with django_assert_max_num_queries(4):
        response = api.get(KEYS, key=admin[1])
    assert response.json()["total"] == 13
    assert len(response.json()["items"]) == 13
    # Warm: the key is cached, so only count and page remain.
    with django_assert_num_queries(2):
        assert api.get(KEYS, key=admin[1]).status_code == 200


def test_listing_every_workspace_costs_a_fixed_number_of_queries(
    api, master, make_key, django_assert_max_num_queries
):
    for i in range(10):
        make_key("read", workspace=f"ws{i}")
    # Key lookup, the master key's workspace check (once per process), last_used_at, count, page.
    with django_assert_max_num_queries(5):
        response = api.get(KEYS, key=master[1])
    assert response.json()["total"] == 11


# --- DELETE /v1/api-keys/{id} ---


def test_revoking_a_key_returns_204_and_the_key_stops_working(api, admin, make_key):
    key, plaintext = make_key("read")
    response = api.delete(f"{KEYS}/{key.pk}", key=admin[1])
    assert response.status_code == 204
    assert response.content == b""
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api.get(ME, key=plaintext).status_code == 401


def test_a_key_can_revoke_itself(api, admin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"{KEYS}/{admin[0].pk}", key=admin[1]).status_code == 204
    assert api.get(ME, key=admin[1]).status_code == 401


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "%20", "1_0", "+3", "-1", "%201"])
def test_a_non_integer_id_is_refused(api, admin, raw):
    assert fields_of(api.delete(f"{KEYS}/{raw}", key=admin[1])) == ["Invalid API key id"]


def test_an_unknown_id_is_not_found(api, admin):
    response = api.delete(f"{KEYS}/999999", key=admin[1])
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "NOT_FOUND"
    assert body["error"] == "API key not found"


def test_an_already_revoked_key_is_not_found(api, admin, make_key):
    key = make_key("read")[0]
    assert api.delete(f"{KEYS}/{key.pk}", key=admin[1]).status_code == 204
    assert api.delete(f"{KEYS}/{key.pk}", key=admin[1]).status_code == 404
    assert AuditLog.objects.filter(action="api_key:revoke", target_id=str(key.pk)).count() == 1


def test_another_workspaces_key_is_not_found(api, admin, make_key):
    theirs, their_plaintext = make_key("read", workspace="acme")
    response = api.delete(f"{KEYS}/{theirs.pk}", key=admin[1])
    assert response.status_code == 404
    assert response.json()["error"] == "API key not found"
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert api.get(ME, key=their_plaintext, workspace="acme").status_code == 200


def test_a_workspace_admin_cannot_revoke_a_master_key(api, admin, master):
    assert api.delete(f"{KEYS}/{master[0].pk}", key=admin[1]).status_code == 404
    master[0].refresh_from_db()
    assert master[0].revoked_at is None


def test_a_master_key_can_revoke_any_workspaces_key(api, master, make_key):
    theirs, their_plaintext = make_key("read", workspace="acme")
    assert api.delete(f"{KEYS}/{theirs.pk}", key=master[1]).status_code == 204
    assert api.get(ME, key=their_plaintext, workspace="acme").status_code == 401


def test_revoking_needs_the_admin_scope(api, make_key):
    victim = make_key("read")[0]
    _, writer = make_key("read,write")
    response = api.delete(f"{KEYS}/{victim.pk}", key=writer)
    assert response.status_code == 403
    victim.refresh_from_db()
    assert victim.revoked_at is None


# --- GET /v1/api-keys/me ---


def test_me_describes_the_calling_key(api, make_key):
    key, plaintext = make_key("write,read", workspace="acme", name="probe")
    response = api.get(ME, key=plaintext, workspace="acme")
    assert response.status_code == 200
    assert response.json() == {
        "id": key.pk,
        "name": "probe",
        "scopes": "read,write",
        "workspace_id": "acme",
        "expires_at": None,
    }


def test_me_describes_a_master_key(api, master):
    assert api.get(ME, key=master[1], workspace="acme").json() == {
        "id": master[0].pk,
        "name": "root",
        "scopes": "read,write,admin",
        "workspace_id": "*",
        "expires_at": None,
    }
