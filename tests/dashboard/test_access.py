"""Signing in and out, the workspace switcher and roles: the base every dashboard page stands on."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from dashboard.staticfiles import PLOTLY_JS, PlotlyFinder

pytestmark = pytest.mark.django_db


def test_an_anonymous_visitor_is_sent_to_the_login_page() -> None:
    response = Client().get("/logs?model=gpt")
    assert response.status_code == 302
    assert response["Location"] == "/login?next=/logs%3Fmodel%3Dgpt"


def test_login_with_the_right_password_lands_on_the_overview(member) -> None:
    member("viewer", "acme", username="ada")
    client = Client()
    page = client.get("/login")
    assert page.status_code == 200
    assert b'<label for="id_username">Username</label>' in page.content
    response = client.post("/login", {"username": "ada", "password": "pw-for-tests-only"})
    assert response.status_code == 302 and response["Location"] == "/"
    overview = client.get("/")
    assert overview.status_code == 200
    assert b"<h1>Overview</h1>" in overview.content


def test_login_with_a_wrong_password_says_so_and_signs_nobody_in(member) -> None:
    member("viewer", "acme", username="ada")
    client = Client()
    response = client.post("/login", {"username": "ada", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content
    assert client.get("/").status_code == 302


def test_logout_ends_the_session(client_as) -> None:
    client = client_as("viewer", "acme")
    assert client.get("/").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 302 and response["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_a_user_without_a_workspace_is_told_so(db) -> None:
    user = get_user_model().objects.create_user(username="loner", password="x")
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 403
    assert b"not a member of any workspace" in response.content


def test_the_switcher_lists_only_the_users_workspaces_and_switches(member, workspace) -> None:
    workspace("gamma")
    user = member("viewer", "acme", username="ada")
    member("editor", "beta", username="ada")
    client = Client()
    client.force_login(user)
    page = client.get("/").content.decode()
    assert 'value="acme" selected' in page and 'value="beta"' in page
    assert 'value="gamma"' not in page
    response = client.post("/workspace", {"workspace": "beta", "next": "/logs"})
    assert response.status_code == 302 and response["Location"] == "/logs"
    page = client.get("/").content.decode()
    assert 'value="beta" selected' in page
    assert '<span class="role">editor</span>' in page


def test_switching_to_a_workspace_one_is_not_a_member_of_changes_nothing(member, workspace) -> None:
    workspace("secret")
    client = Client()
    client.force_login(member("viewer", "acme"))
    response = client.post("/workspace", {"workspace": "secret", "next": "/"}, follow=True)
    page = response.content.decode()
    assert "You are not a member of that workspace." in page
    assert 'value="acme" selected' in page and 'value="secret"' not in page


def test_the_switcher_never_redirects_off_site(client_as) -> None:
    client = client_as("viewer", "acme")
    response = client.post("/workspace", {"workspace": "acme", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_a_superuser_sees_every_workspace_as_an_admin(workspace) -> None:
    workspace("acme")
    workspace("beta")
    root = get_user_model().objects.create_superuser(username="root", password="x")
    client = Client()
    client.force_login(root)
    page = client.get("/").content.decode()
    assert 'value="acme"' in page and 'value="beta"' in page
    assert '<span class="role">admin</span>' in page


def test_a_viewer_may_not_change_anything(client_as) -> None:
    response = client_as("viewer", "acme").post("/")
    assert response.status_code == 403
    assert b"This needs the <strong>Editor</strong> role" in response.content


def test_posting_without_a_csrf_token_is_refused(member) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(member("admin", "acme"))
    assert client.post("/workspace", {"workspace": "acme"}).status_code == 403


def test_plotly_js_comes_from_the_plotly_package(settings, tmp_path: Path) -> None:
    found = PlotlyFinder().find(PLOTLY_JS)
    assert found.endswith("plotly/package_data/plotly.min.js")
    assert PlotlyFinder().find("vendor/other.js") == ""
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", interactive=False, verbosity=0)
    collected = tmp_path / "vendor" / "plotly.min.js"
    assert collected.read_bytes()[:200] == Path(found).read_bytes()[:200]
    assert (tmp_path / "dashboard" / "app.css").is_file()


def test_pages_load_plotly_only_where_there_is_a_chart(client_as) -> None:
    client = client_as("viewer", "acme")
    assert b"vendor/plotly.min.js" in client.get("/").content
    assert b"vendor/plotly.min.js" not in client.get("/login").content
