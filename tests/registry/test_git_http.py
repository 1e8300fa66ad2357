"""Read-only Git smart HTTP: ``git clone http://x:KEY@host/git/{workspace}.git``.

The live tests drive the real ``git`` command line against a real ``promptmetrics-server``
(gunicorn, the WSGI wrapper, the middleware); versions are written into the server's Git root with
the same GitStore the server uses. The in-process tests cover the edges git itself rarely sends
(gzip bombs, bad content types, rate limiting).
"""

from __future__ import annotations

import base64
import gzip
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from dulwich.repo import Repo

from registry.drivers.git import GitStore
from registry.storage import get_store
from tests.live_server import LiveServer, ServerFactory, service_required

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="the git command line is not installed")
UPLOAD_PACK_REQUEST = "application/x-git-upload-pack-request"


# -- helpers ---------------------------------------------------------------------------------------


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git with no user or system configuration and no way to prompt for credentials."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd or Path.cwd()),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "LC_ALL": "C",
    }
    command = [str(GIT), "-c", "credential.helper=", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    result = subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def repo_url(server: LiveServer, workspace: str, key: str | None) -> str:
    host = server.url.removeprefix("http://")
    auth = f"x:{key}@" if key is not None else ""
    return f"http://{auth}{host}/git/{workspace}.git"


def bare_commits(store: GitStore, workspace: str) -> list[str]:
    """``git log --format=%H main`` of the server's own repository."""
    out = git("--git-dir", str(store.repo_path(workspace)), "log", "--format=%H", "main").stdout
    return out.split()


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*.json"))
        if ".git" not in p.relative_to(root).parts
    }


def document(name: str, version: str) -> bytes:
    return f'{{"name": "{name}", "version": "{version}"}}\n'.encode()


# -- the live server ---------------------------------------------------------------------------------


class Site:
    """One server for the module, a Git root the tests write versions into, and key minting."""

    def __init__(self, server: LiveServer, store: GitStore) -> None:
        self.server = server
        self.store = store

    def workspace(self) -> str:
        workspace_id = f"ws-{uuid.uuid4().hex[:10]}"
        created = self.server.request(
            "POST", "/v1/workspaces", key=self.server.admin_key, body={"id": workspace_id}
        )
        assert created.status == 201, created.body
        return workspace_id

    def key(self, workspace: str, scopes: str = "read") -> str:
        created = self.server.request(
            "POST",
            "/v1/api-keys",
            key=self.server.admin_key,
            body={"name": f"git-{uuid.uuid4().hex[:8]}", "scopes": scopes, "workspace_id": workspace},
        )
        assert created.status == 201, created.body
        return created.json()["key"]

    def put(self, workspace: str, name: str, version: str) -> None:
        self.store.put(
            workspace_id=workspace, name=name, version=version, content=document(name, version), author="t"
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if os.environ.get("DATABASE_URL"):
        service_required("postgres", os.environ["DATABASE_URL"])
    base = tmp_path_factory.mktemp("git-http")
    git_root = base / "git"
    factory = ServerFactory(base)
    env = {"GIT_ROOT": str(git_root), "CACHE_KEY_PREFIX": f"pm-test-{uuid.uuid4().hex}"}
    try:
        yield Site(factory.start(env=env, workers=2), GitStore(git_root))
    finally:
        factory.close()


# -- clone, fetch, pull --------------------------------------------------------------------------------


@pytest.mark.live
@needs_git
def test_clone_has_every_version_tag_and_commit_and_fetch_gets_new_ones(site: Site, tmp_path: Path) -> None:
    ws = site.workspace()
    key = site.key(ws)
    # Enough tags that git's want list passes 1 KiB, above which git gzips the request body.
    expected_tags = []
    for i in range(30):
        name = "greeting" if i % 2 else "summary"
        version = f"1.{i}.0"
        site.put(ws, name, version)
        expected_tags.append(f"prompts/{name}/{version}")

    git("clone", repo_url(site.server, ws, key), "clone", cwd=tmp_path)
    clone = tmp_path / "clone"

    assert files_under(clone) == {
        f"prompts/{tag.split('/')[1]}/{tag.split('/')[2]}.json": document(
            tag.split("/")[1], tag.split("/")[2]
        )
        for tag in expected_tags
    }
    assert git("tag", "-l", cwd=clone).stdout.split() == sorted(expected_tags)
    assert git("log", "--format=%H", "main", cwd=clone).stdout.split() == bare_commits(site.store, ws)
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=clone).stdout.strip() == "main"
    # Annotated tags arrive as tag objects that peel to the commit of their version.
    tag = "prompts/summary/1.0.0"
    assert git("cat-file", "-t", tag, cwd=clone).stdout.strip() == "tag"
    with Repo(str(site.store.repo_path(ws))) as bare:
        assert git("rev-parse", f"{tag}^{{commit}}", cwd=clone).stdout.strip() == (
            bare.get_peeled(f"refs/tags/{tag}".encode()).decode()
        )

    site.put(ws, "greeting", "2.0.0")
    git("fetch", cwd=clone)
    assert "prompts/greeting/2.0.0" in git("tag", "-l", cwd=clone).stdout.split()
    assert git("rev-parse", "origin/main", cwd=clone).stdout.strip() == bare_commits(site.store, ws)[0]

    site.put(ws, "greeting", "2.1.0")
    git("pull", "--ff-only", cwd=clone)
    assert (clone / "prompts/greeting/2.1.0.json").read_bytes() == document("greeting", "2.1.0")
    assert git("log", "--format=%H", "main", cwd=clone).stdout.split() == bare_commits(site.store, ws)
    assert git("tag", "-l", cwd=clone).stdout.split() == sorted(
        [*expected_tags, "prompts/greeting/2.0.0", "prompts/greeting/2.1.0"]
    )


