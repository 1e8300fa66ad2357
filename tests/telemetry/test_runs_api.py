"""``/v1/runs``: workflow runs, upstream's wire format (§2.6) plus 409s, filters and keyset pages."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db.models import F

from telemetry.models import Run
from tenancy.models import AuditLog

RUNS = "/v1/runs"
RUN_FIELDS = {
    "run_id",
    "workflow_name",
    "status",
    "input",
    "output",
    "trace_id",
    "metadata",
    "created_at",
    "updated_at",
}


@pytest.fixture
def key(make_key) -> str:
    return make_key("read,write")[1]


def create(api, key: str, **body) -> dict:
    response = api.post(RUNS, key=key, json={"workflow_name": "etl", **body})
    assert response.status_code == 201, response.content
    return response.json()


def fields(response) -> list[str]:
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert body["detailsType"] == "fields"
    return body["details"]["fields"]


def walk(api, key: str, query: str = "", limit: int = 2) -> list[dict]:
    """Every item of a list, page by page through ``cursor=`` then ``nextCursor``."""
    seen, cursor, pages = [], "", 0
    while True:
        response = api.get(f"{RUNS}?limit={limit}&cursor={cursor}{query}", key=key)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += body["items"]
        pages += 1
        assert pages < 100
        if body["nextCursor"] is None:
            return seen
        cursor = body["nextCursor"]


# --- Create ---


def test_create_with_a_generated_id(api, key):
    body = create(api, key)
    assert set(body) == {"run_id", "workflow_name", "status"}
    assert body["workflow_name"] == "etl"
    assert body["status"] == "running"
    assert uuid.UUID(body["run_id"]).version == 4
    assert Run.objects.filter(run_id=body["run_id"], workspace_id="default").exists()


@pytest.mark.parametrize("run_id", [str(uuid.uuid4()), "0af7651916cd43dd8448eb211c80319c", "r_abc-1.2"])
def test_create_with_an_explicit_id(api, key, run_id):
    body = create(api, key, run_id=run_id, status="completed")
    assert body == {"run_id": run_id, "workflow_name": "etl", "status": "completed"}
    got = api.get(f"{RUNS}/{run_id}", key=key)
    assert got.status_code == 200
    assert got.json()["run_id"] == run_id


def test_a_run_round_trips_every_field(api, key):
    trace_id = api.post("/v1/traces", key=key, json={}).json()["trace_id"]
    run_id = create(
        api,
        key,
        status="failed",
        input={"rows": [1, 2], "nested": {"a": None}},
        output={"ok": False},
        trace_id=trace_id,
        metadata={"team": "data", "attempt": 2, "dry.run": True, "ratio": 0.5},
    )["run_id"]
    got = api.get(f"{RUNS}/{run_id}", key=key).json()
    assert set(got) == RUN_FIELDS
    assert got["workflow_name"] == "etl"
    assert got["status"] == "failed"
    assert got["input"] == {"rows": [1, 2], "nested": {"a": None}}
    assert got["output"] == {"ok": False}
    assert got["trace_id"] == trace_id
    assert got["metadata"] == {"team": "data", "attempt": 2, "dry.run": True, "ratio": 0.5}
    assert isinstance(got["created_at"], int)
    assert got["updated_at"] >= got["created_at"]


def test_a_run_without_optional_fields(api, key):
    run_id = create(api, key)["run_id"]
    got = api.get(f"{RUNS}/{run_id}", key=key).json()
    assert got["input"] is None
    assert got["output"] is None
    assert got["trace_id"] is None
    assert got["metadata"] == {}


def test_an_unknown_trace_is_a_404_and_stores_nothing(api, key):
    response = api.post(RUNS, key=key, json={"workflow_name": "etl", "trace_id": str(uuid.uuid4())})
    assert response.status_code == 404
    assert response.json()["error"] == "Trace not found"
    assert response.json()["code"] == "NOT_FOUND"
    assert not Run.objects.exists()


def test_a_duplicate_run_id_is_a_409(api, key):
    run_id = str(uuid.uuid4())
    create(api, key, run_id=run_id)
    again = api.post(RUNS, key=key, json={"workflow_name": "other", "run_id": run_id})
    assert again.status_code == 409
    assert again.json()["code"] == "CONFLICT"
    assert Run.objects.get(run_id=run_id).workflow_name == "etl"
    assert AuditLog.objects.filter(action="run:create", target_id=run_id).count() == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, '"workflow_name" is required'),
        ({"workflow_name": ""}, '"workflow_name" is not allowed to be empty'),
        ({"workflow_name": 5}, '"workflow_name" must be a string'),
        ({"workflow_name": "w" * 129}, "workflow_name"),
        ({"workflow_name": "etl", "status": "done"}, '"status" must be one of [running, completed, failed]'),
        ({"workflow_name": "etl", "run_id": "a b"}, "run_id"),
        ({"workflow_name": "etl", "run_id": "r" * 200}, "run_id"),
        ({"workflow_name": "etl", "run_id": 7}, "run_id"),
        ({"workflow_name": "etl", "trace_id": "not an id"}, "trace_id"),
        ({"workflow_name": "etl", "input": [1, 2]}, '"input" must be of type object'),
        ({"workflow_name": "etl", "output": "text"}, '"output" must be of type object'),
        ({"workflow_name": "etl", "metadata": {"k": {"nested": 1}}}, "metadata.k"),
        ({"workflow_name": "etl", "metadata": {"k": [1]}}, "metadata.k"),
        ({"workflow_name": "etl", "metadata": {"k": None}}, "metadata.k"),
        ({"workflow_name": "etl", "metadata": {"k": "v" * 1025}}, "metadata.k"),
        ({"workflow_name": "etl", "metadata": {"k": 10**400}}, "metadata.k"),
        ({"workflow_name": "etl", "metadata": {"bad key": "v"}}, "metadata.bad key"),
        ({"workflow_name": "etl", "metadata": {"k" * 129: "v"}}, "metadata."),
        ({"workflow_name": "etl", "metadata": {f"k{i}": i for i in range(51)}}, "more than 50 keys"),
        ({"workflow_name": "etl", "metadata": "flat"}, '"metadata" must be of type object'),
    ],
)
def test_invalid_bodies_are_422_and_store_nothing(api, key, body, message):
    messages = fields(api.post(RUNS, key=key, json=body))
    assert any(message in m for m in messages), messages
    assert not Run.objects.exists()
    assert not AuditLog.objects.filter(action="run:create").exists()


@pytest.mark.parametrize("body", [[{"workflow_name": "etl"}], "etl", 5])
def test_a_body_that_is_not_an_object_is_a_422(api, key, body):
    fields(api.post(RUNS, key=key, json=body))
    assert not Run.objects.exists()


def test_invalid_json_is_a_400(api, key):
    response = api.post(RUNS, key=key, data='{"workflow_name": ')
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_REQUEST"


def test_flat_metadata_limits_are_inclusive(api, key):
    meta = {f"k{i}": "v" * 1024 for i in range(50)}
    run_id = create(api, key, metadata=meta)["run_id"]
    assert api.get(f"{RUNS}/{run_id}", key=key).json()["metadata"] == meta


def test_create_is_audited(api, key):
    run_id = create(api, key)["run_id"]
    entry = AuditLog.objects.get(action="run:create", target_id=run_id)
    assert entry.workspace_id == "default"


# --- Read ---


def test_get_an_unknown_run_is_a_404(api, key):
    response = api.get(f"{RUNS}/{uuid.uuid4()}", key=key)
    assert response.status_code == 404
    assert response.json()["error"] == "Run not found"


def test_list_is_newest_first_with_the_page_envelope(api, key):
    ids = [create(api, key, workflow_name=f"w{i}")["run_id"] for i in range(3)]
    body = api.get(RUNS, key=key).json()
    assert [r["run_id"] for r in body["items"]] == ids[::-1]
    assert body["total"] == 3
    assert body["page"] == 1
    assert body["limit"] == 50
    assert body["totalPages"] == 1
    assert body["nextCursor"] is None
    assert all(set(item) == RUN_FIELDS for item in body["items"])

    second = api.get(f"{RUNS}?page=2&limit=2", key=key).json()
    assert [r["run_id"] for r in second["items"]] == [ids[0]]
    assert second["totalPages"] == 2


def test_an_empty_list(api, key):
    body = api.get(RUNS, key=key).json()
    assert body["items"] == []
    assert body["total"] == 0
    assert body["totalPages"] == 0


@pytest.mark.parametrize("query", ["page=0", "page=x", "limit=0", "limit=101", "limit=1.5"])
def test_bad_page_or_limit_is_a_422(api, key, query):
    fields(api.get(f"{RUNS}?{query}", key=key))


def test_filters(api, key):
    a = create(api, key, workflow_name="ingest", status="completed")["run_id"]
    b = create(api, key, workflow_name="ingest")["run_id"]
    c = create(api, key, workflow_name="report", status="completed")["run_id"]

    def ids(query: str) -> list[str]:
        response = api.get(f"{RUNS}?{query}", key=key)
        assert response.status_code == 200, response.content
        return [r["run_id"] for r in response.json()["items"]]

    assert ids("workflow=ingest") == [b, a]
    assert ids("status=completed") == [c, a]
    assert ids("workflow=ingest&status=running") == [b]
    assert ids("workflow=nothing") == []
    fields(api.get(f"{RUNS}?status=done", key=key))


def test_keyset_walk_returns_every_run_once_newest_first(api, key):
    ids = [create(api, key, workflow_name="w" if i % 2 else "x")["run_id"] for i in range(7)]
    walked = walk(api, key)
    assert [r["run_id"] for r in walked] == ids[::-1]
    paged = api.get(f"{RUNS}?limit=100", key=key).json()["items"]
    assert [r["run_id"] for r in paged] == [r["run_id"] for r in walked]
    assert [r["run_id"] for r in walk(api, key, "&workflow=w")] == ids[1::2][::-1]


def test_keyset_continues_from_the_page_mode_cursor(api, key):
    ids = [create(api, key)["run_id"] for _ in range(5)]
    first = api.get(f"{RUNS}?limit=2", key=key).json()
    assert first["nextCursor"]
    rest = api.get(f"{RUNS}?limit=10&cursor={first['nextCursor']}", key=key).json()
    assert [r["run_id"] for r in first["items"] + rest["items"]] == ids[::-1]
    assert rest["nextCursor"] is None


@pytest.mark.parametrize("cursor", ["garbage", "!!!", "MTIz", "bm90fGEtbnVtYmVy"])
def test_a_garbage_cursor_is_a_422(api, key, cursor):
    fields(api.get(f"{RUNS}?cursor={cursor}", key=key))


# --- Update ---


def test_patch_without_fields_changes_nothing(api, key):
    run_id = create(api, key)["run_id"]
    before = Run.objects.get(run_id=run_id).updated_at
    for body in ({}, {"workflow_name": "renamed", "input": {"x": 1}}):
        response = api.request("PATCH", f"{RUNS}/{run_id}", key=key, json=body)
        assert response.status_code == 200
        assert response.json() == {"message": "No changes"}
    run = Run.objects.get(run_id=run_id)
    assert run.updated_at == before
    assert run.workflow_name == "etl"
    assert not AuditLog.objects.filter(action="run:update").exists()


def test_patch_status_output_and_metadata(api, key):
    run_id = create(api, key, metadata={"a": 1})["run_id"]
    an_hour = timedelta(hours=1)
    Run.objects.filter(run_id=run_id).update(
        created_at=F("created_at") - an_hour, updated_at=F("updated_at") - an_hour
    )
    response = api.request(
        "PATCH",
        f"{RUNS}/{run_id}",
        key=key,
        json={"status": "completed", "output": {"rows": 3}, "metadata": {"b": "x"}},
    )
    assert response.status_code == 200
    assert response.json() == {"run_id": run_id, "status": "updated"}
    got = api.get(f"{RUNS}/{run_id}", key=key).json()
    assert got["status"] == "completed"
    assert got["output"] == {"rows": 3}
    assert got["metadata"] == {"b": "x"}
    assert got["updated_at"] > got["created_at"]
    assert AuditLog.objects.filter(action="run:update", target_id=run_id).count() == 1


def test_patch_only_status_keeps_the_rest(api, key):
    run_id = create(api, key, output={"keep": True}, metadata={"m": 1})["run_id"]
    response = api.request("PATCH", f"{RUNS}/{run_id}", key=key, json={"status": "failed"})
    assert response.json() == {"run_id": run_id, "status": "updated"}
    got = api.get(f"{RUNS}/{run_id}", key=key).json()
    assert (got["status"], got["output"], got["metadata"]) == ("failed", {"keep": True}, {"m": 1})


@pytest.mark.parametrize(
    "body",
    [
        {"status": "done"},
        {"output": [1]},
        {"metadata": {"k": {"n": 1}}},
        {"metadata": {"k": "v" * 1025}},
        {"metadata": {"bad key": 1}},
        {"status": "completed", "metadata": {"x": [1]}},
    ],
)
def test_patch_with_invalid_fields_is_a_422_and_changes_nothing(api, key, body):
    run_id = create(api, key, metadata={"m": 1})["run_id"]
    fields(api.request("PATCH", f"{RUNS}/{run_id}", key=key, json=body))
    got = api.get(f"{RUNS}/{run_id}", key=key).json()
    assert (got["status"], got["metadata"]) == ("running", {"m": 1})


def test_patch_an_unknown_run_is_a_404(api, key):
    response = api.request("PATCH", f"{RUNS}/{uuid.uuid4()}", key=key, json={"status": "failed"})
    assert response.status_code == 404
    assert response.json()["error"] == "Run not found"


# --- Delete ---


def test_delete(api, key):
    run_id = create(api, key)["run_id"]
    response = api.delete(f"{RUNS}/{run_id}", key=key)
    assert response.status_code == 204
    assert response.content == b""
    assert api.get(f"{RUNS}/{run_id}", key=key).status_code == 404
    assert AuditLog.objects.filter(action="delete_run", target_id=run_id).count() == 1
    again = api.delete(f"{RUNS}/{run_id}", key=key)
    assert again.status_code == 404
    assert again.json()["error"] == "Run not found"


def test_a_deleted_run_id_can_be_used_again(api, key):
    run_id = create(api, key)["run_id"]
    api.delete(f"{RUNS}/{run_id}", key=key)
    assert create(api, key, run_id=run_id)["run_id"] == run_id


# --- Scopes ---


def test_a_read_only_key_cannot_write(api, key, make_key):
    read = make_key("read")[1]
    run_id = create(api, key)["run_id"]
    assert api.get(RUNS, key=read).status_code == 200
    assert api.get(f"{RUNS}/{run_id}", key=read).status_code == 200
    for method, path, body in [
        ("POST", RUNS, {"workflow_name": "etl"}),
        ("PATCH", f"{RUNS}/{run_id}", {"status": "failed"}),
        ("DELETE", f"{RUNS}/{run_id}", None),
    ]:
        response = api.request(method, path, key=read, json=body)
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "FORBIDDEN"
    assert Run.objects.count() == 1
    assert Run.objects.get().status == "running"


def test_an_ingest_key_writes_but_cannot_read(api, make_key):
    ingest = make_key("ingest")[1]
    run_id = create(api, ingest)["run_id"]
    response = api.request("PATCH", f"{RUNS}/{run_id}", key=ingest, json={"status": "completed"})
    assert response.status_code == 200
    assert api.get(RUNS, key=ingest).status_code == 403
    assert api.get(f"{RUNS}/{run_id}", key=ingest).status_code == 403
    assert Run.objects.get(run_id=run_id).status == "completed"


def test_no_key_is_a_401(api):
    assert api.get(RUNS).status_code == 401
    assert api.post(RUNS, json={"workflow_name": "etl"}).status_code == 401
    assert not Run.objects.exists()


def test_a_null_status_in_a_patch_changes_nothing(api, key):
    run_id = create(api, key, workflow_name="w", status="completed")["run_id"]
    response = api.request("PATCH", f"{RUNS}/{run_id}", key=key, json={"status": None})
    assert response.json() == {"message": "No changes"}
    assert api.get(f"{RUNS}/{run_id}", key=key).json()["status"] == "completed"


def test_an_ingest_key_cannot_delete_runs_or_traces(api, key, make_key):
    _, ingest = make_key("ingest")
    run_id = create(api, key, workflow_name="w")["run_id"]
    trace_id = api.post("/v1/traces", key=key, json={}).json()["trace_id"]
    assert api.delete(f"{RUNS}/{run_id}", key=ingest).status_code == 403
    assert api.delete(f"/v1/traces/{trace_id}", key=ingest).status_code == 403
    assert api.get(f"{RUNS}/{run_id}", key=key).status_code == 200
    assert api.get(f"/v1/traces/{trace_id}", key=key).status_code == 200
