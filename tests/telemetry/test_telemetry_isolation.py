"""Workspace isolation of logs, traces, spans and runs: nothing is read, changed or deleted across
workspaces, and the same client ids in two workspaces are two separate objects."""

from __future__ import annotations

import pytest

from telemetry.models import LogRecord, Run, Span, Trace
from tenancy.models import AuditLog

A, B = "acme", "globex"


@pytest.fixture
def keys(make_key) -> dict[str, str]:
    return {A: make_key("read,write", workspace=A)[1], B: make_key("read,write", workspace=B)[1]}


class Client:
    """Requests as one workspace: its own key and its ``X-Workspace-Id``."""

    def __init__(self, api, key: str, workspace: str) -> None:
        self.api, self.key, self.workspace = api, key, workspace

    def __call__(self, method: str, path: str, json=None):
        return self.api.request(method, path, key=self.key, workspace=self.workspace, json=json)


@pytest.fixture
def a(api, keys) -> Client:
    return Client(api, keys[A], A)


@pytest.fixture
def b(api, keys) -> Client:
    return Client(api, keys[B], B)


def items(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["items"]


def walk(client: Client, path: str) -> list[dict]:
    seen, cursor = [], ""
    for _ in range(50):
        body = client("GET", f"{path}?limit=1&cursor={cursor}").json()
        seen += body["items"]
        if body["nextCursor"] is None:
            return seen
        cursor = body["nextCursor"]
    raise AssertionError("the cursor never ended")


def assert_404(response, message: str) -> None:
    assert response.status_code == 404, response.content
    assert response.json()["error"] == message


# --- Keys and workspaces ---


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/logs", None),
        ("POST", "/v1/logs", {"prompt_name": "p", "version_tag": "1"}),
        ("GET", "/v1/traces", None),
        ("POST", "/v1/traces", {}),
        ("POST", "/v1/traces/t_1/spans", {"name": "s"}),
        ("GET", "/v1/runs", None),
        ("POST", "/v1/runs", {"workflow_name": "w"}),
    ],
)
def test_a_key_of_one_workspace_addressing_another_is_a_401(api, keys, method, path, body):
    response = api.request(method, path, key=keys[A], workspace=B, json=body)
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
    assert not LogRecord.objects.exists()
    assert not Trace.objects.exists()
    assert not Run.objects.exists()


def test_an_ingest_key_of_one_workspace_cannot_write_to_another(api, make_key):
    ingest = make_key("ingest", workspace=A)[1]
    response = api.post("/v1/logs", key=ingest, workspace=B, json={"prompt_name": "p", "version_tag": "1"})
    assert response.status_code == 401
    assert not LogRecord.objects.exists()


# --- Logs ---


def test_logs_are_listed_only_in_their_workspace(a, b, api, master):
    a("POST", "/v1/logs", {"prompt_name": "shared", "version_tag": "1", "model": "m", "session_id": "s"})
    a("POST", "/v1/logs", [{"prompt_name": "only-a", "version_tag": "1"}] * 2)
    b("POST", "/v1/logs", {"prompt_name": "shared", "version_tag": "1", "model": "m", "session_id": "s"})

    listed_a = items(a("GET", "/v1/logs"))
    listed_b = items(b("GET", "/v1/logs"))
    assert sorted(i["prompt_name"] for i in listed_a) == ["only-a", "only-a", "shared"]
    assert [i["prompt_name"] for i in listed_b] == ["shared"]
    assert {i["workspace_id"] for i in listed_a} == {A}
    assert {i["workspace_id"] for i in listed_b} == {B}
    assert a("GET", "/v1/logs").json()["total"] == 3
    assert b("GET", "/v1/logs").json()["total"] == 1
    for query in ("prompt=shared", "model=m", "session=s", "q=shared", "q=only"):
        assert {i["workspace_id"] for i in items(b("GET", f"/v1/logs?{query}"))} <= {B}, query
    assert items(b("GET", "/v1/logs?prompt=only-a")) == []
    assert [i["workspace_id"] for i in walk(b, "/v1/logs")] == [B]
    assert len(walk(a, "/v1/logs")) == 3

    # The master key sees the workspace it names, and only that one.
    from_master = items(api.get("/v1/logs", key=master[1], workspace=B))
    assert [i["workspace_id"] for i in from_master] == [B]


def test_a_cursor_from_another_workspace_reveals_nothing(a, b):
    a("POST", "/v1/logs", [{"prompt_name": "a", "version_tag": "1"}] * 3)
    cursor = a("GET", "/v1/logs?limit=1&cursor=").json()["nextCursor"]
    b("POST", "/v1/logs", {"prompt_name": "b", "version_tag": "1"})
    response = b("GET", f"/v1/logs?cursor={cursor}")
    assert {i["workspace_id"] for i in items(response)} <= {B}


