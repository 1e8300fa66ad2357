"""The default prompt store: one bare Git repository per workspace, written with dulwich.

Layout of ``{root}/{workspace_id}.git``: branch ``main`` holds every document at
``prompts/{name}/{version}.json``; each version adds exactly one commit (history stays linear) and an
annotated tag ``prompts/{name}/{version}`` pointing at that commit. Operators can ``git clone`` the
repository (read-only) to audit or back up every prompt ever stored.

Writers serialise per workspace with ``flock`` on ``{root}/{workspace_id}.lock`` (plus a thread lock,
for threads of one process): app nodes run several worker processes, and each put reads ``main``,
builds a commit on top of it and moves ``main``, which must not interleave. The lock file lives
outside the repository so that it is never cloned and never mistaken for one of Git's own locks.
Readers take no lock: objects and refs are written to a temporary file and renamed into place, so a
reader sees either the old or the new state, never half of one.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from dulwich.errors import (
    ChecksumMismatch,
    FileFormatException,
    NotGitRepository,
    ObjectMissing,
    RefFormatError,
    WrongObjectException,
)
from dulwich.file import FileLocked
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tag, Tree
from dulwich.refs import Ref, check_ref_format
from dulwich.repo import Repo

from registry.storage import StoredContent, StoredDifferently, StoredVersion, StoreError, prompt_path

WORKSPACE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
# Upstream's prompt-name rule; versions are SemVer strings, whose alphabet is a subset of this one.
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_VERSION_RE = re.compile(r"[A-Za-z0-9.+-]{1,128}")

MAIN = Ref(b"refs/heads/main")
_FILE_MODE = 0o100644
_DIR_MODE = stat.S_IFDIR
_LOCK_POLL_SECONDS = 0.01

# What dulwich raises when the disk or the repository fails; it has no common base class. A missing
# object surfaces as KeyError from the object store (our own lookups test membership first).
_GIT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    KeyError,
    FileLocked,
    ChecksumMismatch,
    WrongObjectException,
    ObjectMissing,
    NotGitRepository,
    FileFormatException,
    RefFormatError,
)


class _ThreadLocks:
    """One lock per lock file, shared by every GitStore of the process.

    ``flock`` already excludes other open file descriptions, even within one process; the thread lock
    keeps waiting threads off the polling loop below and makes the exclusion explicit.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # Also called in a forked child: a lock held by a parent thread at fork time would otherwise
        # stay held forever in the child, which has no thread to release it.
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


_thread_locks = _ThreadLocks()
_Obj = TypeVar("_Obj", bound=ShaFile)
os.register_at_fork(after_in_child=_thread_locks.reset)


