"""Logs, traces and runs in a real browser: every page loads cleanly, filters change the rows, the
waterfall draws one bar per span, and selecting a span (tree item or bar) swaps the panel in place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telemetry.services import SpanInput, logs_ingest, run_create, spans_ingest, trace_create
from tenancy.context import Actor
from tenancy.models import Workspace

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor(api_key_name="pytest")
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def seed() -> None:
    Workspace.objects.get_or_create(id="acme", defaults={"name": "Acme"})
    logs_ingest(
        workspace_id="acme",
        body=[
            {
                "prompt_name": "summarise",
                "version_tag": "1.2.0",
                "provider": "openai",
                "model": "gpt-4o-mini",
                "tokens_in": 1200 + n,
                "tokens_out": 300,
                "latency_ms": 640 + 10 * n,
                "cost_usd": 0.00036,
                "run_id": "run-1",
                "metadata": {"customer": {"tier": "gold", "region": "eu"}, "attempt": n},
            }
            for n in range(3)
        ]
        + [
            {
                "prompt_name": "classify",
                "version_tag": "2.0.0",
                "provider": "anthropic",
                "model": "claude-3-5-haiku",
                "tokens_in": 400,
                "tokens_out": 12,
                "latency_ms": 15_200,
                "status": "error",
                "error_code": "timeout",
            }
        ],
        actor=ACTOR,
    )
    trace_create(
        workspace_id="acme",
        body={"trace_id": "trace-1", "name": "support-agent", "prompt_name": "summarise", "user_id": "u-42"},
        actor=ACTOR,
    )

    def span(span_id: str, parent: str, name: str, start: int, end: int, **extra: object) -> SpanInput:
        return SpanInput(
            trace_id="trace-1",
            span_id=span_id,
            parent_id=parent,
            name=name,
            start_time=T0 + timedelta(milliseconds=start),
            end_time=T0 + timedelta(milliseconds=end),
            **extra,
        )

    spans_ingest(
        workspace_id="acme",
        spans=[
            span("root", "", "agent", 0, 1800, status="ok", kind="agent"),
            span(
                "plan",
                "root",
                "plan",
                20,
                600,
                status="ok",
                kind="llm",
                model="gpt-4o",
                tokens_in=900,
                tokens_out=120,
                cost_usd=0.0042,
                metadata={"gen_ai": {"request": {"temperature": 0.2}}},
            ),
            span(
                "tool",
                "root",
                "search_orders",
                620,
                1100,
                status="error",
                kind="tool",
                status_message="upstream 503",
                events=[
                    {
                        "name": "exception",
                        "time": "2026-05-01T12:00:01.050000000Z",
                        "attributes": {"exception.type": "HTTPError"},
                    }
                ],
            ),
            span(
                "answer",
                "root",
                "answer",
                1120,
                1780,
                status="ok",
                kind="llm",
                model="gpt-4o-mini",
                tokens_in=1400,
                tokens_out=260,
                cost_usd=0.0004,
            ),
        ],
        source="api",
        actor=ACTOR,
    )
    trace_create(workspace_id="acme", body={"trace_id": "trace-2", "name": "nightly-batch"}, actor=ACTOR)
    run_create(
        workspace_id="acme",
        body={
            "run_id": "run-1",
            "workflow_name": "support",
            "status": "completed",
            "trace_id": "trace-1",
            "input": {"question": "Where is my order?"},
            "output": {"answer": "It shipped on Monday."},
        },
        actor=ACTOR,
    )
    run_create(workspace_id="acme", body={"run_id": "run-2", "workflow_name": "nightly"}, actor=ACTOR)


def test_logs_filter_and_open_a_log(tab_as) -> None:
    seed()
    tab = tab_as("viewer", "acme")
    tab.goto("/logs")
    rows = tab.page.locator("#log-table tbody tr")
    assert rows.count() == 4
    tab.screenshot("telemetry-logs")
    tab.page.select_option("#id_status", "error")
    tab.page.click("form.filters button[type=submit]")
    tab.page.wait_for_load_state("networkidle")
    assert rows.count() == 1 and "claude-3-5-haiku" in rows.first.inner_text()
    tab.page.fill("#id_model", "gpt-4o-mini")
    tab.page.select_option("#id_status", "")
    tab.page.click("form.filters button[type=submit]")
    tab.page.wait_for_load_state("networkidle")
    assert rows.count() == 3
    rows.first.locator("a").first.click()
    tab.page.wait_for_load_state("networkidle")
    assert tab.page.locator(".json-tree summary", has_text="customer").count() == 1
    tab.page.wait_for_selector("text=View run")
    tab.screenshot("telemetry-log")


def test_traces_filter_waterfall_and_span_selection(tab_as) -> None:
    seed()
    tab = tab_as("viewer", "acme")
    tab.goto("/traces")
    rows = tab.page.locator("#trace-table tbody tr")
    assert rows.count() == 2
    tab.screenshot("telemetry-traces")
    tab.page.fill("#id_user", "u-42")
    tab.page.click("form.filters button[type=submit]")
    tab.page.wait_for_load_state("networkidle")
    assert rows.count() == 1
    rows.first.locator("a").first.click()
    tab.page.wait_for_selector("#span-waterfall svg.main-svg")
    assert tab.page.locator("#span-waterfall g.trace.bars g.point").count() == 4

    visible = tab.page.locator(".span-panel:visible")
    assert visible.count() == 1 and visible.get_attribute("data-span-id") == "root"
    # A tree item swaps the panel without a reload and keeps ?span= in the address.
    tab.page.evaluate("window.__sameDocument = true")
    tab.page.click('#span-tree a[data-span-link="tool"]')
    assert visible.get_attribute("data-span-id") == "tool"
    assert "upstream 503" in visible.inner_text() and "HTTPError" in visible.inner_text()
    assert tab.page.url.endswith("?span=tool")
    assert tab.page.evaluate("window.__sameDocument") is True
    assert tab.page.get_attribute('#span-tree a[data-span-link="tool"]', "aria-current") == "true"

    # A waterfall bar does the same (the figure's pm:select-span event).
    bar = tab.page.locator("#span-waterfall g.trace.bars g.point").nth(1).bounding_box()
    tab.page.mouse.move(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
    tab.page.mouse.click(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
    tab.page.wait_for_function(
        "document.querySelector('.span-panel:not([hidden])').dataset.spanId === 'plan'"
    )
    assert "temperature" in visible.inner_text() and "$0.0042" in visible.inner_text()
    assert tab.page.evaluate("window.__sameDocument") is True
    tab.screenshot("telemetry-trace")


def test_runs_filter_and_open_a_run(tab_as) -> None:
    seed()
    tab = tab_as("viewer", "acme")
    tab.goto("/runs")
    rows = tab.page.locator("#run-table tbody tr")
    assert rows.count() == 2
    tab.screenshot("telemetry-runs")
    tab.page.select_option("#id_status", "completed")
    tab.page.click("form.filters button[type=submit]")
    tab.page.wait_for_load_state("networkidle")
    assert rows.count() == 1
    rows.first.locator("a").first.click()
    tab.page.wait_for_load_state("networkidle")
    assert "It shipped on Monday." in tab.page.inner_text("main")
    tab.screenshot("telemetry-run")
    tab.page.click("text=View trace")
    tab.page.wait_for_selector("#span-waterfall svg.main-svg")
