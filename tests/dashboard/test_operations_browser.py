"""Operations in a real browser: minting a key shown once, revoking it through the confirm dialog,
and the audit log's filters."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tenancy.models import ApiKey
from tenancy.services import api_key_revoke
from tests.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db(transaction=True)


def _me_status(base_url: str, key: str) -> int:
    request = urllib.request.Request(
        f"{base_url}/v1/api-keys/me", headers={"X-API-Key": key, "X-Workspace-Id": "acme"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_an_admin_mints_a_key_sees_it_once_and_revokes_it(tab_as, live_server) -> None:
    tab = tab_as("admin", "acme")
    page = tab.page
    tab.goto("/operations")
    page.fill("#key-name", "deploy-bot")
    page.check("input[name=scopes][value=write]")
    page.fill("#key-expiry", "90")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#new-key-value")

    plaintext = page.text_content("#new-key-value").strip()
    assert plaintext.startswith("pm_")
    assert page.locator("#new-key button.copy").is_visible()
    tab.screenshot("operations-index")
    assert _me_status(live_server.url, plaintext) == 200

    tab.goto("/operations")
    assert page.locator("#new-key-value").count() == 0
    assert plaintext not in page.content()

    row = page.locator("tr", has_text="deploy-bot")
    row.get_by_role("button", name="Revoke").click()
    dialog = page.locator("#confirm-dialog")
    assert "deploy-bot" in dialog.text_content()
    dialog.get_by_role("button", name="Confirm").click()
    page.wait_for_selector("text=revoked: it is refused from now on")

    assert page.locator("tr", has_text="deploy-bot").locator(".badge.revoked").is_visible()
    assert ApiKey.objects.get(name="deploy-bot").revoked_at is not None
    assert _me_status(live_server.url, plaintext) == 401


def test_cancelling_the_confirm_dialog_keeps_the_key(tab_as, make_key) -> None:
    make_key("read", workspace="acme", name="keep-me")
    tab = tab_as("admin", "acme")
    tab.goto("/operations")

    tab.page.locator("tr", has_text="keep-me").get_by_role("button", name="Revoke").click()
    tab.page.locator("#confirm-dialog").get_by_role("button", name="Cancel").click()

    assert tab.page.locator("tr", has_text="keep-me").locator(".badge.ok").is_visible()
    assert ApiKey.objects.get(name="keep-me").revoked_at is None


def test_an_editor_sees_keys_but_no_forms_and_no_audit_log(tab_as, make_key) -> None:
    make_key("read", workspace="acme", name="reader")
    tab = tab_as("editor", "acme")
    page = tab.page

    tab.goto("/operations")
    assert page.locator("tr", has_text="reader").is_visible()
    assert page.locator("#key-form").count() == 0
    assert page.get_by_role("button", name="Revoke").count() == 0
    assert page.locator("#git-clone pre.code").is_visible()
    assert page.get_by_role("link", name="Audit log").count() == 0


def test_an_admin_filters_the_audit_log(tab_as, make_key) -> None:
    key, _ = make_key("read", workspace="acme", name="reader")
    api_key_revoke(api_key=key, actor=TEST_ACTOR)
    tab = tab_as("admin", "acme")
    page = tab.page

    tab.goto("/operations")
    page.get_by_role("link", name="Audit log").click()
    page.wait_for_selector("#audit-log table")
    assert page.locator("#audit-log tbody tr").count() == 2
    page.fill("#id_action", "api_key:revoke")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**action=api_key*")
    assert page.locator("#audit-log tbody tr").count() == 1
    assert "api_key:revoke" in page.locator("#audit-log tbody").text_content()
    tab.screenshot("operations-audit")
