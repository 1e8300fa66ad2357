"""The Git prompt store: one bare repository per workspace, one commit and one annotated tag per version.

Every repository is checked with dulwich and with the real ``git`` CLI (``git fsck``), including after
20 processes stored versions of the same prompt at once.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from dulwich.objects import Commit, Tag
from dulwich.refs import Ref
from dulwich.repo import Repo

from registry.drivers.git import GitStore
from registry.storage import StoredDifferently, StoredVersion, StoreError, get_store

HEX40 = re.compile(r"[0-9a-f]{40}")
DOC = b'{"name": "x", "version": "1.0.0", "messages": [{"role": "user", "content": "Hi {{who}}"}]}'


@pytest.fixture
def store(settings: Any) -> GitStore:
    return GitStore(settings.GIT_ROOT)


def git(repo: Path, *args: str) -> str:
    """Run the git CLI on a bare repository, isolated from the machine's Git configuration."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    result = subprocess.run(
        ["git", "--git-dir", str(repo), *args], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, f"git {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def assert_fsck_clean(repo: Path) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    result = subprocess.run(
        ["git", "--git-dir", str(repo), "fsck", "--strict", "--no-dangling"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stderr.lower() and "warning" not in result.stderr.lower(), result.stderr


def main_history(repo: Path) -> list[str]:
    """Commits of main, newest first."""
    return git(repo, "log", "--format=%H", "main").split()


def put(
    store: GitStore,
    version: str,
    content: bytes = DOC,
    *,
    workspace_id: str = "acme",
    name: str = "x",
    author: str = "alice",
) -> StoredVersion:
    return store.put(workspace_id=workspace_id, name=name, version=version, content=content, author=author)


# -- put / get --------------------------------------------------------------------------------------


def test_get_store_is_the_git_driver(settings: Any) -> None:
    store = get_store()
    assert isinstance(store, GitStore)
    assert store.driver == "git"
    assert store.describe() == {"driver": "git", "location": str(settings.GIT_ROOT)}


def test_put_then_get_returns_the_bytes_with_commit_and_annotated_tag(store: GitStore) -> None:
    record = put(store, "1.0.0")

    assert HEX40.fullmatch(record.commit_sha or "")
    assert record.tag == "prompts/x/1.0.0"
    stored = store.get(workspace_id="acme", name="x", version="1.0.0")
    assert stored is not None
    assert stored.content == DOC
    assert stored.record == record

    assert record.commit_sha is not None
    repo_path = store.repo_path("acme")
    assert repo_path == store.root / "acme.git"
    with Repo(str(repo_path)) as repo:
        assert repo.bare
        assert repo.refs.read_ref(Ref(b"HEAD")) == b"ref: refs/heads/main"
        assert repo.refs[Ref(b"refs/heads/main")].decode() == record.commit_sha
        tag = repo[repo.refs[Ref(b"refs/tags/prompts/x/1.0.0")]]
        assert isinstance(tag, Tag)
        assert tag.name == b"prompts/x/1.0.0"
        assert tag.object == (Commit, record.commit_sha.encode())
        assert tag.message
        assert b"promptmetrics" in (repo.get_description() or b"").lower()

    assert main_history(repo_path) == [record.commit_sha]
    assert git(repo_path, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(repo_path, "cat-file", "-t", "refs/tags/prompts/x/1.0.0").strip() == "tag"
    assert git(repo_path, "rev-parse", "prompts/x/1.0.0^{commit}").strip() == record.commit_sha
    assert git(repo_path, "show", "main:prompts/x/1.0.0.json").encode() == DOC
    assert git(repo_path, "log", "-1", "--format=%an <%ae>|%s", "main").strip() == (
        "alice <alice@promptmetrics.invalid>|Add prompt x 1.0.0"
    )
    assert git(repo_path, "log", "-1", "--format=%ad", "--date=format:%z", "main").strip() == "+0000"
    assert_fsck_clean(repo_path)


def test_same_bytes_again_returns_the_same_record_without_a_new_commit(store: GitStore) -> None:
    first = put(store, "1.0.0")
    put(store, "1.1.0")

    again = put(store, "1.0.0", author="bob")

    assert again == first
    assert len(main_history(store.repo_path("acme"))) == 2


def test_different_bytes_for_a_stored_version_are_refused(store: GitStore) -> None:
    put(store, "1.0.0")
    head = main_history(store.repo_path("acme"))

    with pytest.raises(StoredDifferently):
        put(store, "1.0.0", content=DOC + b" ")

    assert issubclass(StoredDifferently, StoreError)
    assert main_history(store.repo_path("acme")) == head
    stored = store.get(workspace_id="acme", name="x", version="1.0.0")
    assert stored is not None and stored.content == DOC


def test_history_is_linear_and_keeps_every_file(store: GitStore) -> None:
    records = [put(store, f"1.{i}.0", content=b'{"i": %d}' % i, name=f"p{i % 3}") for i in range(7)]

    repo_path = store.repo_path("acme")
    history = main_history(repo_path)
    assert history == [r.commit_sha for r in reversed(records)]
    parents = git(repo_path, "log", "--format=%P", "main").splitlines()
    assert [len(p.split()) for p in parents] == [1] * 6 + [0]
    assert parents[:-1] == history[1:]
    files = git(repo_path, "ls-tree", "-r", "--name-only", "main").split()
    assert files == sorted(f"prompts/p{i % 3}/1.{i}.0.json" for i in range(7))
    for i, record in enumerate(records):
        stored = store.get(workspace_id="acme", name=f"p{i % 3}", version=f"1.{i}.0")
        assert stored is not None
        assert stored.content == b'{"i": %d}' % i
        assert stored.record == record
    assert_fsck_clean(repo_path)


def test_workspaces_have_separate_repositories(store: GitStore) -> None:
    a = put(store, "1.0.0", content=b'{"ws": "a"}', workspace_id="team-a")
    b = put(store, "1.0.0", content=b'{"ws": "b"}', workspace_id="team_b")

    assert store.repo_path("team-a") != store.repo_path("team_b")
    assert a.commit_sha != b.commit_sha
    stored_a = store.get(workspace_id="team-a", name="x", version="1.0.0")
    stored_b = store.get(workspace_id="team_b", name="x", version="1.0.0")
    assert stored_a is not None and stored_a.content == b'{"ws": "a"}'
    assert stored_b is not None and stored_b.content == b'{"ws": "b"}'
    assert main_history(store.repo_path("team-a")) == [a.commit_sha]
    assert main_history(store.repo_path("team_b")) == [b.commit_sha]


def test_get_of_unknown_workspace_or_version_is_none(store: GitStore) -> None:
    assert store.get(workspace_id="nobody", name="x", version="1.0.0") is None
    assert not store.repo_path("nobody").exists()
    put(store, "1.0.0")
    assert store.get(workspace_id="acme", name="x", version="2.0.0") is None
    assert store.get(workspace_id="acme", name="other", version="1.0.0") is None
    assert store.get(workspace_id="acme", name="../x", version="1.0.0") is None


@pytest.mark.parametrize("workspace_id", ["../x", "a/b", "", "a" * 129, "a.git", "x\n", "*"])
def test_bad_workspace_ids_are_refused(store: GitStore, workspace_id: str) -> None:
    with pytest.raises(ValueError):
        put(store, "1.0.0", workspace_id=workspace_id)
    with pytest.raises(ValueError):
        store.get(workspace_id=workspace_id, name="x", version="1.0.0")
    with pytest.raises(ValueError):
        store.versions(workspace_id)
    with pytest.raises(ValueError):
        store.repo_path(workspace_id)
    assert not store.root.exists() or list(store.root.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "version"),
    [("../x", "1.0.0"), ("a/b", "1.0.0"), ("", "1.0.0"), ("x", "../1"), ("x", "1.0.0-x.lock"), ("x", "")],
)
def test_names_that_git_cannot_hold_are_refused(store: GitStore, name: str, version: str) -> None:
    with pytest.raises(ValueError):
        put(store, version, name=name)


def test_semver_prerelease_and_build_metadata_are_stored(store: GitStore) -> None:
    record = put(store, "1.0.0-rc.1+build.5")

    assert record.tag == "prompts/x/1.0.0-rc.1+build.5"
    stored = store.get(workspace_id="acme", name="x", version="1.0.0-rc.1+build.5")
    assert stored is not None and stored.record == record
    assert_fsck_clean(store.repo_path("acme"))


def test_author_is_sanitised_into_a_valid_identity(store: GitStore) -> None:
    put(store, "1.0.0", author="Eve <eve@evil>\nInjected: yes")
    put(store, "1.1.0", author="")

    repo_path = store.repo_path("acme")
    identities = git(repo_path, "log", "--format=%an|%ae|%cn|%ce", "main").splitlines()
    assert identities == [
        "promptmetrics|promptmetrics@promptmetrics.invalid|promptmetrics|promptmetrics@promptmetrics.invalid",
        "Eve eve@evil Injected: yes|eve-eve-evil-injected-yes@promptmetrics.invalid|"
        "Eve eve@evil Injected: yes|eve-eve-evil-injected-yes@promptmetrics.invalid",
    ]
    assert_fsck_clean(repo_path)


def test_versions_lists_what_main_holds(store: GitStore) -> None:
    assert store.versions("acme") == []
    put(store, "1.0.0", name="b")
    put(store, "1.0.0", name="a")
    put(store, "2.0.0", name="a")

    assert store.versions("acme") == [("a", "1.0.0"), ("a", "2.0.0"), ("b", "1.0.0")]
    assert store.versions("elsewhere") == []


def test_a_missing_tag_falls_back_to_main_and_a_retry_restores_it(store: GitStore) -> None:
    """A crash between moving main and writing the tag ref leaves the document on main, untagged."""
    first = put(store, "1.0.0")
    put(store, "1.1.0")
    repo_path = store.repo_path("acme")
    (repo_path / "refs" / "tags" / "prompts" / "x" / "1.0.0").unlink()

    stored = store.get(workspace_id="acme", name="x", version="1.0.0")
    assert stored is not None and stored.content == DOC
    assert stored.record == StoredVersion(commit_sha=main_history(repo_path)[0])

    assert put(store, "1.0.0") == first
    assert git(repo_path, "rev-parse", "prompts/x/1.0.0^{commit}").strip() == first.commit_sha
    assert git(repo_path, "cat-file", "-t", "prompts/x/1.0.0").strip() == "tag"
    assert len(main_history(repo_path)) == 2
    assert_fsck_clean(repo_path)


def test_main_moved_by_someone_else_is_not_overwritten(store: GitStore, monkeypatch: Any) -> None:
    """The ref update is a compare-and-swap: a concurrent outside writer makes put fail, not fork."""
    put(store, "1.0.0")
    monkeypatch.setattr("dulwich.refs.DiskRefsContainer.set_if_equals", lambda *args, **kwargs: False)

    with pytest.raises(StoreError):
        put(store, "1.1.0")


def test_health_and_description(store: GitStore, tmp_path: Path) -> None:
    assert store.healthy()
    assert list(store.root.iterdir()) == []  # the probe cleans up after itself
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert not GitStore(blocked / "git").healthy()


def test_disk_errors_become_store_errors(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(StoreError):
        put(GitStore(blocked / "git"), "1.0.0")


# -- concurrency ------------------------------------------------------------------------------------


def _put_in_child(root: str, version: str, barrier: Any, results: Any) -> None:
    """Runs in a spawned process: no Django, only the store and a path."""
    barrier.wait(timeout=120)
    record = GitStore(root).put(
        workspace_id="acme", name="x", version=version, content=b'{"v": "%s"}' % version.encode(), author="p"
    )
    results.put((version, record.commit_sha))


def assert_concurrent_puts_landed(store: GitStore, shas: dict[str, str | None], n: int) -> None:
    repo_path = store.repo_path("acme")
    history = main_history(repo_path)
    assert len(history) == n
    assert sorted(history) == sorted(s for s in shas.values() if s)
    parents = git(repo_path, "log", "--format=%P", "main").splitlines()
    assert parents[:-1] == history[1:] and parents[-1] == ""
    tags = git(repo_path, "for-each-ref", "--format=%(objecttype) %(refname)", "refs/tags").splitlines()
    assert sorted(tags) == sorted(f"tag refs/tags/prompts/x/{v}" for v in shas)
    files = git(repo_path, "ls-tree", "-r", "--name-only", "main").split()
    assert sorted(files) == sorted(f"prompts/x/{v}.json" for v in shas)
    for version, sha in shas.items():
        assert git(repo_path, "rev-parse", f"prompts/x/{version}^{{commit}}").strip() == sha
        stored = store.get(workspace_id="acme", name="x", version=version)
        assert stored is not None and stored.content == b'{"v": "%s"}' % version.encode()
    assert_fsck_clean(repo_path)


def test_concurrent_puts_from_processes_stay_linear(store: GitStore) -> None:
    n = 20
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n)
    results = ctx.Queue()
    versions = [f"1.0.{i}" for i in range(n)]
    procs = [ctx.Process(target=_put_in_child, args=(str(store.root), v, barrier, results)) for v in versions]
    for proc in procs:
        proc.start()
    shas = dict(results.get(timeout=120) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0

    assert sorted(shas) == sorted(versions)
    assert_concurrent_puts_landed(store, shas, n)


def test_concurrent_puts_from_threads_stay_linear(store: GitStore) -> None:
    n = 20
    versions = [f"2.0.{i}" for i in range(n)]

    def one(version: str) -> tuple[str, str | None]:
        # A store per thread as well as a shared one: the lock must not depend on the instance.
        target = store if int(version.rsplit(".", 1)[1]) % 2 else GitStore(store.root)
        return version, put(target, version, content=b'{"v": "%s"}' % version.encode()).commit_sha

    with ThreadPoolExecutor(max_workers=n) as pool:
        shas = dict(pool.map(one, versions))

    assert_concurrent_puts_landed(store, shas, n)


def test_a_ref_lock_left_by_a_crashed_writer_does_not_block_later_writes(tmp_path):
    store = GitStore(tmp_path)
    store.put(workspace_id="ws", name="p", version="1.0.0", content=b"{}\n", author="a")
    # What a writer killed between creating and renaming the ref's lock file leaves behind.
    (store.repo_path("ws") / "refs" / "heads" / "main.lock").write_bytes(b"0" * 40 + b"\n")

    record = store.put(workspace_id="ws", name="p", version="1.1.0", content=b"{}\n", author="a")

    assert store.get(workspace_id="ws", name="p", version="1.1.0").record == record
    assert not (store.repo_path("ws") / "refs" / "heads" / "main.lock").exists()