# --- Traces and spans ---


def test_the_same_trace_id_in_two_workspaces_is_two_traces(a, b):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert a("POST", "/v1/traces", {"trace_id": trace_id, "prompt_name": "pa"}).status_code == 201
    assert b("POST", "/v1/traces", {"trace_id": trace_id, "prompt_name": "pb"}).status_code == 201
    assert Trace.objects.filter(trace_id=trace_id).count() == 2
    # A duplicate is still a duplicate within one workspace.
    assert a("POST", "/v1/traces", {"trace_id": trace_id}).status_code == 409

    assert (
        a(
            "POST", f"/v1/traces/{trace_id}/spans", {"span_id": "s1", "name": "a-root", "tokens_in": 5}
        ).status_code
        == 201
    )
    spans_b = [{"span_id": "s1", "name": "b-root", "status": "error"}, {"span_id": "s2", "name": "b-child"}]
    assert b("POST", f"/v1/traces/{trace_id}/spans", spans_b).status_code == 201

    detail_a = a("GET", f"/v1/traces/{trace_id}").json()
    detail_b = b("GET", f"/v1/traces/{trace_id}").json()
    assert detail_a["prompt_name"] == "pa"
    assert detail_b["prompt_name"] == "pb"
    assert [s["name"] for s in detail_a["spans"]] == ["a-root"]
    assert sorted(s["name"] for s in detail_b["spans"]) == ["b-child", "b-root"]
    assert (detail_a["span_count"], detail_a["error_count"], detail_a["tokens_in"]) == (1, 0, 5)
    assert (detail_b["span_count"], detail_b["error_count"], detail_b["tokens_in"]) == (2, 1, 0)
    assert a("GET", f"/v1/traces/{trace_id}/spans/s1").json()["name"] == "a-root"
    assert b("GET", f"/v1/traces/{trace_id}/spans/s1").json()["name"] == "b-root"
    assert_404(a("GET", f"/v1/traces/{trace_id}/spans/s2"), "Span not found")

    # Ending A's span leaves B's span of the same ids alone.
    assert a("PATCH", f"/v1/traces/{trace_id}/spans/s1", {"status": "ok", "tokens_out": 9}).status_code == 200
    assert b("GET", f"/v1/traces/{trace_id}/spans/s1").json()["status"] == "error"
    assert b("GET", f"/v1/traces/{trace_id}").json()["tokens_out"] == 0
    assert_404(a("PATCH", f"/v1/traces/{trace_id}/spans/s2", {"status": "ok"}), "Span not found")
    assert b("GET", f"/v1/traces/{trace_id}/spans/s2").json()["status"] == "unset"

    # Deleting B's trace deletes B's spans only.
    assert b("DELETE", f"/v1/traces/{trace_id}").status_code == 204
    assert_404(b("GET", f"/v1/traces/{trace_id}"), "Trace not found")
    assert a("GET", f"/v1/traces/{trace_id}").json()["span_count"] == 1
    assert list(Span.objects.values_list("workspace_id", "span_id")) == [(A, "s1")]


def test_a_trace_of_another_workspace_is_a_404_everywhere(a, b):
    trace_id = a("POST", "/v1/traces", {"prompt_name": "secret"}).json()["trace_id"]
    a("POST", f"/v1/traces/{trace_id}/spans", {"span_id": "s1", "name": "root", "status": "running"})

    assert items(b("GET", "/v1/traces")) == []
    assert walk(b, "/v1/traces") == []
    assert items(b("GET", "/v1/traces?prompt=secret")) == []
    assert items(b("GET", "/v1/traces?q=secret")) == []
    assert_404(b("GET", f"/v1/traces/{trace_id}"), "Trace not found")
    assert_404(b("GET", f"/v1/traces/{trace_id}/spans/s1"), "Span not found")
    assert_404(b("PATCH", f"/v1/traces/{trace_id}/spans/s1", {"status": "error"}), "Span not found")
    assert_404(b("POST", f"/v1/traces/{trace_id}/spans", {"name": "injected"}), "Trace not found")
    assert_404(b("POST", f"/v1/traces/{trace_id}/spans", [{"name": "x"}, {"name": "y"}]), "Trace not found")
    assert_404(b("DELETE", f"/v1/traces/{trace_id}"), "Trace not found")
    assert_404(b("POST", "/v1/runs", {"workflow_name": "w", "trace_id": trace_id}), "Trace not found")

    detail = a("GET", f"/v1/traces/{trace_id}").json()
    assert [(s["span_id"], s["status"]) for s in detail["spans"]] == [("s1", "running")]
    assert not Trace.objects.filter(workspace_id=B).exists()
    assert not Span.objects.filter(workspace_id=B).exists()
    assert not Run.objects.exists()
    assert not AuditLog.objects.filter(workspace_id=B).exclude(action__startswith="api_key").exists()