@pytest.mark.live
@needs_git
def test_every_protocol_version_ls_remote_and_shallow_clone(site: Site, tmp_path: Path) -> None:
    ws = site.workspace()
    key = site.key(ws, "read,write")
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        site.put(ws, "p", version)
    url = repo_url(site.server, ws, key)
    head = bare_commits(site.store, ws)[0]

    # git 2.39 asks for protocol v2 (Git-Protocol: version=2); the server answers v0, which git accepts.
    for protocol in ("0", "1", "2"):
        listed = git("-c", f"protocol.version={protocol}", "ls-remote", url, cwd=tmp_path).stdout
        refs = dict(line.split("\t")[::-1] for line in listed.splitlines())
        assert refs["refs/heads/main"] == head
        assert refs["HEAD"] == head
        assert {"refs/tags/prompts/p/1.0.0", "refs/tags/prompts/p/1.0.0^{}"} <= refs.keys()

    git("clone", "--depth", "1", url, "shallow", cwd=tmp_path)
    assert git("rev-list", "--count", "HEAD", cwd=tmp_path / "shallow").stdout.strip() == "1"
    assert len(files_under(tmp_path / "shallow")) == 3


@pytest.mark.live
@needs_git
def test_a_workspace_without_versions_clones_as_an_empty_repository(site: Site, tmp_path: Path) -> None:
    ws = site.workspace()
    key = site.key(ws)

    cloned = git("clone", repo_url(site.server, ws, key), "empty", cwd=tmp_path)
    assert "cloned an empty repository" in cloned.stderr

    site.put(ws, "first", "1.0.0")
    git("pull", "origin", "main", cwd=tmp_path / "empty")
    assert files_under(tmp_path / "empty") == {"prompts/first/1.0.0.json": document("first", "1.0.0")}


@pytest.mark.live
@needs_git
def test_a_master_key_reads_any_existing_workspace(site: Site, tmp_path: Path) -> None:
    ws = site.workspace()
    site.put(ws, "p", "1.0.0")
    git("clone", repo_url(site.server, ws, site.server.admin_key), "m", cwd=tmp_path)
    assert files_under(tmp_path / "m") == {"prompts/p/1.0.0.json": document("p", "1.0.0")}

    missing = git(
        "clone", repo_url(site.server, "no-such-ws", site.server.admin_key), "x", cwd=tmp_path, check=False
    )
    assert missing.returncode != 0
    assert "not found" in missing.stderr


# -- refusals ----------------------------------------------------------------------------------------


def _info_refs(site: Site, workspace: str, key: str | None, **headers: str) -> Any:
    if key is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"x:{key}".encode()).decode()
    return site.server.request(
        "GET", f"/git/{workspace}.git/info/refs?service=git-upload-pack", headers=headers
    )


