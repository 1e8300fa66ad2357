"""``/v1/workspaces``: master keys list and create every workspace, admins see their own."""

from __future__ import annotations

import time

import pytest

from tenancy.models import AuditLog, Workspace

WORKSPACES = "/v1/workspaces"


def ids_of(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [w["id"] for w in response.json()["items"]]


def test_a_master_key_lists_every_workspace(api, master, workspace):
    workspace("acme")
    workspace("beta")
    response = api.get(WORKSPACES, key=master[1])
    assert ids_of(response) == ["acme", "beta", "default"]
    body = response.json()
    assert set(body) == {"items", "total", "page", "limit", "totalPages"}
    assert body["total"] == 3
    assert set(body["items"][0]) == {"id", "name", "created_at"}
    assert isinstance(body["items"][0]["created_at"], int)


def test_a_workspace_admin_sees_only_its_own_workspace(api, make_key, workspace):
    workspace("beta")
    _, acme_admin = make_key("read,write,admin", workspace="acme")
    assert ids_of(api.get(WORKSPACES, key=acme_admin, workspace="acme")) == ["acme"]
    _, default_admin = make_key("read,write,admin")
    assert ids_of(api.get(WORKSPACES, key=default_admin)) == ["default"]


def test_listing_workspaces_requires_admin(api, make_key):
    _, reader = make_key("read,write")
    response = api.get(WORKSPACES, key=reader)
    assert response.status_code == 403
    assert response.json()["error"] == "Missing required scope: admin"


def test_the_workspace_list_pages(api, master, workspace):
    for name in ("a1", "a2", "a3"):
        workspace(name)
    body = api.get(f"{WORKSPACES}?limit=2&page=2", key=master[1]).json()
    assert [w["id"] for w in body["items"]] == ["a3", "default"]
    assert body["total"] == 4
    assert body["totalPages"] == 2
    assert api.get(f"{WORKSPACES}?limit=0", key=master[1]).status_code == 422


def test_a_master_key_creates_a_workspace(api, master):
    before = int(time.time())
    response = api.post(WORKSPACES, key=master[1], json={"id": "acme", "name": "Acme Inc."})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "name", "created_at"}
    assert body["id"] == "acme"
    assert body["name"] == "Acme Inc."
    assert before - 1 <= body["created_at"] <= time.time() + 1
    row = Workspace.objects.get(pk="acme")
    assert row.name == "Acme Inc."
    assert int(row.created_at.timestamp()) == body["created_at"]


def test_a_workspace_name_defaults_to_its_id(api, master):
    body = api.post(WORKSPACES, key=master[1], json={"id": "acme"}).json()
    assert body["name"] == "acme"
    assert Workspace.objects.get(pk="acme").name == "acme"


def test_creating_a_workspace_is_audited(api, master):
    api.post(WORKSPACES, key=master[1], json={"id": "acme"})
    entries = list(
        AuditLog.objects.filter(action="workspace:create").values_list("workspace_id", "target_id")
    )
    assert entries == [("acme", "acme")]
    assert AuditLog.objects.get(action="workspace:create").api_key_name == "root"


def test_a_workspace_admin_cannot_create_workspaces(api, make_key):
    _, admin = make_key("read,write,admin")
    response = api.post(WORKSPACES, key=admin, json={"id": "acme"})
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "FORBIDDEN"
    assert body["error"] == "Only a master key can create workspaces"
    assert not Workspace.objects.filter(pk="acme").exists()


def test_creating_a_workspace_requires_admin_even_for_a_master_key(api, make_key):
    _, master_reader = make_key("read,write", workspace=None)
    response = api.post(WORKSPACES, key=master_reader, json={"id": "acme"})
    assert response.status_code == 403
    assert response.json()["error"] == "Missing required scope: admin"
    assert not Workspace.objects.filter(pk="acme").exists()


def test_a_duplicate_workspace_is_refused(api, master, workspace):
    workspace("acme")
    before = AuditLog.objects.count()
    response = api.post(WORKSPACES, key=master[1], json={"id": "acme"})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "CONFLICT"
    assert body["details"] == {"id": "acme"}
    assert AuditLog.objects.count() == before


@pytest.mark.parametrize("bad", ["bad id", "a/b", "*", "", "a" * 129, None, ["acme"]])
def test_an_invalid_workspace_id_is_refused(api, master, bad):
    count = Workspace.objects.count()
    response = api.post(WORKSPACES, key=master[1], json={"id": bad})
    assert response.status_code == 422, response.content
    fields = response.json()["details"]["fields"]
    assert fields
    assert all(line.startswith('"id"') for line in fields), fields
    assert Workspace.objects.count() == count


def test_a_missing_workspace_id_is_refused(api, master):
    response = api.post(WORKSPACES, key=master[1], json={"name": "x"})
    assert response.status_code == 422
    assert response.json()["details"]["fields"] == ['"id" is required']


def test_a_name_longer_than_200_characters_is_refused(api, master):
    response = api.post(WORKSPACES, key=master[1], json={"id": "acme", "name": "n" * 201})
    assert response.status_code == 422
    assert response.json()["details"]["fields"][0].startswith('"name"')
    assert not Workspace.objects.filter(pk="acme").exists()


def test_a_created_workspace_is_usable_by_its_keys(api, master):
    api.post(WORKSPACES, key=master[1], json={"id": "acme"})
    created = api.post(
        "/v1/api-keys", key=master[1], workspace="acme", json={"name": "acme-ci", "scopes": "read"}
    ).json()
    assert created["workspace_id"] == "acme"
    assert api.get("/v1/api-keys/me", key=created["key"], workspace="acme").status_code == 200
