"""``promptmetrics-server`` from an empty directory: migrates, bootstraps a key, serves."""

from __future__ import annotations

import pytest

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
