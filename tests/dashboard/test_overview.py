"""The overview page: window figures from the real ingest path, charts, recent runs, health."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.django_db


def post_logs(api, key: str, logs: list[dict], workspace: str = "acme") -> None:
    response = api.post("/v1/logs", key=key, workspace=workspace, json=logs)
    assert response.status_code == 202, response.content


def log(prompt: str, *, tokens_in: int, tokens_out: int, cost: float, latency: int, status="ok") -> dict:
    return {
        "prompt_name": prompt,
        "version_tag": "1.0.0",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_usd": cost,
        "latency_ms": latency,
        "status": status,
    }


def figure(page: str, chart_id: str) -> dict:
    match = re.search(rf'<script id="{chart_id}-data" type="application/json">(.*?)</script>', page, re.S)
    assert match, f"no figure {chart_id}"
    return json.loads(match.group(1))


def card(page: str, name: str) -> str:
    match = re.search(rf'data-card="{name}">([^<]*)<', page)
    assert match, name
    return match.group(1)


@pytest.fixture
def acme_logs(api, make_key) -> None:
    _, key = make_key("read,write", workspace="acme")
    post_logs(
        api,
        key,
        [log("welcome", tokens_in=100, tokens_out=50, cost=0.25, latency=200) for _ in range(9)]
        + [log("summarize", tokens_in=1000, tokens_out=10, cost=1.0, latency=900, status="error")],
    )
    _, other = make_key("read,write", workspace="beta")
    post_logs(
        api,
        other,
        workspace="beta",
        logs=[log("secret-prompt", tokens_in=7, tokens_out=7, cost=99.0, latency=5)],
    )


def test_the_cards_add_up_the_windows_logs(client_as, acme_logs) -> None:
    page = client_as("viewer", "acme").get("/?window=24h").content.decode()
    assert card(page, "requests") == "10"
    assert card(page, "cost") == "$3.25"
    assert card(page, "tokens") == f"{9 * 150 + 1010:,}"
    assert card(page, "errors") == "10.0 %"
    assert card(page, "p50").endswith(" ms") and card(page, "p95").endswith(" ms")
    assert 190 <= float(card(page, "p50").split()[0]) <= 210
    assert "Send your first log" not in page


def test_tokens_by_prompt_names_the_prompts_of_this_workspace_only(client_as, acme_logs) -> None:
    page = client_as("viewer", "acme").get("/").content.decode()
    bars = figure(page, "tokens-by-prompt")["data"][0]
    assert bars["y"] == ["summarize", "welcome"]  # largest (1,350 tokens) last: drawn on top
    assert "secret-prompt" not in page and "$99" not in page


def test_the_cost_and_latency_chart_has_one_point_per_day_of_the_window(client_as, acme_logs) -> None:
    client = client_as("viewer", "acme")
    for window, days in (("7d", 8), ("30d", 31), ("90d", 91)):
        data = figure(client.get(f"/?window={window}").content.decode(), "cost-latency")["data"]
        assert len(data[0]["x"]) == days
        assert sum(data[0]["y"]) == pytest.approx(3.25)


def test_an_unknown_window_falls_back_to_seven_days(client_as) -> None:
    page = client_as("viewer", "acme").get("/?window=1y").content.decode()
    assert 'aria-current="page">7d<' in page


def test_a_new_workspace_shows_how_to_send_the_first_log(client_as) -> None:
    page = client_as("viewer", "acme").get("/", HTTP_HOST="pm.example.com:8080").content.decode()
    assert "Send your first log" in page
    assert "curl -X POST http://pm.example.com:8080/v1/logs" in page
    assert "No runs in this window." in page


def test_the_first_log_snippet_is_accepted_by_the_api(client_as, api, make_key) -> None:
    import html

    page = html.unescape(client_as("viewer", "acme").get("/").content.decode())
    workspace = re.search(r'-H "X-Workspace-Id: ([^"]+)"', page).group(1)
    body = json.loads(re.search(r"-d '(\{.*?\})'", page, re.S).group(1))
    _, key = make_key("ingest", workspace="acme")
    assert workspace == "acme"
    assert api.post("/v1/logs", key=key, workspace=workspace, json=body).status_code == 202
    assert "Send your first log" not in client_as("viewer", "acme").get("/").content.decode()


def test_recent_runs_link_to_their_pages(api, make_key, client_as) -> None:
    _, key = make_key("read,write", workspace="acme")
    for name in ("etl", "chat"):
        assert (
            api.post("/v1/runs", key=key, workspace="acme", json={"workflow_name": name}).status_code == 201
        )
    _, other = make_key("read,write", workspace="beta")
    api.post("/v1/runs", key=other, workspace="beta", json={"workflow_name": "hidden-workflow"})
    page = client_as("viewer", "acme").get("/").content.decode()
    assert page.index(">chat<") < page.index(">etl<")  # newest first
    assert "hidden-workflow" not in page
    assert re.search(r'href="/runs/[^"]+"', page)


def test_the_health_panel_reports_each_dependency(client_as, settings) -> None:
    page = client_as("viewer", "acme").get("/").content.decode()
    assert "Database" in page and "Prompt storage" in page and "Ingest lag" in page
    assert page.count('class="badge error"') == 0


def test_the_overview_runs_a_fixed_number_of_queries(
    api, make_key, client_as, django_assert_max_num_queries
) -> None:
    _, key = make_key("read,write", workspace="acme")

    def add(count: int, offset: int) -> None:
        names = [f"p{offset + i}" for i in range(count)]
        post_logs(api, key, [log(name, tokens_in=5, tokens_out=1, cost=0.1, latency=10) for name in names])
        for name in names:
            api.post("/v1/runs", key=key, workspace="acme", json={"workflow_name": name})

    client = client_as("viewer", "acme")
    add(1, 0)
    client.get("/")
    add(1, 1)  # today's figures change, so no cached figure hides a query
    with django_assert_max_num_queries(20) as few:
        client.get("/")
    baseline = len(few.captured_queries)
    add(30, 2)
    with django_assert_max_num_queries(baseline):
        client.get("/")


def test_traces_and_runs_of_the_window_are_counted(client_as, api, make_key) -> None:
    _, key = make_key("read,write", workspace="acme")
    for i in range(3):
        assert api.post("/v1/traces", key=key, workspace="acme", json={"name": f"t{i}"}).status_code == 201
    api.post("/v1/runs", key=key, workspace="acme", json={"workflow_name": "etl"})
    _, other = make_key("read,write", workspace="beta")
    api.post("/v1/traces", key=other, workspace="beta", json={"name": "theirs"})
    page = client_as("viewer", "acme").get("/").content.decode()
    assert card(page, "traces") == "3" and card(page, "runs") == "1"


def test_the_evaluation_with_results_is_charted(client_as, api, make_key) -> None:
    _, key = make_key("read,write", workspace="acme")
    for name in ("older", "newer"):
        created = api.post(
            "/v1/evaluations",
            key=key,
            workspace="acme",
            json={"name": name, "prompt_name": "welcome", "threshold": 0.5},
        )
        assert created.status_code == 201, created.content
    results = [{"score": 0.25}, {"score": 0.75}]
    posted = api.post("/v1/evaluations/newer/results", key=key, workspace="acme", json=results)
    assert posted.status_code in (201, 202), posted.content
    page = client_as("viewer", "acme").get("/?window=24h").content.decode()
    assert ">newer</a>" in page
    upper, lower, average, threshold = figure(page, "evaluation-trend")["data"]
    assert len(average["x"]) == 8  # the 24h view shows the trend's week
    assert average["y"][-1] == pytest.approx(0.5) and upper["y"][-1] == 0.75 and lower["y"][-1] == 0.25
    assert threshold["y"] == [0.5, 0.5]


def test_without_evaluation_results_the_trend_says_so(client_as) -> None:
    page = client_as("viewer", "acme").get("/").content.decode()
    assert "No evaluation has results yet." in page
    assert "evaluation-trend-data" not in page