class GitStore:
    """Prompt documents in bare Git repositories under ``root``, one per workspace."""

    driver = "git"

    def __init__(self, root: Path | str, *, lock_timeout: float = 30.0) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout

    # -- public interface -------------------------------------------------------------------------

    def repo_path(self, workspace_id: str) -> Path:
        """The bare repository of a workspace (it exists once the first version was stored)."""
        # Workspace ids are validated upstream; refusing here as well keeps a path like "../x" from
        # ever reaching the filesystem, whoever the caller is.
        if not isinstance(workspace_id, str) or not WORKSPACE_ID_RE.fullmatch(workspace_id):
            raise ValueError(f"invalid workspace id: {workspace_id!r}")
        return self.root / f"{workspace_id}.git"

    def put(
        self, *, workspace_id: str, name: str, version: str, content: bytes, author: str
    ) -> StoredVersion:
        repo_path = self.repo_path(workspace_id)
        if not _storable(name, version):
            raise ValueError(f"cannot store prompt {name!r} version {version!r} in Git")
        tag_name = _tag_name(name, version)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with self._exclusive(workspace_id):
                if not repo_path.exists():
                    self._create(workspace_id, repo_path)
                _clear_stale_ref_locks(repo_path, name, version)
                with Repo(str(repo_path)) as repo:
                    # The store is the durable record: an object must be on disk before a ref names
                    # it (refs are always fsynced). Set here rather than as core.fsyncObjectFiles in the
                    # config, which the git CLI reports as deprecated on every command.
                    repo.object_store.fsync_object_files = True
                    return _put_locked(repo, name, version, content, _identity(author))
        except _GIT_ERRORS as exc:
            raise StoreError(f"git store: could not store {tag_name} in {workspace_id}: {exc!r}") from exc

    def get(self, *, workspace_id: str, name: str, version: str) -> StoredContent | None:
        repo_path = self.repo_path(workspace_id)
        if not _storable(name, version) or not repo_path.is_dir():
            return None
        try:
            with Repo(str(repo_path)) as repo:
                return _read(repo, name, version)
        except _GIT_ERRORS as exc:
            raise StoreError(
                f"git store: could not read {_tag_name(name, version)} in {workspace_id}: {exc!r}"
            ) from exc

    def versions(self, workspace_id: str) -> list[tuple[str, str]]:
        """Every (name, version) stored on ``main`` of a workspace, in path order."""
        repo_path = self.repo_path(workspace_id)
        if not repo_path.is_dir():
            return []
        try:
            with Repo(str(repo_path)) as repo:
                return _list_versions(repo)
        except _GIT_ERRORS as exc:
            raise StoreError(f"git store: could not list versions of {workspace_id}: {exc!r}") from exc

    def healthy(self) -> bool:
        # Write a real file: a read-only mount or a full disk passes a permission check but not this.
        probe = self.root / f".health-{uuid.uuid4().hex}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError:
            return False
        return True

    def describe(self) -> dict[str, str]:
        return {"driver": self.driver, "location": str(self.root)}

    # -- internals --------------------------------------------------------------------------------

    @contextmanager
    def _exclusive(self, workspace_id: str) -> Iterator[None]:
        """Hold the workspace's write lock, across threads and processes, or raise StoreError."""
        lock_path = self.root / f"{workspace_id}.lock"
        deadline = time.monotonic() + self.lock_timeout
        thread_lock = _thread_locks.get(str(lock_path))
        if not thread_lock.acquire(timeout=self.lock_timeout):
            raise StoreError(f"git store: timed out waiting for the write lock of {workspace_id}")
        try:
            # The lock file is never deleted: unlinking it while another process waits on it would let
            # that process lock a file nobody else opens any more.
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                # Poll rather than block so a wedged writer turns into an error, not a hung request.
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise StoreError(
                                f"git store: timed out waiting for the write lock of {workspace_id}"
                            ) from None
                        time.sleep(_LOCK_POLL_SECONDS)
                yield
            finally:
                os.close(fd)  # releases the flock
        finally:
            thread_lock.release()

    def _create(self, workspace_id: str, repo_path: Path) -> None:
        """Create the bare repository; the caller holds the workspace lock.

        The repository is built under a temporary name and renamed into place, so a reader (or a clone)
        never sees a half-initialised repository, and a crash leaves only a stray temporary directory.
        """
        tmp = self.root / f".{workspace_id}.{uuid.uuid4().hex}.init"
        try:
            # An explicit default branch keeps the operator's ~/.gitconfig (init.defaultBranch) out of it.
            with Repo.init_bare(str(tmp), mkdir=True, default_branch=b"main") as repo:
                repo.set_description(f"PromptMetrics prompt versions of workspace {workspace_id}\n".encode())
            os.rename(tmp, repo_path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _storable(name: str, version: str) -> bool:
    """True when name and version make a valid tree path and tag name (no "..", no ".lock" suffix)."""
    return (
        isinstance(name, str)
        and isinstance(version, str)
        and _NAME_RE.fullmatch(name) is not None
        and _VERSION_RE.fullmatch(version) is not None
        and check_ref_format(Ref(b"refs/tags/" + _tag_name(name, version).encode()))
    )


def _tag_name(name: str, version: str) -> str:
    return f"prompts/{name}/{version}"


def _tag_ref(name: str, version: str) -> Ref:
    return Ref(b"refs/tags/" + _tag_name(name, version).encode())


def _identity(author: str) -> bytes:
    """A valid Git identity for a free-form author (user name, API key name)."""
    display = " ".join(re.sub(r"[<>\x00-\x1f\x7f]", " ", author or "").split())[:200] or "promptmetrics"
    slug = re.sub(r"[^a-z0-9]+", "-", display.lower()).strip("-")[:64] or "promptmetrics"
    return f"{display} <{slug}@promptmetrics.invalid>".encode()


def _head(repo: Repo) -> ObjectID | None:
    try:
        return repo.refs[MAIN]
    except KeyError:
        return None


def _lookup(repo: Repo, tree_id: ObjectID, path: bytes) -> tuple[int, ObjectID] | None:
    """(mode, id) of ``path`` in a tree, or None when it is absent."""
    entry: tuple[int, ObjectID] = (_DIR_MODE, tree_id)
    for part in path.split(b"/"):
        if not stat.S_ISDIR(entry[0]):
            return None
        tree = _typed(repo, entry[1], Tree)
        if part not in tree:
            return None
        entry = tree[part]
    return entry


def _file_in(repo: Repo, commit_id: ObjectID, path: bytes) -> ObjectID | None:
    """The blob id of ``path`` in a commit's tree, or None."""
    commit = repo[commit_id]
    if not isinstance(commit, Commit):
        return None
    entry = _lookup(repo, commit.tree, path)
    if entry is None or not stat.S_ISREG(entry[0]):
        return None
    return entry[1]


def _peel(repo: Repo, object_id: ObjectID) -> ShaFile:
    obj = repo[object_id]
    while isinstance(obj, Tag):
        obj = repo[obj.object[1]]
    return obj


def _with_file(
    repo: Repo, tree_id: ObjectID | None, parts: list[bytes], blob_id: ObjectID, new_trees: list[Tree]
) -> ObjectID:
    """A copy of the tree with one file added at ``parts``; every other entry is kept as is."""
    tree = Tree()
    if tree_id is not None:
        for entry in _typed(repo, tree_id, Tree).iteritems():
            tree.add(entry.path, entry.mode, entry.sha)
    first, rest = parts[0], parts[1:]
    if rest:
        sub_id = None
        if first in tree:
            mode, sub_id = tree[first]
            if not stat.S_ISDIR(mode):
                raise StoreError(f"git store: {first.decode()} is a file where a directory is expected")
        tree[first] = (_DIR_MODE, _with_file(repo, sub_id, rest, blob_id, new_trees))
    else:
        tree[first] = (_FILE_MODE, blob_id)
    new_trees.append(tree)  # children first: objects are written before anything points at them
    return tree.id


def _clear_stale_ref_locks(repo_path: Path, name: str, version: str) -> None:
    """Remove ``*.lock`` files of the refs this write moves. Only a writer holding our workspace lock
    creates them, so any present now was left by a crash mid-update and would block every later write.
    """
    for ref in (MAIN, _tag_ref(name, version)):
        (repo_path / (ref.decode() + ".lock")).unlink(missing_ok=True)


def _put_locked(repo: Repo, name: str, version: str, content: bytes, identity: bytes) -> StoredVersion:
    path = prompt_path(name, version).encode()
    tag_name = _tag_name(name, version)
    blob = Blob.from_string(content)
    head = _head(repo)

    if head is not None and (existing := _file_in(repo, head, path)) is not None:
        if existing != blob.id:
            raise StoredDifferently(f"{tag_name} is already stored with other content")
        # A retried two-phase write: answer with what is already there.
        return _existing_record(repo, head, name, version, blob.id, identity)

    now = int(time.time())
    new_trees: list[Tree] = []
    base_tree = _typed(repo, head, Commit).tree if head is not None else None
    root_tree = _with_file(repo, base_tree, path.split(b"/"), blob.id, new_trees)

    commit = Commit()
    commit.tree = root_tree
    commit.parents = [head] if head is not None else []
    commit.author = commit.committer = identity
    commit.author_time = commit.commit_time = now
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = f"Add prompt {name} {version}\n".encode()
    tag = _make_tag(name, version, commit.id, identity, now)

    for obj in (blob, *new_trees, commit, tag):
        repo.object_store.add_object(obj)

    # Compare-and-swap even under our lock: if anything else moved main (a push, a manual fix), refuse
    # rather than silently drop its commit or fork the history.
    # The reflog entry names the author explicitly; otherwise dulwich would look up the server's
    # own Git identity in the environment and ~/.gitconfig.
    message = commit.message.strip()
    if head is None:
        moved = repo.refs.add_if_new(
            MAIN, commit.id, committer=identity, timestamp=now, timezone=0, message=message
        )
    else:
        moved = repo.refs.set_if_equals(
            MAIN, head, commit.id, committer=identity, timestamp=now, timezone=0, message=message
        )
    if not moved:
        raise StoreError(f"git store: main moved while storing {tag_name}; nothing was written")
    _set_tag_ref(repo, name, version, tag.id)
    return StoredVersion(commit_sha=commit.id.decode(), tag=tag_name)


def _make_tag(name: str, version: str, commit_id: ObjectID, identity: bytes, when: int) -> Tag:
    tag = Tag()
    tag.name = _tag_name(name, version).encode()
    tag.object = (Commit, commit_id)
    tag.tagger = identity
    tag.tag_time = when
    tag.tag_timezone = 0
    tag.message = f"Prompt {name} version {version}\n".encode()
    return tag


def _set_tag_ref(repo: Repo, name: str, version: str, tag_id: ObjectID) -> None:
    # Unconditional: main is the source of truth, and main did not hold this version until now, so a
    # tag ref already there (left by hand) names nothing stored and is rightly replaced.
    repo.refs.set_if_equals(_tag_ref(name, version), None, tag_id)


def _existing_record(
    repo: Repo, head: ObjectID, name: str, version: str, blob_id: ObjectID, identity: bytes
) -> StoredVersion:
    tag_name = _tag_name(name, version)
    with suppress(KeyError):
        target = _peel(repo, repo.refs[_tag_ref(name, version)])
        if isinstance(target, Commit):
            return StoredVersion(commit_sha=target.id.decode(), tag=tag_name)
    # main holds the document but the tag is missing (a crash between the two ref updates): find the
    # commit that added it, walking first parents only while they still hold the same blob, and tag it.
    path = prompt_path(name, version).encode()
    commit_id = head
    while True:
        commit = _typed(repo, commit_id, Commit)
        if not commit.parents or _file_in(repo, commit.parents[0], path) != blob_id:
            break
        commit_id = commit.parents[0]
    tag = _make_tag(name, version, commit_id, identity, int(time.time()))
    repo.object_store.add_object(tag)
    _set_tag_ref(repo, name, version, tag.id)
    return StoredVersion(commit_sha=commit_id.decode(), tag=tag_name)


def _read(repo: Repo, name: str, version: str) -> StoredContent | None:
    path = prompt_path(name, version).encode()
    try:
        tag_target: ObjectID | None = repo.refs[_tag_ref(name, version)]
    except KeyError:
        tag_target = None
    if tag_target is not None:
        commit = _peel(repo, tag_target)
        blob_id = _file_in(repo, commit.id, path) if isinstance(commit, Commit) else None
        if blob_id is not None:
            return StoredContent(
                content=_blob_data(repo, blob_id),
                record=StoredVersion(commit_sha=commit.id.decode(), tag=_tag_name(name, version)),
            )
    # No usable tag (a reader between the two ref updates of a put, or a damaged tag): main still has
    # the document. Finding the commit that added it would walk history, so name main's head, which
    # holds the very same bytes.
    head = _head(repo)
    blob_id = _file_in(repo, head, path) if head is not None else None
    if head is None or blob_id is None:
        return None
    return StoredContent(content=_blob_data(repo, blob_id), record=StoredVersion(commit_sha=head.decode()))


def _blob_data(repo: Repo, blob_id: ObjectID) -> bytes:
    return _typed(repo, blob_id, Blob).data


def _typed(repo: Repo, object_id: ObjectID, cls: type[_Obj]) -> _Obj:
    """The object, which must be of type ``cls``; anything else means a damaged repository."""
    obj = repo[object_id]
    if not isinstance(obj, cls):
        raise StoreError(
            f"git store: {object_id.decode()} is a {obj.type_name.decode()}, not a {cls.__name__}"
        )
    return obj


def _list_versions(repo: Repo) -> list[tuple[str, str]]:
    head = _head(repo)
    if head is None:
        return []
    prompts = _lookup(repo, _typed(repo, head, Commit).tree, b"prompts")
    if prompts is None or not stat.S_ISDIR(prompts[0]):
        return []
    prompts_tree = _typed(repo, prompts[1], Tree)
    found: list[tuple[str, str]] = []
    for entry in prompts_tree.iteritems():
        if not stat.S_ISDIR(entry.mode):
            continue
        for item in _typed(repo, entry.sha, Tree).iteritems():
            if stat.S_ISREG(item.mode) and item.path.endswith(b".json"):
                found.append((entry.path.decode(), item.path[: -len(b".json")].decode()))
    return found
