"""The Logs pages: the filtered keyset list with units, the empty states, and a log's own page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.urls import reverse

from telemetry.models import LogRecord
from telemetry.services import logs_ingest, run_create, trace_create
from tenancy.context import Actor
from tenancy.models import Workspace

ACTOR = Actor(api_key_name="pytest")
LOGS = reverse("dashboard:logs")


def workspace(name: str) -> str:
    return Workspace.objects.get_or_create(id=name, defaults={"name": name})[0].id


def ingest(ws: str, *bodies: dict[str, Any]) -> list[int]:
    logs = [{"prompt_name": "welcome", "version_tag": "1.0.0", **body} for body in bodies]
    records, _ = logs_ingest(workspace_id=workspace(ws), body=logs, actor=ACTOR)
    return [record.pk for record in records]


def row_ids(response: Any) -> list[int]:
    assert response.status_code == 200
    return [int(pk) for pk in re.findall(r'href="/logs/(\d+)"', response.content.decode())]


def test_viewer_sees_logs_with_units(client_as) -> None:
    client = client_as("viewer", "acme")
    ingest(
        "acme",
        {
            "prompt_name": "summarise",
            "model": "gpt-4o-mini",
            "provider": "openai",
            "tokens_in": 1200,
            "tokens_out": 48,
            "cost_usd": 0.0012,
            "latency_ms": 830,
        },
        {"status": "error", "error_code": "rate_limited", "latency_ms": 12_500},
    )
    body = client.get(LOGS).content.decode()
    assert "summarise" in body and "gpt-4o-mini" in body and "openai" in body
    assert "1,200" in body and "$0.0012" in body and "830 ms" in body and "12.5 s" in body
    assert '<span class="badge error">error</span>' in body and "rate_limited" in body
    assert '<span class="badge ok">ok</span>' in body


def test_a_workspace_without_logs_shows_how_to_send_the_first(client_as) -> None:
    body = client_as("viewer", "acme").get(LOGS).content.decode()
    assert "Send your first log" in body and "http://testserver/v1/logs" in body
    assert "No logs match" not in body


def test_filters_that_match_nothing_say_so(client_as) -> None:
    client = client_as("viewer", "acme")
    ingest("acme", {"model": "gpt-4o"})
    body = client.get(LOGS, {"model": "claude"}).content.decode()
    assert "No logs match these filters." in body and "Send your first log" not in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"prompt": "summarise"}, {"summarise"}),
        ({"version": "2.0.0"}, {"v2"}),
        ({"model": "claude-3-5-haiku"}, {"claude"}),
        ({"provider": "anthropic"}, {"claude"}),
        ({"status": "error"}, {"failed"}),
        ({"prompt": "welcome", "status": "ok"}, {"v2", "claude"}),
    ],
)
def test_filters_change_the_rows(client_as, query: dict[str, str], expected: set[str]) -> None:
    client = client_as("viewer", "acme")
    ids = ingest(
        "acme",
        {"prompt_name": "summarise", "model": "gpt-4o"},
        {"version_tag": "2.0.0", "model": "gpt-4o"},
        {"model": "claude-3-5-haiku", "provider": "anthropic"},
        {"status": "error", "model": "gpt-4o"},
    )
    names = dict(zip(ids, ["summarise", "v2", "claude", "failed"], strict=True))
    assert {names[pk] for pk in row_ids(client.get(LOGS, query))} == expected


def test_the_time_range_filters_by_creation_time(client_as) -> None:
    client = client_as("viewer", "acme")
    old, new = ingest("acme", {"model": "old"}, {"model": "new"})
    LogRecord.objects.filter(pk=old).update(created_at=datetime(2026, 1, 10, tzinfo=UTC))
    LogRecord.objects.filter(pk=new).update(created_at=datetime(2026, 3, 10, tzinfo=UTC))
    assert row_ids(client.get(LOGS, {"from": "2026-02-01T00:00"})) == [new]
    assert row_ids(client.get(LOGS, {"to": "2026-02-01T00:00"})) == [old]
    assert row_ids(client.get(LOGS, {"from": "2026-01-01T00:00", "to": "2026-12-31T00:00"})) == [new, old]


def test_bad_filter_input_and_bad_cursors_show_a_message(client_as) -> None:
    client = client_as("viewer", "acme")
    ingest("acme", {})
    response = client.get(LOGS, {"from": "last tuesday"})
    assert response.status_code == 200 and row_ids(response) == []
    assert "From: must be Unix seconds or an ISO 8601 date-time" in response.content.decode()
    response = client.get(LOGS, {"status": "exploded"})
    assert response.status_code == 200 and "Status: Select a valid choice." in response.content.decode()
    response = client.get(LOGS, {"cursor": "not-a-cursor"})
    assert response.status_code == 200 and "That page link has expired." in response.content.decode()


def test_keyset_pages_walk_every_log_once(client_as) -> None:
    client = client_as("viewer", "acme")
    ids = ingest("acme", *({"tokens_in": n} for n in range(60)))
    response = client.get(LOGS)
    first = row_ids(response)
    assert first == sorted(ids, reverse=True)[:50]
    next_url = re.search(r'href="(\?cursor=[^"]+)" rel="next"', response.content.decode()).group(1)
    response = client.get(LOGS + next_url.replace("&amp;", "&"))
    second = row_ids(response)
    assert second == sorted(ids, reverse=True)[50:]
    assert 'rel="next"' not in response.content.decode() and "« Newest" in response.content.decode()


def test_filters_survive_paging(client_as) -> None:
    client = client_as("viewer", "acme")
    ingest("acme", *({"model": "gpt-4o"} for _ in range(55)), {"model": "other"})
    response = client.get(LOGS, {"model": "gpt-4o"})
    next_url = re.search(r'href="(\?[^"]+)" rel="next"', response.content.decode()).group(1)
    assert "model=gpt-4o" in next_url
    assert len(row_ids(client.get(LOGS + next_url.replace("&amp;", "&")))) == 5


def test_another_workspaces_logs_are_invisible_and_404(client_as) -> None:
    client = client_as("viewer", "acme")
    mine = ingest("acme", {"prompt_name": "ours"})
    theirs = ingest("globex", {"prompt_name": "theirs"}, {"prompt_name": "theirs-too"})
    body = client.get(LOGS).content.decode()
    assert row_ids(client.get(LOGS)) == mine and "theirs" not in body
    assert client.get(reverse("dashboard:log", args=[theirs[0]])).status_code == 404
    assert client.get(reverse("dashboard:log", args=[mine[0]])).status_code == 200


def test_signed_out_visitors_go_to_the_login_page(client) -> None:
    response = client.get(LOGS)
    assert response.status_code == 302 and "login" in response["Location"]


def test_a_log_page_shows_its_metadata_tree_and_links(client_as) -> None:
    client = client_as("viewer", "acme")
    trace_create(workspace_id="acme", body={"trace_id": "trace-1"}, actor=ACTOR)
    run_create(workspace_id="acme", body={"run_id": "run-1", "workflow_name": "agent"}, actor=ACTOR)
    [pk] = ingest(
        "acme",
        {
            "model": "gpt-4o",
            "tokens_in": 10,
            "trace_id": "trace-1",
            "span_id": "span-9",
            "run_id": "run-1",
            "metadata": {"customer": {"tier": "gold", "regions": ["eu", "us"]}, "retries": 2},
        },
    )
    body = client.get(reverse("dashboard:log", args=[pk])).content.decode()
    assert f"Log #{pk}" in body
    assert body.count("<details") == 2  # customer and customer.regions, collapsible
    assert '<span class="json-key">tier</span>' in body and "&quot;gold&quot;" in body
    assert 'href="/traces/trace-1?span=span-9"' in body
    assert 'href="/runs/run-1"' in body


def test_a_log_names_a_trace_and_run_not_received_without_linking(client_as) -> None:
    client = client_as("viewer", "acme")
    [pk] = ingest("acme", {"trace_id": "later", "run_id": "later-run"})
    body = client.get(reverse("dashboard:log", args=[pk])).content.decode()
    assert "later" in body and "(not received)" in body
    assert 'href="/traces/later' not in body and 'href="/runs/later-run"' not in body
    assert "No metadata was sent with this log." in body


def test_a_missing_log_is_404(client_as) -> None:
    assert client_as("viewer", "acme").get("/logs/999999").status_code == 404


def test_the_list_costs_a_fixed_number_of_queries(client_as, django_assert_max_num_queries) -> None:
    client = client_as("viewer", "acme")
    ingest("acme", *({"model": f"m{n}", "metadata": {"n": n}} for n in range(30)))
    client.get(LOGS)  # the session is warm
    with django_assert_max_num_queries(5):
        assert len(row_ids(client.get(LOGS, {"status": "ok"}))) == 30
    with django_assert_max_num_queries(5):
        row_ids(client.get(LOGS, {"status": "error"}))  # empty: plus one existence probe


def test_a_log_page_costs_a_fixed_number_of_queries(client_as, django_assert_max_num_queries) -> None:
    client = client_as("viewer", "acme")
    trace_create(workspace_id="acme", body={"trace_id": "t"}, actor=ACTOR)
    [pk] = ingest("acme", {"trace_id": "t", "metadata": {str(n): {"n": n} for n in range(30)}})
    client.get(LOGS)
    with django_assert_max_num_queries(5):
        assert client.get(reverse("dashboard:log", args=[pk])).status_code == 200
