"""The Prompts pages in a real browser: search, moving a label through the confirmation dialog (and
what the API then resolves), the viewer's read-only labels, the diff and the render tryout."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from registry.models import PromptLabel
from tests.dashboard.test_prompts import create, seeded

pytestmark = pytest.mark.django_db(transaction=True)


def resolve_over_http(base_url: str, key: str, name: str, label: str) -> str:
    request = urllib.request.Request(
        f"{base_url}/v1/prompts/{name}?label={label}&render=false",
        headers={"X-API-Key": key, "X-Workspace-Id": "acme"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["version"]["version_tag"]


def production() -> str:
    return PromptLabel.objects.get(prompt__name="support-reply", name="production").version.version


def test_list_searches_prompts(tab_as: Any) -> None:
    seeded()
    create("summarize", "0.3.0")
    tab = tab_as("viewer", "acme")
    tab.goto("/prompts")
    rows = tab.page.locator("table.prompt-list tbody tr")
    assert rows.count() == 2
    tab.screenshot("prompts-list")
    tab.page.fill("#prompt-search", "summ")
    tab.page.click("form[role=search] button[type=submit]")
    tab.page.wait_for_load_state("networkidle")
    assert rows.count() == 1
    assert rows.first.locator("a.prompt-name").inner_text() == "summarize"
    rows.first.locator("a.prompt-name").click()
    tab.page.wait_for_selector("h1:has-text('summarize')")


def test_editor_moves_a_label_through_the_confirmation(tab_as: Any, live_server: Any, make_key: Any) -> None:
    seeded()
    key = make_key("read", workspace="acme")[1]
    assert resolve_over_http(live_server.url, key, "support-reply", "production") == "1.1.0"
    tab = tab_as("editor", "acme")
    tab.goto("/prompts/support-reply")
    page = tab.page
    page.wait_for_selector("form.label-move")
    tab.screenshot("prompts-detail")
    page.select_option("#move-version", "1.2.0")

    # Cancel first: nothing moves.
    page.click("form.label-move button[type=submit]")
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    assert dialog.locator(".confirm-message").inner_text() == "Move label production from 1.1.0 to 1.2.0?"
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="hidden")
    assert production() == "1.1.0"

    page.click("form.label-move button[type=submit]")
    dialog.wait_for(state="visible")
    with page.expect_navigation():
        dialog.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state("networkidle")
    assert "Label production moved from 1.1.0 to 1.2.0." in page.locator(".messages").inner_text()
    row = page.locator("tr[data-label=production]")
    assert row.locator("[data-resolves]").inner_text() == "1.2.0"
    assert production() == "1.2.0"
    assert resolve_over_http(live_server.url, key, "support-reply", "production") == "1.2.0"

    row.get_by_role("link", name="History").click()
    page.wait_for_selector("table.history-table")
    assert page.locator("table.history-table tbody tr").count() == 2
    tab.screenshot("prompts-history")


def test_viewer_sees_labels_without_the_move_form(tab_as: Any) -> None:
    seeded()
    tab = tab_as("viewer", "acme")
    tab.goto("/prompts/support-reply")
    assert tab.page.locator("table.labels-table tbody tr").count() == 2
    assert tab.page.locator("form.label-move").count() == 0
    # Picking a version in the document viewer shows that version.
    tab.page.select_option("#version-select", "1.0.0")
    tab.page.wait_for_url("**/prompts/support-reply?version=1.0.0")
    assert "(v1.0.0)." in tab.page.locator(".messages-list").inner_text()


def test_diff_and_render_tryout(tab_as: Any) -> None:
    seeded()
    tab = tab_as("viewer", "acme")
    page = tab.page
    tab.goto("/prompts/support-reply/diff")
    assert page.locator("tr.diff-add").count() == 2
    page.select_option("#diff-from", "1.0.0")
    page.select_option("#diff-to", "1.0.0")
    page.click("text=Compare")
    page.wait_for_load_state("networkidle")
    assert "The two versions are identical." in page.locator("main").inner_text()
    page.select_option("#diff-to", "1.2.0")
    page.click("text=Compare")
    page.wait_for_selector("tr.diff-del")
    tab.screenshot("prompts-diff")

    tab.goto("/prompts/support-reply/render")
    page.fill("textarea[name='variables[input]']", "Where is my order?")
    page.click("button[name=render]")
    page.wait_for_selector("[data-rendered]")
    output = page.locator("[data-rendered]").inner_text()
    assert "You help customers of Acme (v1.2.0)." in output and "Where is my order?" in output
    tab.screenshot("prompts-render")
    page.fill("textarea[name='variables[input]']", "")
    page.click("button[name=render]")
    page.wait_for_selector("[role=alert]")
    assert "Missing required variables: input" in page.locator("[role=alert]").inner_text()


def test_a_label_can_be_moved_with_the_keyboard_alone(tab_as: Any) -> None:
    seeded()
    tab = tab_as("editor", "acme")
    tab.goto("/prompts/support-reply")
    page = tab.page
    page.focus("#move-version")
    page.keyboard.press("End")  # the select's last option: the oldest version, 1.0.0
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.matches('form.label-move button[type=submit]')")
    page.keyboard.press("Enter")
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    # The dialog takes the focus; Cancel comes first, so a stray Enter changes nothing.
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector(".message.success")
    assert production() == "1.0.0"
