"""The audit trail: entries for each audited action, ``GET /v1/audit-logs``, isolation, atomicity."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError

from tenancy import services
from tenancy.context import Actor
from tenancy.models import ApiKey, AuditLog, Workspace
from tenancy.services import api_key_issue, api_key_revoke, audit_record
from tests.conftest import TEST_ACTOR

AUDIT = "/v1/audit-logs"
KEYS = "/v1/api-keys"
ENTRY_FIELDS = {
    "id",
    "action",
    "prompt_name",
    "version_tag",
    "api_key_name",
    "ip_address",
    "timestamp",
    "workspace_id",
    "target_id",
}


def items(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["items"]


# --- Entries written by each audited action ---


def test_creating_a_key_is_audited(api, admin):
    before = int(time.time())
    created = api.post(KEYS, key=admin[1], json={"name": "ci"}).json()
    entry = AuditLog.objects.get(action="api_key:create", target_id=str(created["id"]))
    assert entry.api_key_name == "ws-admin"
    assert entry.workspace_id == "default"
    assert entry.ip_address == "127.0.0.1"
    assert entry.user is None

    listed = [e for e in items(api.get(AUDIT, key=admin[1])) if e["id"] == entry.pk]
    assert len(listed) == 1
    wire = listed[0]
    assert set(wire) == ENTRY_FIELDS
    assert wire["action"] == "api_key:create"
    assert wire["target_id"] == str(created["id"])
    assert wire["api_key_name"] == "ws-admin"
    assert wire["ip_address"] == "127.0.0.1"
    assert wire["workspace_id"] == "default"
    assert wire["prompt_name"] is None
    assert wire["version_tag"] is None
    assert isinstance(wire["timestamp"], int)
    assert before - 1 <= wire["timestamp"] <= time.time() + 1


def test_revoking_a_key_is_audited(api, admin, make_key):
    victim = make_key("read")[0]
    assert api.delete(f"{KEYS}/{victim.pk}", key=admin[1]).status_code == 204
    entry = AuditLog.objects.get(action="api_key:revoke")
    assert entry.target_id == str(victim.pk)
    assert entry.api_key_name == "ws-admin"
    assert entry.workspace_id == "default"
    assert entry.ip_address == "127.0.0.1"
    wire = items(api.get(f"{AUDIT}?action=api_key:revoke", key=admin[1]))
    assert [(e["action"], e["target_id"], e["api_key_name"]) for e in wire] == [
        ("api_key:revoke", str(victim.pk), "ws-admin")
    ]


def test_creating_a_workspace_is_audited(api, master):
    assert api.post("/v1/workspaces", key=master[1], json={"id": "acme"}).status_code == 201
    entry = AuditLog.objects.get(action="workspace:create")
    assert entry.target_id == "acme"
    assert entry.workspace_id == "acme"
    assert entry.api_key_name == "root"
    assert entry.ip_address == "127.0.0.1"
    wire = items(api.get(f"{AUDIT}?action=workspace:create", key=master[1], workspace="acme"))
    assert [(e["target_id"], e["api_key_name"]) for e in wire] == [("acme", "root")]


def test_the_audit_ip_ignores_forwarded_headers(api, admin):
    api.post(KEYS, key=admin[1], json={"name": "ci"}, HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert AuditLog.objects.get(action="api_key:create", api_key_name="ws-admin").ip_address == "127.0.0.1"


def test_the_audit_ip_is_the_peer_address(api, admin):
    api.post(KEYS, key=admin[1], json={"name": "ci"}, REMOTE_ADDR="10.1.2.3")
    assert AuditLog.objects.get(action="api_key:create", api_key_name="ws-admin").ip_address == "10.1.2.3"


def test_an_entry_without_a_key_name_reads_unknown(api, admin):
    audit_record(actor=Actor(), workspace_id="default", action="test:anonymous")
    wire = items(api.get(f"{AUDIT}?action=test:anonymous", key=admin[1]))
    assert [e["api_key_name"] for e in wire] == ["unknown"]


def test_keys_minted_for_another_workspace_are_audited_where_they_work(api, master, make_key):
    created = api.post(KEYS, key=master[1], json={"name": "x", "workspace_id": "acme"}).json()
    entry = AuditLog.objects.get(action="api_key:create", target_id=str(created["id"]))
    assert entry.workspace_id == "acme"
    _, acme_admin = make_key("admin", workspace="acme")
    listed = api.get(AUDIT, key=acme_admin, workspace="acme").json()["items"]
    assert str(created["id"]) in {item["target_id"] for item in listed}

    assert api.delete(f"{KEYS}/{created['id']}", key=master[1]).status_code == 204
    revoked = AuditLog.objects.get(action="api_key:revoke", target_id=str(created["id"]))
    assert revoked.workspace_id == "acme"


def test_master_keys_are_audited_where_they_were_minted(api, master):
    created = api.post(KEYS, key=master[1], workspace="ops", json={"name": "m", "workspace_id": "*"}).json()
    entry = AuditLog.objects.get(action="api_key:create", target_id=str(created["id"]))
    assert entry.workspace_id == "ops"


# --- Failed mutations leave no entry ---


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "x", "scopes": ["read"]},
        {"name": "x", "scopes": "bogus"},
        {"name": "x", "workspace_id": "*"},
    ],
)
def test_a_failed_key_creation_writes_no_entry(api, admin, body):
    before = AuditLog.objects.count()
    response = api.post(KEYS, key=admin[1], json=body)
    assert response.status_code in (403, 422)
    assert AuditLog.objects.count() == before


def test_a_failed_revocation_writes_no_entry(api, admin, make_key):
    theirs = make_key("read", workspace="acme")[0]
    before = AuditLog.objects.count()
    assert api.delete(f"{KEYS}/{theirs.pk}", key=admin[1]).status_code == 404
    assert api.delete(f"{KEYS}/abc", key=admin[1]).status_code == 422
    assert AuditLog.objects.count() == before


def test_a_failed_workspace_creation_writes_no_entry(api, master, admin):
    before = AuditLog.objects.count()
    assert api.post("/v1/workspaces", key=master[1], json={"id": "default"}).status_code == 409
    assert api.post("/v1/workspaces", key=admin[1], json={"id": "acme"}).status_code == 403
    assert AuditLog.objects.count() == before


# --- Same transaction as the change ---


def test_a_rolled_back_key_creation_leaves_no_entry(make_key):
    _, plaintext = make_key("read")
    before = AuditLog.objects.count()
    with pytest.raises(IntegrityError):
        api_key_issue(name="dup", scopes="read", workspace=None, actor=TEST_ACTOR, plaintext=plaintext)
    assert AuditLog.objects.count() == before
    assert not ApiKey.objects.filter(name="dup").exists()


class AuditFailed(Exception):
    pass


@pytest.fixture
def failing_audit(monkeypatch):
    """Arm it to make audits write their entry, then fail: change and entry must roll back together."""
    real = services.audit_record

    def record_then_fail(**kwargs):
        real(**kwargs)
        raise AuditFailed

    def arm() -> None:
        monkeypatch.setattr(services, "audit_record", record_then_fail)

    return arm


def test_a_key_creation_whose_audit_fails_is_rolled_back(db, failing_audit):
    failing_audit()
    before = AuditLog.objects.count()
    with pytest.raises(AuditFailed):
        api_key_issue(name="half", scopes="read", workspace=None, actor=TEST_ACTOR)
    assert not ApiKey.objects.filter(name="half").exists()
    assert AuditLog.objects.count() == before


def test_a_revocation_whose_audit_fails_is_rolled_back(make_key, failing_audit):
    key = make_key("read")[0]
    failing_audit()
    before = AuditLog.objects.count()
    with pytest.raises(AuditFailed):
        api_key_revoke(api_key=key, actor=TEST_ACTOR)
    key.refresh_from_db()
    assert key.revoked_at is None
    assert AuditLog.objects.count() == before


def test_a_workspace_creation_whose_audit_fails_is_rolled_back(db, failing_audit):
    failing_audit()
    with pytest.raises(AuditFailed):
        services.workspace_create(workspace_id="half", actor=TEST_ACTOR)
    assert not Workspace.objects.filter(pk="half").exists()
    assert not AuditLog.objects.filter(target_id="half").exists()


# --- GET /v1/audit-logs ---


def test_reading_the_audit_log_requires_admin(api, make_key):
    for scopes in ("read", "read,write", "ingest"):
        _, plaintext = make_key(scopes)
        response = api.get(AUDIT, key=plaintext)
        assert response.status_code == 403, scopes
        assert response.json()["error"] == "Missing required scope: admin"


def test_the_audit_log_requires_a_key(api):
    assert api.get(AUDIT).status_code == 401


def test_the_audit_log_is_a_paginated_envelope_newest_first(api, admin):
    for i in range(3):
        audit_record(actor=TEST_ACTOR, workspace_id="default", action="test:event", target_id=str(i))
    body = api.get(f"{AUDIT}?action=test:event&limit=2", key=admin[1]).json()
    assert set(body) == {"items", "total", "page", "limit", "totalPages"}
    assert body["total"] == 3
    assert body["totalPages"] == 2
    assert [e["target_id"] for e in body["items"]] == ["2", "1"]
    page2 = api.get(f"{AUDIT}?action=test:event&limit=2&page=2", key=admin[1]).json()
    assert [e["target_id"] for e in page2["items"]] == ["0"]


def test_the_audit_log_validates_pagination(api, admin):
    response = api.get(f"{AUDIT}?limit=101", key=admin[1])
    assert response.status_code == 422
    assert response.json()["details"]["fields"] == ['"limit" must be less than or equal to 100']


@pytest.fixture
def dated_entries(admin):
    """Three entries at known instants: Jan 1, Jun 1 and Dec 31 2024 (midnight UTC)."""
    instants = [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 6, 1, tzinfo=UTC),
        datetime(2024, 12, 31, tzinfo=UTC),
    ]
    for i, instant in enumerate(instants):
        entry = audit_record(actor=TEST_ACTOR, workspace_id="default", action="test:dated", target_id=f"e{i}")
        AuditLog.objects.filter(pk=entry.pk).update(timestamp=instant)
    return [int(i.timestamp()) for i in instants]


def targets(api, admin, query: str) -> list[str]:
    return [e["target_id"] for e in items(api.get(f"{AUDIT}?{query}", key=admin[1]))]


def test_the_action_filter_selects_one_action(api, admin, dated_entries):
    audit_record(actor=TEST_ACTOR, workspace_id="default", action="test:other", target_id="o")
    assert targets(api, admin, "action=test:dated") == ["e2", "e1", "e0"]
    assert targets(api, admin, "action=test:other") == ["o"]
    assert targets(api, admin, "action=test:none") == []


def test_from_and_to_accept_unix_seconds(api, admin, dated_entries):
    jan, jun, dec = dated_entries
    assert targets(api, admin, f"action=test:dated&from={jun}") == ["e2", "e1"]
    assert targets(api, admin, f"action=test:dated&to={jun}") == ["e1", "e0"]
    assert targets(api, admin, f"action=test:dated&from={jan + 1}&to={dec - 1}") == ["e1"]
    assert targets(api, admin, f"action=test:dated&from={dec + 1}") == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("from=2024-06-01T00:00:00Z", ["e2", "e1"]),
        ("from=2024-06-01", ["e2", "e1"]),
        ("from=2024-06-01T02:00:00%2B02:00", ["e2", "e1"]),
        ("from=2024-06-01T00:00:01Z", ["e2"]),
        ("to=2024-05-31T23:59:59", ["e0"]),
        ("from=2024-01-02&to=2024-12-30T12:00:00Z", ["e1"]),
    ],
)
def test_from_and_to_accept_iso_8601(api, admin, dated_entries, query, expected):
    assert targets(api, admin, f"action=test:dated&{query}") == expected


@pytest.mark.parametrize("query", ["from=yesterday", "to=2024-13-45", "from=nan", "to=1e999"])
def test_an_invalid_time_bound_is_refused(api, admin, query):
    response = api.get(f"{AUDIT}?{query}", key=admin[1])
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert body["detailsType"] == "fields"
    name = query.split("=")[0]
    assert body["details"]["fields"] == [f'"{name}" must be Unix seconds or an ISO 8601 date-time']


# --- Tenant isolation ---


def test_each_workspace_sees_only_its_own_entries(api, admin, make_key):
    _, acme_admin = make_key("read,write,admin", workspace="acme", name="acme-admin")
    acme_created = api.post(KEYS, key=acme_admin, workspace="acme", json={"name": "a"}).json()["id"]
    default_created = api.post(KEYS, key=admin[1], json={"name": "d"}).json()["id"]

    from_default = items(api.get(AUDIT, key=admin[1]))
    from_acme = items(api.get(AUDIT, key=acme_admin, workspace="acme"))
    assert {e["workspace_id"] for e in from_default} == {"default"}
    assert {e["workspace_id"] for e in from_acme} == {"acme"}
    assert str(default_created) in {e["target_id"] for e in from_default}
    assert str(acme_created) not in {e["target_id"] for e in from_default}
    assert str(acme_created) in {e["target_id"] for e in from_acme}
    assert str(default_created) not in {e["target_id"] for e in from_acme}
    assert "acme-admin" not in {e["api_key_name"] for e in from_default}


def test_a_master_key_sees_the_entries_of_the_workspace_it_names(api, master, make_key):
    make_key("read", workspace="acme", name="in-acme")  # audited in acme by the fixture actor
    audit_record(actor=TEST_ACTOR, workspace_id="default", action="test:default-only")
    from_acme = items(api.get(AUDIT, key=master[1], workspace="acme"))
    assert {e["workspace_id"] for e in from_acme} == {"acme"}
    assert "test:default-only" not in {e["action"] for e in from_acme}
    assert len(from_acme) == 1


@pytest.mark.parametrize(
    "query", ["from=0001-01-01T00:00:00%2B14:00", "to=9999-12-31T23:59:59-14:00", "from=1e400", "to=nan"]
)
def test_out_of_range_times_are_refused_not_a_server_error(api, admin, query):
    response = api.get(f"{AUDIT}?{query}", key=admin[1])
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "VALIDATION_FAILED"
