"""The registry under a real multi-worker server: concurrent version writes and label moves.

Versions of one prompt created at the same moment by different workers must each become exactly
one commit on a linear ``main``; a label moved through one server process must be what the other
process resolves on its very next request (no TTL window), through the shared generation file or
through Redis.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.live_server import LiveServer, Response, purge_redis_prefix

pytestmark = pytest.mark.live

CREATES = 20


def _document(version: str) -> dict[str, object]:
    return {
        "name": "welcome",
        "version": version,
        "messages": [{"role": "user", "content": f"Hello {{{{name}}}} from {version}"}],
    }


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={repo}", *args], check=True, capture_output=True, text=True
    ).stdout


def _create_concurrently(server: LiveServer, key: str, versions: list[str]) -> list[Response]:
    barrier = threading.Barrier(len(versions))

    def create(version: str) -> Response:
        barrier.wait(timeout=60)
        return server.request("POST", "/v1/prompts", key=key, body=_document(version), timeout=60)

    with ThreadPoolExecutor(max_workers=len(versions)) as pool:
        return list(pool.map(create, versions))


def test_concurrent_creates_become_one_commit_each_on_a_linear_history(live_servers):
    data_dir = live_servers.tmp_path / "data"
    server = live_servers.start(env={"DATA_DIR": str(data_dir), "THREADS": "4"}, workers=3)
    versions = [f"1.{minor}.0" for minor in range(CREATES)]

    responses = _create_concurrently(server, server.admin_key, versions)

    assert [r.status for r in responses] == [201] * CREATES, [r.body for r in responses]
    returned = {r.json()["version_tag"]: r.json()["commit_sha"] for r in responses}
    assert sorted(returned) == sorted(versions)
    repo = data_dir / "git" / "default.git"
    log = [line.split() for line in _git(repo, "log", "--format=%H %P", "main").splitlines()]
    assert len(log) == CREATES
    # Linear: every commit has exactly one parent, the next one down; the root has none.
    for (commit, *parents), (older, *_) in zip(log, log[1:], strict=False):
        assert parents == [older], f"{commit} is not a linear successor"
    assert log[-1][1:] == []
    assert {commit for commit, *_ in log} == set(returned.values())
    tags = _git(repo, "tag", "-l").split()
    assert sorted(tags) == sorted(f"prompts/welcome/{v}" for v in versions)
    for version, commit in returned.items():
        assert _git(repo, "rev-list", "-n", "1", f"prompts/welcome/{version}").strip() == commit
        assert _git(repo, "cat-file", "-t", f"refs/tags/prompts/welcome/{version}").strip() == "tag"
    tree = _git(repo, "ls-tree", "-r", "--name-only", "main").split()
    assert sorted(tree) == sorted(f"prompts/welcome/{v}.json" for v in versions)
    subprocess.run(["git", f"--git-dir={repo}", "fsck", "--strict"], check=True, capture_output=True)

    listed = server.request("GET", "/v1/prompts/welcome/versions?limit=100", key=server.admin_key).json()
    assert listed["total"] == CREATES
    assert sorted(item["version_tag"] for item in listed["items"]) == sorted(versions)
    latest = server.request("GET", "/v1/prompts/welcome?render=false", key=server.admin_key).json()
    assert latest["version"]["version_tag"] == f"1.{CREATES - 1}.0"


def test_the_same_version_created_concurrently_is_stored_once(live_servers):
    data_dir = live_servers.tmp_path / "data"
    server = live_servers.start(env={"DATA_DIR": str(data_dir), "THREADS": "4"}, workers=3)

    responses = _create_concurrently(server, server.admin_key, ["1.0.0"] * 8)

    statuses = sorted(r.status for r in responses)
    assert statuses == [201] + [409] * 7, [r.body for r in responses]
    assert _git(data_dir / "git" / "default.git", "rev-list", "--count", "main").strip() == "1"


def _label_moves_are_seen_at_once(a: LiveServer, b: LiveServer, key: str) -> None:
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        assert a.request("POST", "/v1/prompts", key=key, body=_document(version)).status == 201
    path = "/v1/prompts/welcome?label=production&variables[name]=Ada"
    for target in ("1.0.0", "1.1.0", "2.0.0", "1.0.0"):
        moved = a.request(
            "POST", "/v1/prompts/welcome/labels", key=key, body={"name": "production", "version_tag": target}
        )
        assert moved.status == 201, moved.body
        # Every worker of both servers, right away: several parallel reads per server.
        for server in (b, a):
            with ThreadPoolExecutor(max_workers=6) as pool:
                seen = list(pool.map(lambda _, s=server: s.request("GET", path, key=key), range(12)))
            assert {r.json()["version"]["version_tag"] for r in seen} == {target}
            assert {r.json()["content"]["messages"][0]["content"] for r in seen} == {
                f"Hello Ada from {target}"
            }
    assert b.request("DELETE", "/v1/prompts/welcome/labels/production", key=key).status == 204
    assert a.request("GET", path, key=key).status == 404
    # A new version is the new "latest" on the other server at once too.
    assert b.request("POST", "/v1/prompts", key=key, body=_document("2.1.0")).status == 201
    latest = a.request("GET", "/v1/prompts/welcome?render=false", key=key).json()
    assert latest["version"]["version_tag"] == "2.1.0"


def test_a_label_moved_on_one_server_is_resolved_by_the_other_at_once(live_servers):
    env = {"DATA_DIR": str(live_servers.tmp_path / "shared"), "REDIS_URL": ""}
    a = live_servers.start(env=env, workers=2)
    b = live_servers.start(env=env, workers=2)

    _label_moves_are_seen_at_once(a, b, a.admin_key)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"pm-test-{uuid.uuid4().hex}"
    yield prefix
    purge_redis_prefix(redis_url, prefix)


def test_a_label_moved_on_one_node_is_resolved_by_the_other_via_redis(live_servers, redis_url, redis_prefix):
    """Separate data directories (no shared generation file); the nodes share the database, Redis
    and, as a git-driver deployment would have to, the Git root."""
    env = {
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": redis_prefix,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "API_KEY_SALT": secrets.token_hex(32),
        "GIT_ROOT": str(live_servers.tmp_path / "git"),
    }
    if not os.environ.get("DATABASE_URL"):
        env["SQLITE_PATH"] = str(live_servers.tmp_path / "shared.db")
    a = live_servers.start(env={**env, "DATA_DIR": str(live_servers.tmp_path / "node-a")}, workers=2)
    b = live_servers.start(env={**env, "DATA_DIR": str(live_servers.tmp_path / "node-b")}, workers=2)

    _label_moves_are_seen_at_once(a, b, a.admin_key)


def _execute(server: LiveServer, data_dir: Path, statements: list[tuple[str, tuple[object, ...]]]) -> None:
    """Run SQL against the stopped server's database, as a crash would have left it."""
    database_url = server.env.get("DATABASE_URL")
    if database_url:
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            for sql, params in statements:
                conn.execute(sql.replace("?", "%s"), params)
        return
    import sqlite3

    with sqlite3.connect(data_dir / "promptmetrics.db") as conn:
        for sql, params in statements:
            conn.execute(sql, params)


