"""Dashboard users calling the API with their Django session: roles become scopes per workspace."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tenancy.models import Membership, Workspace

PROBES = pytest.mark.urls("tests.tenancy.test_auth")  # read / write / ingest probe endpoints


@pytest.fixture
def member(db, django_user_model):
    def make(role: str | None, workspace: str = "acme", **extra) -> APIClient:
        user = django_user_model.objects.create_user(username=f"u-{role}-{workspace}", password="x", **extra)
        ws = Workspace.objects.get_or_create(id=workspace)[0]
        if role:
            Membership.objects.create(user=user, workspace=ws, role=role)
        client = APIClient()
        client.force_login(user)
        client.defaults["HTTP_X_WORKSPACE_ID"] = workspace
        return client

    return make


def test_a_user_without_membership_is_refused(member):
    response = member(None).get("/v1/api-keys/me")
    assert response.status_code == 401
    assert response.json()["error"] == "You are not a member of this workspace"


def test_a_member_is_refused_in_another_workspace(member):
    client = member("admin", workspace="acme")
    response = client.get("/v1/api-keys/me", HTTP_X_WORKSPACE_ID="default")
    assert response.status_code == 401


def test_me_describes_the_session_user(member):
    body = member("editor").get("/v1/api-keys/me").json()
    assert body == {
        "id": None,
        "name": "u-editor-acme",
        "scopes": "read,write,ingest",
        "workspace_id": "acme",
        "expires_at": None,
    }


@PROBES
@pytest.mark.parametrize(
    ("role", "read", "write", "ingest", "admin"),
    [
        ("viewer", 200, 403, 403, 403),
        ("editor", 200, 201, 201, 403),
        ("admin", 200, 201, 201, 200),
    ],
)
def test_roles_map_to_scopes(member, role, read, write, ingest, admin):
    client = member(role)
    assert client.get("/v1/probe/read").status_code == read
    assert client.post("/v1/probe/write").status_code == write
    assert client.post("/v1/probe/ingest").status_code == ingest
    assert client.get("/v1/audit-logs").status_code == admin


def test_a_superuser_may_act_in_any_existing_workspace(member):
    client = member(None, workspace="default", is_superuser=True, is_staff=True)
    Workspace.objects.create(id="other")
    assert client.get("/v1/audit-logs", HTTP_X_WORKSPACE_ID="other").status_code == 200
    assert client.get("/v1/workspaces").json()["total"] == Workspace.objects.count()
    missing = client.get("/v1/api-keys/me", HTTP_X_WORKSPACE_ID="nowhere")
    assert missing.status_code == 401
    assert not Workspace.objects.filter(pk="nowhere").exists()


def test_session_writes_need_the_csrf_token(db, django_user_model):
    user = django_user_model.objects.create_user(username="csrf", password="x")
    Membership.objects.create(user=user, workspace_id="default", role="admin")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/v1/api-keys", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


def test_sessions_are_not_rate_limited(member, settings):
    settings.RATE_LIMIT_MAX_REQUESTS = 1
    client = member("viewer")
    responses = [client.get("/v1/api-keys/me") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "RateLimit-Limit" not in responses[-1]
