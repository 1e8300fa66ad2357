"""The Runs pages: the filtered keyset list and a run's page with its trace and JSON."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from telemetry.models import Run
from telemetry.services import logs_ingest, run_create, trace_create
from tenancy.context import Actor
from tenancy.models import Workspace

ACTOR = Actor(api_key_name="pytest")
RUNS = reverse("dashboard:runs")


def new_run(ws: str, run_id: str, **body: Any) -> Run:
    Workspace.objects.get_or_create(id=ws, defaults={"name": ws})
    return run_create(workspace_id=ws, body={"run_id": run_id, "workflow_name": "agent", **body}, actor=ACTOR)


def run_links(response: Any) -> list[str]:
    assert response.status_code == 200
    return re.findall(r'<td class="mono truncate"><a href="/runs/([^"]+)"', response.content.decode())


def test_viewer_sees_runs_with_status_duration_and_trace(client_as) -> None:
    client = client_as("viewer", "acme")
    trace_create(workspace_id="acme", body={"trace_id": "t-1"}, actor=ACTOR)
    run = new_run("acme", "r-1", workflow_name="support", status="completed", trace_id="t-1")
    Run.objects.filter(pk=run.pk).update(updated_at=run.created_at + timedelta(seconds=2.5))
    body = client.get(RUNS).content.decode()
    assert run_links(client.get(RUNS)) == ["r-1"]
    assert "support" in body and '<span class="badge completed">completed</span>' in body
    assert "2,500 ms" in body and 'href="/traces/t-1"' in body


def test_empty_states(client_as) -> None:
    client = client_as("viewer", "acme")
    body = client.get(RUNS).content.decode()
    assert "No runs yet" in body and "http://testserver/v1/runs" in body and 'role="search"' not in body
    new_run("acme", "r-1")
    body = client.get(RUNS, {"workflow": "nothing"}).content.decode()
    assert "No runs match these filters." in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"workflow": "ingest"}, ["b", "a"]),
        ({"status": "failed"}, ["b"]),
        ({"status": "running"}, ["c"]),
        ({"workflow": "ingest", "status": "completed"}, ["a"]),
    ],
)
def test_filters_change_the_rows(client_as, query: dict[str, str], expected: list[str]) -> None:
    client = client_as("viewer", "acme")
    new_run("acme", "a", workflow_name="ingest", status="completed")
    new_run("acme", "b", workflow_name="ingest", status="failed")
    new_run("acme", "c", workflow_name="answer")
    assert run_links(client.get(RUNS, query)) == expected


def test_the_time_range_and_bad_input(client_as) -> None:
    client = client_as("viewer", "acme")
    new_run("acme", "old")
    new_run("acme", "new")
    Run.objects.filter(run_id="old").update(created_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert run_links(client.get(RUNS, {"from": "2026-02-01T00:00"})) == ["new"]
    assert run_links(client.get(RUNS, {"to": "2026-02-01T00:00"})) == ["old"]
    response = client.get(RUNS, {"from": "soon"})
    assert run_links(response) == [] and "From: must be Unix seconds" in response.content.decode()
    response = client.get(RUNS, {"status": "paused"})
    assert "Status: Select a valid choice." in response.content.decode()


def test_keyset_pages(client_as) -> None:
    client = client_as("viewer", "acme")
    for n in range(53):
        new_run("acme", f"r{n:02d}")
    response = client.get(RUNS)
    first = run_links(response)
    next_url = re.search(r'href="(\?cursor=[^"]+)" rel="next"', response.content.decode()).group(1)
    rest = run_links(client.get(RUNS + next_url))
    assert len(first) == 50 and len(rest) == 3 and set(first).isdisjoint(rest)


def test_another_workspaces_runs_are_invisible_and_404(client_as) -> None:
    client = client_as("viewer", "acme")
    new_run("globex", "theirs", workflow_name="secret-flow")
    new_run("globex", "both")
    new_run("acme", "both", workflow_name="our-flow")
    body = client.get(RUNS).content.decode()
    assert run_links(client.get(RUNS)) == ["both"] and "secret-flow" not in body
    assert client.get(reverse("dashboard:run", args=["theirs"])).status_code == 404
    assert "our-flow" in client.get(reverse("dashboard:run", args=["both"])).content.decode()


def test_a_run_page_links_its_trace_and_shows_json(client_as) -> None:
    client = client_as("viewer", "acme")
    trace_create(workspace_id="acme", body={"trace_id": "t-9"}, actor=ACTOR)
    new_run(
        "acme",
        "r-9",
        workflow_name="support",
        status="completed",
        trace_id="t-9",
        input={"question": "Where is <my> order?"},
        output={"answer": "Shipped", "sources": [1, 2]},
        metadata={"channel": "email"},
    )
    body = client.get(reverse("dashboard:run", args=["r-9"])).content.decode()
    assert 'href="/traces/t-9"' in body and "View trace" in body
    assert "&quot;question&quot;: &quot;Where is &lt;my&gt; order?&quot;" in body
    assert "&quot;sources&quot;: [\n    1,\n    2\n  ]" in body
    assert "&quot;channel&quot;: &quot;email&quot;" in body


def test_a_running_run_without_trace_or_output(client_as) -> None:
    client = client_as("viewer", "acme")
    new_run("acme", "r-2")
    body = client.get(reverse("dashboard:run", args=["r-2"])).content.decode()
    assert "View trace" not in body and "No output yet: the run is still running." in body
    assert "so far" in body and "No input was sent." in body


def test_pages_cost_a_fixed_number_of_queries(client_as, django_assert_max_num_queries) -> None:
    client = client_as("viewer", "acme")
    logs_ingest(workspace_id="acme", body={"prompt_name": "p", "version_tag": "1"}, actor=ACTOR)
    for n in range(30):
        trace_create(workspace_id="acme", body={"trace_id": f"t{n}"}, actor=ACTOR)
        new_run("acme", f"r{n}", trace_id=f"t{n}")
    client.get(RUNS)
    with django_assert_max_num_queries(4):
        assert len(run_links(client.get(RUNS))) == 30
    with django_assert_max_num_queries(4):
        assert client.get(reverse("dashboard:run", args=["r3"])).status_code == 200