def test_the_server_reconciles_versions_left_pending_by_a_crash_when_it_starts(live_servers):
    data_dir = live_servers.tmp_path / "data"
    workdir = live_servers.tmp_path / "server"
    env = {"DATA_DIR": str(data_dir), "PROMPTMETRICS_ADMIN_KEY": "pm_" + "ab" * 32}
    server = live_servers.start(env=env, workdir=workdir)
    key = server.admin_key
    assert server.request("POST", "/v1/prompts", key=key, body=_document("1.0.0")).status == 201
    assert server.request("POST", "/v1/prompts", key=key, body=_document("1.1.0")).status == 201
    assert server.stop() == 0
    # 1.1.0 reached Git but its row never became active; 2.0.0's row was committed, then the process
    # died before Git was written. Both an hour old, past any grace period.
    columns = "workspace_id, prompt_id, document, sha256, commit_sha, tag, driver, author, created_at"
    _execute(
        server,
        data_dir,
        [
            ("UPDATE registry_promptversion SET status = 'pending' WHERE version = ?", ("1.1.0",)),
            (
                f"INSERT INTO registry_promptversion (version, status, {columns}) "
                f"SELECT '2.0.0', 'pending', {columns} FROM registry_promptversion WHERE version = ?",
                ("1.0.0",),
            ),
            (
                "UPDATE registry_promptversion SET created_at = ? WHERE status = 'pending'",
                ("2020-01-01 00:00:00+00:00",),
            ),
        ],
    )

    restarted = live_servers.start(env=env, workdir=workdir)

    log = restarted.log()
    assert "Reconciled prompt version default/welcome@1.1.0: promoted." in log
    assert "Reconciled prompt version default/welcome@2.0.0: removed." in log
    latest = restarted.request("GET", "/v1/prompts/welcome?render=false", key=key).json()
    assert latest["version"]["version_tag"] == "1.1.0"
    versions = restarted.request("GET", "/v1/prompts/welcome/versions", key=key).json()
    assert sorted(v["version_tag"] for v in versions["items"]) == ["1.0.0", "1.1.0"]
