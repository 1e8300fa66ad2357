"""Where prompt documents live durably: one small interface, one driver per ``DRIVER``.

The database row of a version (``PromptVersion``) is the index and holds a copy of the document for
fast reads; the store is the durable, immutable record that Git clones, exports and reconciliation
read. Drivers never overwrite: storing a version that is already stored with the same bytes returns
the existing record (a retried two-phase write), with different bytes raises ``StoredDifferently``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.conf import settings


class StoreError(Exception):
    """The store could not be read or written (disk, network, credentials)."""


class StoredDifferently(StoreError):
    """The version is already in the store with other content; immutable objects are never replaced."""


@dataclass(frozen=True)
class StoredVersion:
    """Where a version landed. Git fills both fields; object stores have neither."""

    commit_sha: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class StoredContent:
    content: bytes
    record: StoredVersion


class PromptStore(Protocol):
    driver: str

    def put(
        self, *, workspace_id: str, name: str, version: str, content: bytes, author: str
    ) -> StoredVersion:
        """Store one version's document (idempotent for identical bytes)."""

    def get(self, *, workspace_id: str, name: str, version: str) -> StoredContent | None:
        """The stored document of a version, or None when it is not stored."""

    def healthy(self) -> bool:
        """True when the store can be written right now (for /health/deep)."""

    def describe(self) -> dict[str, str]:
        """Operator-facing facts about the store (driver, location), without secrets."""


def prompt_path(name: str, version: str) -> str:
    """The document's path inside a workspace, shared by every driver (upstream's layout)."""
    return f"prompts/{name}/{version}.json"


@cache
def get_store() -> PromptStore:
    """The store selected by ``DRIVER`` (one instance per process)."""
    if settings.DRIVER == "s3":
        from registry.drivers.s3 import S3Store

        return S3Store.from_settings()
    from registry.drivers.git import GitStore

    return GitStore(settings.GIT_ROOT)


def storage_healthy() -> bool:
    """True when the configured prompt store can be written."""
    try:
        return get_store().healthy()
    except StoreError:
        return False