@pytest.mark.live
@needs_git
def test_clone_is_refused_without_a_valid_readable_key_of_the_workspace(site: Site, tmp_path: Path) -> None:
    ws = site.workspace()
    other = site.workspace()
    site.put(ws, "p", "1.0.0")
    url_with = {
        "none": repo_url(site.server, ws, None),
        "wrong": repo_url(site.server, ws, "pm_" + "0" * 64),
        "other": repo_url(site.server, ws, site.key(other)),
        "ingest": repo_url(site.server, ws, site.key(ws, "ingest")),
        "admin-only": repo_url(site.server, ws, site.key(ws, "admin")),
    }
    for case, url in url_with.items():
        result = git("clone", url, case, cwd=tmp_path, check=False)
        assert result.returncode != 0, case
        assert not (tmp_path / case).exists(), case
    stderr = {case: git("ls-remote", url, cwd=tmp_path, check=False).stderr for case, url in url_with.items()}
    # The 401 challenge makes git ask for credentials (refused here: no terminal, no helper).
    assert "could not read Username" in stderr["none"]
    assert "Authentication failed" in stderr["wrong"]
    assert "not found" in stderr["other"]
    assert "Missing required scope: read" in stderr["ingest"]
    assert "Missing required scope: read" in stderr["admin-only"]

    # What those are on the wire, for clients other than git: JSON, 401 with a Basic challenge.
    anonymous = _info_refs(site, ws, None)
    assert anonymous.status == 401
    assert anonymous.headers["www-authenticate"] == 'Basic realm="promptmetrics"'
    assert anonymous.json()["code"] == "UNAUTHORIZED"
    assert _info_refs(site, ws, "pm_" + "0" * 64).status == 401
    foreign = _info_refs(site, ws, site.key(other))
    assert (foreign.status, foreign.json()["code"]) == (404, "NOT_FOUND")
    # Another workspace's repository and a missing one look the same.
    assert foreign.json()["error"] == f"Repository {ws}.git not found"
    assert _info_refs(site, "nope", site.key(other)).json()["error"] == "Repository nope.git not found"
    assert _info_refs(site, ws, site.key(ws, "ingest")).status == 403
    assert _info_refs(site, ws, site.key(ws)).status == 200


@pytest.mark.live
@needs_git
def test_push_is_refused_with_a_clear_message(site: Site, tmp_path: Path) -> None:
    ws = site.workspace()
    site.put(ws, "p", "1.0.0")
    key = site.key(ws, "read,write,admin")
    git("clone", repo_url(site.server, ws, key), "c", cwd=tmp_path)
    clone = tmp_path / "c"
    (clone / "prompts/p/9.9.9.json").write_text("{}")
    git("add", ".", cwd=clone)
    git("commit", "-m", "sneaky", cwd=clone)

    pushed = git("push", "origin", "main", cwd=clone, check=False)
    assert pushed.returncode != 0
    assert "read-only" in pushed.stderr
    assert len(bare_commits(site.store, ws)) == 1

    auth = {"Authorization": "Basic " + base64.b64encode(f"x:{key}".encode()).decode()}
    for method, path in [
        ("GET", f"/git/{ws}.git/info/refs?service=git-receive-pack"),
        ("POST", f"/git/{ws}.git/git-receive-pack"),
    ]:
        refused = site.server.request(method, path, headers=auth, body=b"" if method == "POST" else None)
        assert refused.status == 403, path
        assert refused.json()["code"] == "FORBIDDEN"
        assert "read-only" in refused.json()["error"]


@pytest.mark.live
def test_dumb_http_traversal_and_unknown_paths_are_json_404s(site: Site) -> None:
    ws = site.workspace()
    site.put(ws, "p", "1.0.0")
    auth = {"Authorization": "Basic " + base64.b64encode(f"x:{site.key(ws)}".encode()).decode()}
    for path in [
        f"/git/{ws}.git/info/refs",  # dumb HTTP
        f"/git/{ws}.git/HEAD",
        f"/git/{ws}.git/objects/info/packs",
        f"/git/{ws}.git/config",
        f"/git/{ws}.git/git-upload-pack",  # GET of the POST-only service
        f"/git/{ws}.git/info/refs?service=git-upload-archive",
        f"/git/{ws}.git/../../etc/passwd",
        "/git/../x.git/info/refs?service=git-upload-pack",
        f"/git/..%2F{ws}.git/info/refs?service=git-upload-pack",
        "/git/a%2Fb.git/info/refs?service=git-upload-pack",
        "/git/%2e%2e.git/info/refs?service=git-upload-pack",
        f"/git/{ws}/info/refs?service=git-upload-pack",
        "/git/",
    ]:
        response = site.server.request("GET", path, headers=auth)
        assert response.status == 404, path
        assert response.headers["content-type"] == "application/json", path
        assert response.json()["code"] == "NOT_FOUND", path


# -- in-process edge cases -------------------------------------------------------------------------------


def _auth(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"anyone:{key}".encode()).decode()}


def _pkt(line: bytes) -> bytes:
    return f"{len(line) + 4:04x}".encode() + line


def _upload_request(want: str) -> bytes:
    return _pkt(f"want {want} side-band-64k thin-pack ofs-delta\n".encode()) + b"0000" + _pkt(b"done\n")


