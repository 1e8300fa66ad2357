"""Dashboard fixtures: users with a role in a workspace, logged-in clients, and a real browser.

Browser tests drive Debian's chromium through Playwright against pytest-django's live server; each
page a test opens is checked for console errors and failed requests when the test ends, and saved
as a full-page screenshot under ``test-artifacts/screenshots/`` for reviewers.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenancy.models import Membership, Workspace

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# Playwright's sync API runs an event loop in the test's thread; Django refuses ORM calls from a
# thread with a running loop unless told this is deliberate. The ORM calls here are the tests' own.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def member(db: None) -> Callable[..., Any]:
    """``member("editor", "acme")``: a user with that role in that workspace (created if needed)."""
    counter = iter(range(1, 10_000))

    def make(role: str = "viewer", workspace: str = "acme", *, username: str | None = None) -> Any:
        ws = Workspace.objects.get_or_create(id=workspace, defaults={"name": workspace})[0]
        name = username or f"{role}-{workspace}-{next(counter)}"
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            user = get_user_model().objects.create_user(username=name, password="pw-for-tests-only")
        Membership.objects.update_or_create(user=user, workspace=ws, defaults={"role": role})
        return user

    return make


@pytest.fixture
def client_as(member: Callable[..., Any]) -> Callable[..., Client]:
    """``client_as("viewer", "acme")``: a Django test client logged in as such a member."""

    def make(role: str = "viewer", workspace: str = "acme") -> Client:
        client = Client()
        client.force_login(member(role, workspace))
        return client

    return make


# --- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"chromium not found at {CHROMIUM} (CI must run the browser tests)")
        pytest.skip(f"chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


_A11Y_SCRIPT = """() => {
  const problems = [];
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden" || el.type === "submit" || !visible(el)) continue;
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby");
    if (!named) problems.push(`unlabelled ${el.tagName.toLowerCase()} name=${el.name}`);
  }
  for (const el of document.querySelectorAll("[role=img]")) {
    if (!el.getAttribute("aria-label")) problems.push("unnamed image " + el.id);
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    // Plotly's own toolbar (shown on hover) names its buttons with data-title tooltips.
    if (el.closest(".modebar")) continue;
    if (visible(el) && !el.textContent.trim() && !el.getAttribute("aria-label") && !el.title)
      problems.push("control without a name: " + el.outerHTML.slice(0, 80));
  }
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(`${h1} h1 elements`);
  return problems;
}"""


class Tab:
    """A browser page with what went wrong on it: console errors, uncaught exceptions, failed or
    4xx/5xx requests (expected ones are declared with ``allow``)."""

    def __init__(self, page: Any, base_url: str, test_name: str) -> None:
        self.page, self.base_url, self.test_name = page, base_url, test_name
        self.problems: list[str] = []
        self.allowed: list[re.Pattern[str]] = []
        self.shots = 0
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", lambda req: self.problems.append(f"failed: {req.url} {req.failure}"))
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        # Chromium also logs an allowed error response (a 422 form page) as "Failed to load resource".
        url = (message.location or {}).get("url", "")
        if message.text.startswith("Failed to load resource") and any(p.search(url) for p in self.allowed):
            return
        self.problems.append(f"console: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400 and not any(p.search(response.url) for p in self.allowed):
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def allow(self, url_pattern: str) -> None:
        """An error response the test expects (say, the 403 a viewer gets)."""
        self.allowed.append(re.compile(url_pattern))

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.base_url + path)
        self.page.wait_for_load_state("networkidle")
        return response

    def accessibility_problems(self) -> list[str]:
        """What a screen-reader or keyboard user would trip over on the current page: form fields
        without a label, images of charts without a name, more or fewer than one h1."""
        return self.page.evaluate(_A11Y_SCRIPT)

    def screenshot(self, name: str = "") -> None:
        self.shots += 1
        label = re.sub(r"[^A-Za-z0-9_-]+", "-", name or f"{self.test_name}-{self.shots}")
        self.page.screenshot(path=str(SCREENSHOTS / f"{label}.png"), full_page=True)


@pytest.fixture
def tab_as(
    browser: Any, live_server: Any, member: Callable[..., Any], request: pytest.FixtureRequest
) -> Iterator[Callable[..., Tab]]:
    """``tab_as("editor", "acme")``: a browser tab signed in (by session cookie) as such a member."""
    tabs: list[Tab] = []
    contexts: list[Any] = []

    def make(
        role: str = "viewer", workspace: str = "acme", *, user: Any = None, color_scheme: str = "light"
    ) -> Tab:
        client = Client()
        client.force_login(user or member(role, workspace))
        cookie = client.cookies["sessionid"]
        context = browser.new_context(viewport={"width": 1360, "height": 900}, color_scheme=color_scheme)
        context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])
        contexts.append(context)
        tab = Tab(context.new_page(), live_server.url, request.node.name)
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        if not tab.page.url.startswith("about:"):
            tab.problems += [f"a11y: {problem} ({tab.page.url})" for problem in tab.accessibility_problems()]
        if not tab.shots:
            tab.screenshot()
    for context in contexts:
        context.close()
    problems = [problem for tab in tabs for problem in tab.problems]
    assert not problems, "browser problems:\n" + "\n".join(problems)