def test_trace_lists_and_filters_stay_in_their_workspace(a, b):
    for client, name in ((a, "a"), (b, "b")):
        for i in range(2):
            trace_id = client(
                "POST", "/v1/traces", {"prompt_name": "shared", "session_id": "s", "user_id": "u"}
            ).json()["trace_id"]
            client("POST", f"/v1/traces/{trace_id}/spans", {"name": f"{name}{i}", "status": "error"})
    for client, ws in ((a, A), (b, B)):
        own = {t.trace_id for t in Trace.objects.filter(workspace_id=ws)}
        for query in ("", "?prompt=shared", "?session=s", "?user=u", "?status=error", "?q=shared"):
            assert {t["trace_id"] for t in items(client("GET", f"/v1/traces{query}"))} == own, query
        assert {t["trace_id"] for t in walk(client, "/v1/traces")} == own
        assert client("GET", "/v1/traces").json()["total"] == 2


def test_a_run_cannot_link_a_trace_of_another_workspace_with_the_same_id(a, b):
    trace_id = "t_shared"
    a("POST", "/v1/traces", {"trace_id": trace_id})
    b("POST", "/v1/traces", {"trace_id": trace_id})
    run_id = b("POST", "/v1/runs", {"workflow_name": "w", "trace_id": trace_id}).json()["run_id"]
    assert Run.objects.get(run_id=run_id).trace.workspace_id == B
    # Deleting A's trace of the same id leaves B's run linked to B's trace.
    assert a("DELETE", f"/v1/traces/{trace_id}").status_code == 204
    assert b("GET", f"/v1/runs/{run_id}").json()["trace_id"] == trace_id


# --- Runs ---


def test_the_same_run_id_in_two_workspaces_is_two_runs(a, b):
    run_id = "r_nightly"
    assert a("POST", "/v1/runs", {"run_id": run_id, "workflow_name": "wa"}).status_code == 201
    assert (
        b("POST", "/v1/runs", {"run_id": run_id, "workflow_name": "wb", "status": "failed"}).status_code
        == 201
    )
    assert a("POST", "/v1/runs", {"run_id": run_id, "workflow_name": "again"}).status_code == 409
    assert Run.objects.filter(run_id=run_id).count() == 2

    assert a("GET", f"/v1/runs/{run_id}").json()["workflow_name"] == "wa"
    assert b("GET", f"/v1/runs/{run_id}").json()["workflow_name"] == "wb"
    assert [r["workflow_name"] for r in items(a("GET", "/v1/runs"))] == ["wa"]
    assert [r["workflow_name"] for r in items(b("GET", "/v1/runs"))] == ["wb"]

    assert a("PATCH", f"/v1/runs/{run_id}", {"status": "completed", "output": {"a": 1}}).status_code == 200
    got_b = b("GET", f"/v1/runs/{run_id}").json()
    assert (got_b["status"], got_b["output"]) == ("failed", None)

    assert a("DELETE", f"/v1/runs/{run_id}").status_code == 204
    assert_404(a("GET", f"/v1/runs/{run_id}"), "Run not found")
    assert b("GET", f"/v1/runs/{run_id}").json()["workflow_name"] == "wb"
    assert list(Run.objects.values_list("workspace_id", flat=True)) == [B]


def test_a_run_of_another_workspace_is_a_404_everywhere(a, b):
    run_id = a("POST", "/v1/runs", {"workflow_name": "secret-flow", "status": "running"}).json()["run_id"]
    assert items(b("GET", "/v1/runs")) == []
    assert items(b("GET", "/v1/runs?workflow=secret-flow")) == []
    assert items(b("GET", "/v1/runs?status=running")) == []
    assert walk(b, "/v1/runs") == []
    assert_404(b("GET", f"/v1/runs/{run_id}"), "Run not found")
    assert_404(b("PATCH", f"/v1/runs/{run_id}", {"status": "failed"}), "Run not found")
    assert_404(b("PATCH", f"/v1/runs/{run_id}", {}), "Run not found")
    assert_404(b("DELETE", f"/v1/runs/{run_id}"), "Run not found")
    got = a("GET", f"/v1/runs/{run_id}").json()
    assert (got["workflow_name"], got["status"]) == ("secret-flow", "running")
    assert not AuditLog.objects.filter(workspace_id=B, action__in=["run:update", "delete_run"]).exists()
