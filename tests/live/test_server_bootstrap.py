"""``promptmetrics-server`` from an empty directory: migrates, bootstraps a key, serves."""

from __future__ import annotations

import subprocess

import pytest

from tests.live_server import KEY_RE, SERVER_BIN

pytestmark = pytest.mark.live


def test_it_starts_in_an_empty_directory_and_serves_the_bootstrap_key(live_servers):
    server = live_servers.start()

    assert server.request("GET", "/health").json() == {"status": "ok"}
    assert server.admin_key.startswith("pm_") and len(server.admin_key) == 67
    me = server.request("GET", "/v1/api-keys/me", key=server.admin_key)
    assert me.status == 200
    assert me.json() == {
        "id": me.json()["id"],
        "name": "bootstrap-admin",
        "scopes": "read,write,admin",
        "workspace_id": "*",
        "expires_at": None,
    }
    assert (server.workdir / "data").is_dir()
    assert server.stop() == 0


def test_it_prints_the_bootstrap_key_only_on_first_start(live_servers):
    server = live_servers.start()
    first_key = server.admin_key
    server.stop()

    again = live_servers.start(workdir=server.workdir)
    assert first_key not in again.log()
    assert again.request("GET", "/v1/api-keys/me", key=first_key).status == 200


def test_an_operator_supplied_admin_key_is_registered(live_servers):
    given = "pm_" + "ab" * 32
    server = live_servers.start(env={"PROMPTMETRICS_ADMIN_KEY": given})

    assert given not in server.log()
    me = server.request("GET", "/v1/api-keys/me", key=given, workspace="brand-new")
    assert me.status == 200
    assert me.json()["workspace_id"] == "*"
    # The master key named a workspace that did not exist: it now does.
    workspaces = server.request("GET", "/v1/workspaces", key=given).json()["items"]
    assert {"default", "brand-new"} <= {w["id"] for w in workspaces}


def test_sigterm_shuts_down_cleanly(live_servers):
    server = live_servers.start()
    assert server.request("GET", "/health").status == 200
    assert server.stop() == 0
    assert "Shutting down" in server.log()


def _manage(server, *args: str, entry: str = "promptmetrics-manage") -> subprocess.CompletedProcess[str]:
    """Run a management command the way an operator of an installed server does (no checkout)."""
    binary = str(SERVER_BIN.with_name(entry))
    command = [binary, *args] if entry == "promptmetrics-manage" else [binary, "manage", *args]
    return subprocess.run(
        command, cwd=server.workdir, env=server.env, capture_output=True, text=True, timeout=60
    )


def test_operators_manage_an_installed_server_from_its_directory(live_servers):
    server = live_servers.start(
        env={"PROMPTMETRICS_ADMIN_USER": "ops", "PROMPTMETRICS_ADMIN_PASSWORD": "correct-horse-battery"}
    )
    assert "Created dashboard superuser 'ops'" in server.log()

    created = _manage(server, "create_workspace", "acme")
    assert created.returncode == 0, created.stderr
    minted = _manage(
        server,
        "create_api_key",
        "--name",
        "ci",
        "--scopes",
        "read",
        "--workspace",
        "acme",
        entry="promptmetrics-server",
    )
    assert minted.returncode == 0, minted.stderr
    key = minted.stdout.strip()
    assert KEY_RE.fullmatch(key)
    assert server.request("GET", "/v1/api-keys/me", key=key, workspace="acme").json()["scopes"] == "read"

    listed = _manage(server, "list_api_keys")
    assert "ci" in listed.stdout and key not in listed.stdout
    key_id = server.request("GET", "/v1/api-keys/me", key=key, workspace="acme").json()["id"]
    assert _manage(server, "revoke_api_key", str(key_id)).returncode == 0
    assert server.request("GET", "/v1/api-keys/me", key=key, workspace="acme").status == 401

    login_page = server.request("GET", "/admin/login/")
    assert login_page.status == 200 and b"csrfmiddlewaretoken" in login_page.body


def test_the_installed_server_serves_the_dashboard_and_its_collected_static_files(live_servers):
    from dashboard.staticfiles import PlotlyFinder

    server = live_servers.start()
    page = server.request("GET", "/")  # urllib follows the redirect to the sign-in page
    assert page.status == 200 and b'<form method="post" action="/login">' in page.body
    plotly = server.request("GET", "/static/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert plotly.status == 200 and plotly.headers["content-encoding"] == "gzip"
    plain = server.request("GET", "/static/vendor/plotly.min.js")
    with open(PlotlyFinder().find("vendor/plotly.min.js"), "rb") as source:
        assert plain.body == source.read()
    assert server.request("GET", "/static/dashboard/app.css").status == 200
    assert server.stop() == 0
