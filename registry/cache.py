"""Cached prompt lookups: label/latest pointers per prompt, and immutable version documents.

A resolve (``GET /v1/prompts/{name}?label=production``) costs one shared read here and no database
query once warm. Pointers (which versions exist, where each label points, which is latest) are
cached per process and validated on every request against a per-prompt *generation* that any write
bumps: a memory-mapped counter shared by this machine's workers, or a token in Redis shared by every
node. A new version or a label move is therefore visible on the very next request everywhere — no
TTL window (upstream served stale labels for up to 60 s). Version documents never change, so they
are cached by (row id, content hash) without invalidation; with Redis they are shared across nodes.
"""

from __future__ import annotations

import logging
import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from registry import semver
from registry.models import Prompt, PromptLabel, PromptVersion
from tenancy.sharedmem import SharedFile

logger = logging.getLogger(__name__)

_SLOTS = 4096  # collisions only cost a spurious reload
_L1_MAX = 2048
_L2_TTL_S = 24 * 3600


@dataclass(frozen=True)
class PromptPointers:
    """Everything needed to turn (name, label | version | nothing) into one version row."""

    prompt_id: int
    name: str
    versions: dict[str, tuple[int, str]]  # version -> (row id, sha256)
    latest: str | None
    labels: dict[str, str]  # label -> version


@dataclass(frozen=True)
class ResolvedVersion:
    id: int
    name: str
    version: str
    document: dict[str, Any]
    sha256: str
    commit_sha: str
    tag: str
    driver: str
    author: str
    created_at: int


Generation = int | str | None


class _FileGenerations:
    def __init__(self) -> None:
        self.file = SharedFile(settings.PROMPT_GENERATION_FILE, _SLOTS * 8)

    @staticmethod
    def _offset(workspace_id: str, name: str) -> int:
        return (zlib.crc32(f"{workspace_id}\0{name}".encode()) % _SLOTS) * 8

    def read(self, workspace_id: str, name: str) -> Generation:
        return struct.unpack_from("<Q", self.file.buffer, self._offset(workspace_id, name))[0]

    def bump(self, workspace_id: str, name: str) -> None:
        offset = self._offset(workspace_id, name)
        with self.file.locked() as buf:
            struct.pack_into("<Q", buf, offset, (struct.unpack_from("<Q", buf, offset)[0] + 1) % 2**64)


class _RedisGenerations:
    """Random tokens, not counters: a lost key must never repeat a value a worker still holds."""

    @staticmethod
    def _key(workspace_id: str, name: str) -> str:
        return f"prompt-gen:{workspace_id}:{name}"

    def read(self, workspace_id: str, name: str) -> Generation:
        key = self._key(workspace_id, name)
        try:
            token = cache.get(key)
            if token is None:
                cache.add(key, uuid.uuid4().hex, timeout=None)
                token = cache.get(key)
            return token
        except Exception:
            logger.exception("prompt cache: Redis unavailable, reading prompts from the database")
            return None

    def bump(self, workspace_id: str, name: str) -> None:
        try:
            cache.set(self._key(workspace_id, name), uuid.uuid4().hex, timeout=None)
        except Exception:
            # Committed already; without Redis every read goes to the database anyway.
            logger.exception("prompt cache: could not publish a prompt change to Redis")


class PromptCache:
    def __init__(self) -> None:
        self._pointers: dict[tuple[str, str], tuple[Generation, PromptPointers | None]] = {}
        self._documents: dict[tuple[int, str], ResolvedVersion] = {}
        self._generations: _FileGenerations | _RedisGenerations | None = None

    @property
    def generations(self) -> _FileGenerations | _RedisGenerations:
        if self._generations is None:
            self._generations = _RedisGenerations() if settings.REDIS_URL else _FileGenerations()
        return self._generations

    def pointers(self, workspace_id: str, name: str) -> PromptPointers | None:
        """The prompt's pointers, or None when it has no active version in the workspace."""
        generation = self.generations.read(workspace_id, name)
        if generation is None:
            return _load_pointers(workspace_id, name)
        cached = self._pointers.get((workspace_id, name))
        if cached is not None and cached[0] == generation:
            return cached[1]
        shared_key = f"prompt-ptr:{workspace_id}:{name}:{generation}" if settings.REDIS_URL else None
        pointers = _shared_get(shared_key) if shared_key else None
        if pointers is None:
            # Loaded after reading the generation: a write committing meanwhile bumps it again, so
            # this possibly older state is never served under the newer generation.
            pointers = _load_pointers(workspace_id, name)
            if shared_key and pointers is not None:
                _shared_set(shared_key, pointers)
        _bounded_put(self._pointers, (workspace_id, name), (generation, pointers))
        return pointers

    def document(self, pointers: PromptPointers, version: str) -> ResolvedVersion | None:
        ref = pointers.versions.get(version)
        if ref is None:
            return None
        resolved = self._documents.get(ref)
        if resolved is not None:
            return resolved
        shared_key = f"prompt-doc:{ref[0]}:{ref[1]}" if settings.REDIS_URL else None
        resolved = _shared_get(shared_key) if shared_key else None
        if resolved is None:
            resolved = _load_document(ref[0], pointers.name)
            if resolved is None:
                return None
            if shared_key:
                _shared_set(shared_key, resolved)
        _bounded_put(self._documents, ref, resolved)
        return resolved

    def invalidate(self, workspace_id: str, name: str) -> None:
        self._pointers.pop((workspace_id, name), None)
        self.generations.bump(workspace_id, name)

    def reset(self) -> None:
        self._pointers.clear()
        self._documents.clear()
        self._generations = None


def _bounded_put(store: dict[Any, Any], key: Any, value: Any) -> None:
    if len(store) >= _L1_MAX:
        store.clear()  # cheaper than LRU bookkeeping on the hot path; refills on demand
    store[key] = value


def _shared_get(key: str) -> Any:
    try:
        return cache.get(key)
    except Exception:
        logger.exception("prompt cache: Redis read failed")
        return None


def _shared_set(key: str, value: Any) -> None:
    try:
        cache.set(key, value, timeout=_L2_TTL_S)
    except Exception:
        logger.exception("prompt cache: Redis write failed")


def _load_pointers(workspace_id: str, name: str) -> PromptPointers | None:
    prompt_id = (
        Prompt.objects.filter(workspace_id=workspace_id, name=name).values_list("id", flat=True).first()
    )
    if prompt_id is None:
        return None
    rows = PromptVersion.objects.active().filter(prompt_id=prompt_id).values_list("version", "id", "sha256")
    versions = {version: (row_id, sha) for version, row_id, sha in rows}
    if not versions:
        return None
    labels = dict(PromptLabel.objects.filter(prompt_id=prompt_id).values_list("name", "version__version"))
    return PromptPointers(
        prompt_id=prompt_id,
        name=name,
        versions=versions,
        latest=semver.latest(list(versions)),
        labels=labels,
    )


def _load_document(row_id: int, name: str) -> ResolvedVersion | None:
    row = PromptVersion.objects.active().filter(pk=row_id).first()
    return resolved_from_row(row, name) if row is not None else None


def resolved_from_row(row: PromptVersion, name: str) -> ResolvedVersion:
    return ResolvedVersion(
        id=row.pk,
        name=name,
        version=row.version,
        document=row.document,
        sha256=row.sha256,
        commit_sha=row.commit_sha,
        tag=row.tag,
        driver=row.driver,
        author=row.author,
        created_at=int(row.created_at.timestamp()),
    )


prompt_cache = PromptCache()
