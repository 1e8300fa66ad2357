"""The Traces pages: the filtered list with per-trace totals, and a trace's waterfall, span tree and
selected-span panel (chosen by ``?span=`` without JS)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from dashboard.views import telemetry as views
from telemetry.models import Trace
from telemetry.services import SpanInput, logs_ingest, spans_ingest, trace_create
from tenancy.context import Actor
from tenancy.models import Workspace

ACTOR = Actor(api_key_name="pytest")
TRACES = reverse("dashboard:traces")
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def workspace(name: str) -> str:
    return Workspace.objects.get_or_create(id=name, defaults={"name": name})[0].id


def new_trace(ws: str, trace_id: str, **body: Any) -> Trace:
    return trace_create(workspace_id=workspace(ws), body={"trace_id": trace_id, **body}, actor=ACTOR)


def add_spans(ws: str, trace_id: str, *spans: dict[str, Any]) -> None:
    inputs = []
    for span in spans:
        values = {"name": span["span_id"], **span}
        start = values.pop("start_ms", None)
        end = values.pop("end_ms", None)
        inputs.append(
            SpanInput(
                trace_id=trace_id,
                start_time=T0 + timedelta(milliseconds=start) if start is not None else None,
                end_time=T0 + timedelta(milliseconds=end) if end is not None else None,
                **values,
            )
        )
    result = spans_ingest(workspace_id=workspace(ws), spans=inputs, source="api", actor=ACTOR)
    assert result.accepted == len(spans)


def agent_trace(ws: str = "acme", trace_id: str = "trace-1") -> None:
    """root ─┬─ llm (error)
    └─ tool ── search"""
    new_trace(ws, trace_id, name="support-agent", prompt_name="triage")
    add_spans(
        ws,
        trace_id,
        {"span_id": "root", "name": "agent", "status": "ok", "start_ms": 0, "end_ms": 900},
        {
            "span_id": "llm",
            "parent_id": "root",
            "name": "chat gpt-4o",
            "status": "error",
            "status_message": "rate limited",
            "start_ms": 10,
            "end_ms": 400,
            "model": "gpt-4o",
            "provider": "openai",
            "tokens_in": 1500,
            "tokens_out": 250,
            "cost_usd": 0.0125,
            "metadata": {"gen_ai": {"request": {"temperature": 0.2}}, "attempt": 1},
            "events": [{"name": "retry", "time": "2026-05-01T12:00:00.200000000Z", "attributes": {"n": 1}}],
        },
        {
            "span_id": "tool",
            "parent_id": "root",
            "name": "lookup",
            "status": "ok",
            "start_ms": 420,
            "end_ms": 880,
        },
        {
            "span_id": "search",
            "parent_id": "tool",
            "name": "search",
            "status": "ok",
            "start_ms": 430,
            "end_ms": 600,
        },
    )


def trace_links(response: Any) -> list[str]:
    assert response.status_code == 200
    return re.findall(r'<td class="truncate"><a href="/traces/([^"]+)"', response.content.decode())


def panels(body: str) -> dict[str, bool]:
    """span_id -> whether its panel is shown."""
    found = re.findall(
        r'<section class="panel span-panel" aria-label="[^"]*" data-span-id="([^"]+)"( hidden)?>', body
    )
    return {span_id: not hidden for span_id, hidden in found}


def panel_of(body: str, span_id: str) -> str:
    start = body.index(f'data-span-id="{span_id}"')
    return body[start : body.index("</section>", start)]


# --- the list ---------------------------------------------------------------------------------------


def test_viewer_sees_traces_with_their_totals(client_as) -> None:
    client = client_as("viewer", "acme")
    agent_trace()
    body = client.get(TRACES).content.decode()
    assert trace_links(client.get(TRACES)) == ["trace-1"]
    assert "support-agent" in body and "triage" in body
    assert '<td class="num">4 <span class="error-count"' in body and "(1 failed)" in body
    assert "1,500" in body and "250" in body and "$0.0125" in body and "900 ms" in body


def test_empty_states(client_as) -> None:
    client = client_as("viewer", "acme")
    body = client.get(TRACES).content.decode()
    assert "Send your first log" in body
    logs_ingest(workspace_id="acme", body={"prompt_name": "p", "version_tag": "1"}, actor=ACTOR)
    body = client.get(TRACES).content.decode()
    assert "No traces yet." in body and "Send your first log" not in body
    new_trace("acme", "t1", prompt_name="triage")
    body = client.get(TRACES, {"prompt": "nothing"}).content.decode()
    assert "No traces match these filters." in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"prompt": "triage"}, ["a"]),
        ({"status": "error"}, ["b"]),
        ({"session": "s-2"}, ["b"]),
        ({"user": "u-1"}, ["c", "a"]),
        ({"user": "u-1", "prompt": "triage"}, ["a"]),
    ],
)
def test_filters_change_the_rows(client_as, query: dict[str, str], expected: list[str]) -> None:
    client = client_as("viewer", "acme")
    new_trace("acme", "a", prompt_name="triage", session_id="s-1", user_id="u-1")
    new_trace("acme", "b", prompt_name="answer", session_id="s-2", user_id="u-2")
    add_spans("acme", "b", {"span_id": "x", "status": "error", "start_ms": 0, "end_ms": 5})
    new_trace("acme", "c", prompt_name="answer", user_id="u-1")
    assert trace_links(client.get(TRACES, query)) == expected


def test_the_time_range_and_bad_input(client_as) -> None:
    client = client_as("viewer", "acme")
    new_trace("acme", "old")
    new_trace("acme", "new")
    Trace.objects.filter(trace_id="old").update(created_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert trace_links(client.get(TRACES, {"from": "2026-02-01T00:00"})) == ["new"]
    assert trace_links(client.get(TRACES, {"to": "2026-02-01T00:00"})) == ["old"]
    response = client.get(TRACES, {"to": "yesterday-ish"})
    assert trace_links(response) == [] and "To: must be Unix seconds" in response.content.decode()
    response = client.get(TRACES, {"cursor": "%%%"})
    assert "That page link has expired." in response.content.decode()


def test_keyset_pages(client_as) -> None:
    client = client_as("viewer", "acme")
    for n in range(55):
        new_trace("acme", f"t{n:02d}")
    response = client.get(TRACES)
    assert len(trace_links(response)) == 50
    next_url = re.search(r'href="(\?cursor=[^"]+)" rel="next"', response.content.decode()).group(1)
    rest = trace_links(client.get(TRACES + next_url))
    assert len(rest) == 5 and set(rest).isdisjoint(trace_links(response))


def test_another_workspaces_traces_are_invisible_and_404(client_as) -> None:
    client = client_as("viewer", "acme")
    agent_trace("globex", "secret")
    agent_trace("globex", "shared-id")
    new_trace("acme", "shared-id", name="ours")
    assert trace_links(client.get(TRACES)) == ["shared-id"]
    assert "support-agent" not in client.get(TRACES).content.decode()
    assert client.get(reverse("dashboard:trace", args=["secret"])).status_code == 404
    body = client.get(reverse("dashboard:trace", args=["shared-id"])).content.decode()
    assert "ours" in body and "No spans yet" in body and "chat gpt-4o" not in body


# --- a trace ----------------------------------------------------------------------------------------


def test_a_trace_page_draws_one_waterfall_bar_per_timed_span(client_as) -> None:
    client = client_as("viewer", "acme")
    agent_trace()
    add_spans("acme", "trace-1", {"span_id": "untimed", "parent_id": "root"})
    body = client.get(reverse("dashboard:trace", args=["trace-1"])).content.decode()
    data = re.search(r'<script id="span-waterfall-data" type="application/json">(.*?)</script>', body, re.S)
    figure = json.loads(data.group(1))
    [bars] = figure["data"]
    assert [row[0] for row in bars["customdata"]] == ["root", "llm", "tool", "search"]
    assert bars["base"] == [0, 10, 420, 430] and bars["x"] == [900, 390, 460, 170]
    assert "vendor/plotly.min.js" in body and "dashboard/traces.js" in body


def test_the_span_tree_nests_children_under_their_parent(client_as) -> None:
    client = client_as("viewer", "acme")
    agent_trace()
    body = client.get(reverse("dashboard:trace", args=["trace-1"])).content.decode()
    tree = body[body.index('id="span-tree"') : body.index('id="span-detail"')]
    order = re.findall(r'data-span-link="([^"]+)"', tree)
    assert order == ["root", "llm", "tool", "search"]
    # root and tool have children: each opens a <details>; llm and search are leaves.
    assert tree.count("<details open>") == 2 and tree.count("</details>") == 2
    search = tree.index('data-span-link="search"')
    tool = tree.index('data-span-link="tool"')
    # search sits inside the details that tool opens (after llm, a leaf)
    assert tool > tree.rfind("<details open>", 0, search) > tree.index('data-span-link="llm"')
    assert 'href="?span=llm"' in tree


def test_the_first_span_is_selected_by_default_and_span_selects_another(client_as) -> None:
    client = client_as("viewer", "acme")
    agent_trace()
    url = reverse("dashboard:trace", args=["trace-1"])
    shown = panels(client.get(url).content.decode())
    assert shown == {"root": True, "llm": False, "tool": False, "search": False}
    body = client.get(url, {"span": "llm"}).content.decode()
    assert panels(body) == {"root": False, "llm": True, "tool": False, "search": False}
    assert 'data-span-link="llm" aria-current="true"' in body


def test_the_selected_span_panel_has_everything_about_the_span(client_as) -> None:
    client = client_as("viewer", "acme")
    agent_trace()
    body = client.get(reverse("dashboard:trace", args=["trace-1"]), {"span": "llm"}).content.decode()
    panel = panel_of(body, "llm")
    for text in (
        "chat gpt-4o",
        '<dd class="mono">llm</dd>',
        'href="?span=root"',
        '<span class="badge error">error</span>',
        "rate limited",
        "2026-05-01 12:00:00.010000 UTC",
        "(+10.0 ms)",
        "2026-05-01 12:00:00.400000 UTC",
        "390 ms",
        "gpt-4o",
        "openai",
        "1,500",
        "250",
        "$0.0125",
        '<span class="json-key">temperature</span>',
        "retry",
        "2026-05-01T12:00:00.200000000Z",
        "curl http://testserver/v1/traces/trace-1/spans/llm",
        "X-API-Key: $PROMPTMETRICS_API_KEY",
    ):
        assert text in panel, text


def test_the_span_curl_fetches_that_span_from_the_api(client_as, api, make_key) -> None:
    client = client_as("viewer", "acme")
    agent_trace()
    body = client.get(reverse("dashboard:trace", args=["trace-1"]), {"span": "search"}).content.decode()
    curl = panel_of(body, "search")
    path = re.search(r"curl http://testserver(\S+)", curl).group(1)
    workspace = re.search(r'-H "X-Workspace-Id: ([^"]+)"', curl).group(1)
    assert '-H "X-API-Key: $PROMPTMETRICS_API_KEY"' in curl
    response = api.get(path, key=make_key("read", workspace="acme")[1], workspace=workspace)
    assert response.status_code == 200, response.content
    assert response.json()["span_id"] == "search"


def test_an_unknown_span_says_so_and_shows_the_first(client_as) -> None:
    client = client_as("viewer", "acme")
    agent_trace()
    response = client.get(reverse("dashboard:trace", args=["trace-1"]), {"span": "<nope>"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "There is no span" in body and "&lt;nope&gt;" in body
    assert panels(body)["root"] is True


def test_a_big_trace_renders_its_first_spans_and_says_so(client_as, monkeypatch) -> None:
    monkeypatch.setattr(views, "MAX_SPANS", 5)
    client = client_as("viewer", "acme")
    new_trace("acme", "big")
    add_spans("acme", "big", *({"span_id": f"s{n}", "start_ms": n, "end_ms": n + 1} for n in range(8)))
    body = client.get(reverse("dashboard:trace", args=["big"])).content.decode()
    assert list(panels(body)) == ["s0", "s1", "s2", "s3", "s4"]
    assert "This trace has 8 spans; the page shows the first 5 by start time." in body


def test_a_new_span_shows_at_once_despite_the_cached_section(client_as) -> None:
    client = client_as("viewer", "acme")
    agent_trace()
    url = reverse("dashboard:trace", args=["trace-1"])
    assert "late" not in panels(client.get(url).content.decode())
    add_spans("acme", "trace-1", {"span_id": "late", "parent_id": "root", "start_ms": 890, "end_ms": 950})
    body = client.get(url, {"span": "late"}).content.decode()
    assert panels(body)["late"] is True and panels(body)["root"] is False
    assert '<div class="value" data-card="spans">5</div>' in body


def test_a_trace_without_spans(client_as) -> None:
    client = client_as("viewer", "acme")
    new_trace("acme", "empty")
    body = client.get(reverse("dashboard:trace", args=["empty"])).content.decode()
    assert "No spans yet" in body and "http://testserver/v1/traces/empty/spans" in body
    assert "span-waterfall" not in body and "plotly.min.js" not in body


def test_the_list_costs_a_fixed_number_of_queries(client_as, django_assert_max_num_queries) -> None:
    client = client_as("viewer", "acme")
    for n in range(30):
        new_trace("acme", f"t{n}")
        add_spans("acme", f"t{n}", {"span_id": "s", "start_ms": 0, "end_ms": n})
    client.get(TRACES)
    with django_assert_max_num_queries(4):
        assert len(trace_links(client.get(TRACES))) == 30


def test_a_trace_page_costs_a_fixed_number_of_queries(client_as, django_assert_max_num_queries) -> None:
    client = client_as("viewer", "acme")
    new_trace("acme", "wide")
    spans = [{"span_id": "root", "start_ms": 0, "end_ms": 100}]
    spans += [{"span_id": f"c{n}", "parent_id": "root", "start_ms": n, "end_ms": n + 5} for n in range(30)]
    add_spans("acme", "wide", *spans)
    client.get(TRACES)
    url = reverse("dashboard:trace", args=["wide"])
    with django_assert_max_num_queries(6):
        body = client.get(url).content.decode()
    assert len(panels(body)) == 31
    # Seen once, the spans' part comes from the cache: no span query.
    with django_assert_max_num_queries(5):
        body = client.get(url, {"span": "c7"}).content.decode()
    assert len(panels(body)) == 31 and panels(body)["c7"] is True


# --- the pure helpers -------------------------------------------------------------------------------


def test_json_tree_nests_escapes_and_bounds_what_it_draws() -> None:
    html = views.json_tree({"<b>": {"list": [1, None, True, "x"]}, "n": 1.5})
    assert html.startswith('<ul class="json-tree">') and html.count("<details") == 2
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert '<span class="muted">4 items</span>' in html and '<span class="muted">1 key</span>' in html
    for kind in ("int", "null", "bool", "str", "float"):
        assert f"json-{kind}" in html
    assert views.json_tree({}) == "" and views.json_tree(None) == ""
    many = views.json_tree({str(n): n for n in range(50)}, limit=10)
    assert many.count('class="json-key"') == 11 and "(truncated)" in many
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["d"] = {}
        node = node["d"]
    assert views.json_tree(deep).count("<details") == views.MAX_TREE_DEPTH
    long = views.json_tree({"prompt": "y" * 5000})
    assert "more characters)" in long and "y" * 5000 not in long


def test_span_tree_closes_every_level_it_opens() -> None:
    ordered = [({"span_id": s}, d) for s, d in [("a", 0), ("b", 1), ("c", 2), ("d", 2), ("e", 0), ("f", 1)]]
    nodes = views.span_tree(ordered)
    assert [n["has_children"] for n in nodes] == [True, True, False, False, True, False]
    assert [len(n["closes"]) for n in nodes] == [0, 0, 0, 2, 0, 1]
