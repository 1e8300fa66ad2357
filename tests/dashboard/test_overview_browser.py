"""The overview and the page frame in a real browser: charts drawn, window tabs, the switcher."""

from __future__ import annotations

import pytest

from tests.dashboard.test_overview import log

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def logged(api, make_key) -> None:
    _, key = make_key("read,write", workspace="acme")
    logs = [log("welcome", tokens_in=100, tokens_out=40, cost=0.02, latency=300 + i) for i in range(20)]
    logs += [log("summarize", tokens_in=900, tokens_out=90, cost=0.1, latency=1200) for _ in range(5)]
    assert api.post("/v1/logs", key=key, workspace="acme", json=logs).status_code == 202
    for name in ("nightly-etl", "support-agent"):
        api.post("/v1/runs", key=key, workspace="acme", json={"workflow_name": name, "status": "completed"})
    suite = {"name": "quality", "prompt_name": "welcome", "threshold": 0.6}
    assert api.post("/v1/evaluations", key=key, workspace="acme", json=suite).status_code == 201
    results = [{"score": score} for score in (0.4, 0.7, 0.9)]
    assert api.post(
        "/v1/evaluations/quality/results", key=key, workspace="acme", json=results
    ).status_code in (
        201,
        202,
    )


def test_the_overview_draws_both_charts_and_switches_windows(tab_as, logged) -> None:
    tab = tab_as("viewer", "acme")
    tab.goto("/")
    page = tab.page
    page.wait_for_selector("#cost-latency svg.main-svg")
    page.wait_for_selector("#tokens-by-prompt svg.main-svg")
    assert page.locator("#tokens-by-prompt .bars path").count() >= 4  # two prompts, in and out
    page.wait_for_selector("#evaluation-trend svg.main-svg")
    # Band (two lines), average and threshold: four traces.
    assert page.locator("#evaluation-trend .scatterlayer .trace").count() == 4
    assert page.locator("[data-card=requests]").inner_text() == "25"
    tab.screenshot("overview")
    page.get_by_role("link", name="30d").click()
    page.wait_for_url("**/?window=30d")
    page.wait_for_selector("#cost-latency svg.main-svg")
    assert page.locator(".tabs [aria-current=page]").inner_text() == "30d"
    assert "nightly-etl" in page.locator("main").inner_text()


def test_the_dark_theme_follows_the_system_preference(tab_as, logged) -> None:
    light, dark = tab_as("viewer", "acme"), tab_as("viewer", "acme", color_scheme="dark")
    backgrounds = []
    for tab in (light, dark):
        tab.goto("/")
        tab.page.wait_for_selector("#cost-latency svg.main-svg")
        backgrounds.append(tab.page.evaluate("getComputedStyle(document.body).backgroundColor"))
    assert backgrounds == ["rgb(247, 248, 250)", "rgb(17, 20, 24)"]
    # The chart's text takes the theme's colour too (app.js reads the CSS variables).
    tick = dark.page.locator("#cost-latency .xtick text").first
    assert tick.evaluate("el => el.style.fill") == "rgb(230, 233, 238)"
    dark.screenshot("overview-dark")


def test_the_switcher_changes_workspace_on_selection(tab_as, member) -> None:
    user = member("viewer", "acme", username="ada")
    member("viewer", "beta", username="ada")
    tab = tab_as(user=user)
    tab.goto("/")
    assert "acme · the last 7d" in tab.page.locator(".page-header").inner_text()
    tab.page.select_option("#workspace-switcher", "beta")
    tab.page.wait_for_function("document.querySelector('.page-header').innerText.includes('beta')")
    assert tab.page.locator("#workspace-switcher").input_value() == "beta"


def test_the_sign_in_form_works_in_the_browser(browser, live_server, member) -> None:
    member("viewer", "acme", username="grace")
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.goto(live_server.url + "/logs")
    assert "/login?next=/logs" in page.url
    page.get_by_label("Username").fill("grace")
    page.get_by_label("Password").fill("pw-for-tests-only")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/logs")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    context.close()
    assert not errors


def test_another_workspaces_pages_are_not_found_in_the_browser(tab_as, api, make_key) -> None:
    _, key = make_key("read,write", workspace="beta")
    trace = api.post("/v1/traces", key=key, workspace="beta", json={"name": "beta-secret"}).json()
    api.post(
        "/v1/logs",
        key=key,
        workspace="beta",
        json=[log("beta-prompt", tokens_in=1, tokens_out=1, cost=1.0, latency=1)],
    )
    tab = tab_as("admin", "acme")
    tab.allow(r"/traces/")
    tab.goto(f"/traces/{trace['trace_id']}")
    assert tab.page.locator("h1").inner_text() == "Not found"
    for path in ("/", "/traces", "/logs"):
        tab.goto(path)
        text = tab.page.locator("main").inner_text()
        assert "beta-secret" not in text and "beta-prompt" not in text
    assert tab.page.locator("#workspace-switcher option").all_inner_texts() == ["acme"]