@pytest.fixture
def readable(make_key: Callable[..., Any]) -> tuple[str, str, str]:
    """(workspace, read key, head commit) of a workspace with one stored version."""
    get_store().put(workspace_id="acme", name="p", version="1.0.0", content=b"{}", author="t")
    _, key = make_key("read", workspace="acme")
    with Repo(str(get_store().repo_path("acme"))) as repo:  # type: ignore[attr-defined]
        head = repo.refs[b"refs/heads/main"].decode()
    return "acme", key, head


@pytest.mark.django_db
def test_a_gzip_request_body_is_inflated(readable: tuple[str, str, str]) -> None:
    ws, key, head = readable
    response = Client().post(
        f"/git/{ws}.git/git-upload-pack",
        data=gzip.compress(_upload_request(head)),
        content_type=UPLOAD_PACK_REQUEST,
        HTTP_CONTENT_ENCODING="gzip",
        **_auth(key),
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-git-upload-pack-result"
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body)
    assert body.startswith(b"0008NAK\n")
    assert b"PACK" in body


@pytest.mark.django_db
def test_bad_bodies_are_client_errors(readable: tuple[str, str, str]) -> None:
    ws, key, head = readable
    url = f"/git/{ws}.git/git-upload-pack"
    client = Client()

    def post(data: bytes, content_type: str = UPLOAD_PACK_REQUEST, **extra: str) -> Any:
        return client.post(url, data=data, content_type=content_type, **_auth(key), **extra)

    bomb = gzip.compress(b"0" * (65 * 1024 * 1024))
    assert len(bomb) < 100_000
    cases = [
        (post(bomb, HTTP_CONTENT_ENCODING="gzip"), 413),
        (post(b"not gzip", HTTP_CONTENT_ENCODING="gzip"), 400),
        (post(gzip.compress(_upload_request(head))[:-8], HTTP_CONTENT_ENCODING="gzip"), 400),
        (post(_upload_request(head), HTTP_CONTENT_ENCODING="br"), 415),
        (post(_upload_request(head), content_type="application/x-www-form-urlencoded"), 415),
        (post(_pkt(b"want " + b"1" * 40 + b"\n") + b"0000"), 400),
        (post(b"garbage"), 400),
    ]
    for response, status in cases:
        assert response.status_code == status, response.content
        assert response["Content-Type"] == "application/json"
    # git clients get the message as plain text, which git prints as "remote: ...".
    as_git = post(b"garbage", HTTP_USER_AGENT="git/2.39.5")
    assert as_git.status_code == 400
    assert as_git["Content-Type"].startswith("text/plain")
    assert as_git.content.startswith(b"Git protocol error")


@pytest.mark.django_db
def test_the_per_key_rate_limit_applies(
    settings: Any, tmp_path: Path, readable: tuple[str, str, str]
) -> None:
    settings.RATE_LIMIT_DIR = tmp_path
    settings.RATE_LIMIT_MAX_REQUESTS = 2
    ws, key, _ = readable
    url = f"/git/{ws}.git/info/refs?service=git-upload-pack"
    statuses = [Client().get(url, **_auth(key)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = Client().get(url, **_auth(key))
    assert limited["Retry-After"]
    assert limited.json()["code"] == "RATE_LIMIT_EXCEEDED"


@pytest.mark.django_db
def test_expired_and_malformed_credentials_are_challenged(
    make_key: Callable[..., Any], readable: tuple[str, str, str]
) -> None:
    from datetime import UTC, datetime, timedelta

    ws, _, _ = readable
    _, expired = make_key("read", workspace=ws, expires_at=datetime.now(UTC) - timedelta(days=1))
    url = f"/git/{ws}.git/info/refs?service=git-upload-pack"
    for headers in [
        _auth(expired),
        {"HTTP_AUTHORIZATION": "Basic !!!"},
        {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"HTTP_AUTHORIZATION": "Bearer x"},
        {"HTTP_X_API_KEY": expired},
    ]:
        response = Client().get(url, **headers)
        assert response.status_code == 401, headers
        assert response["WWW-Authenticate"] == 'Basic realm="promptmetrics"'


@pytest.mark.django_db
def test_the_s3_driver_has_no_git_endpoint(settings: Any, readable: tuple[str, str, str]) -> None:
    ws, key, _ = readable
    get_store.cache_clear()
    settings.DRIVER = "s3"
    settings.S3_BUCKET = "unused"
    response = Client().get(f"/git/{ws}.git/info/refs?service=git-upload-pack", **_auth(key))
    assert response.status_code == 404
    assert "DRIVER=git" in response.json()["error"]
