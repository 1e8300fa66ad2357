"""Per-process cache of API keys, invalidated everywhere on the next request after a change.

Looking a key up in the database on every request is the single largest cost of a cheap
authenticated read. Each process therefore keeps a snapshot of the keys it has seen. Any change
that can take a key away (revoke, delete, workspace delete) bumps a shared *auth epoch*; a process
that sees a new epoch drops all its snapshots before authenticating. The epoch lives in Redis when
``REDIS_URL`` is set (shared by every node) and otherwise in a memory-mapped file shared by the
workers of this machine, so a revoked key is refused on the very next request on every worker.
"""

from __future__ import annotations

import logging
import struct
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache

from tenancy.models import ApiKey
from tenancy.sharedmem import SharedFile

logger = logging.getLogger(__name__)

# An opaque version of "the set of valid keys": equal values mean nothing was revoked in between.
# None means "unknown" (Redis unreachable).
Epoch = int | str | None

# Safety net for changes made behind the application's back (raw SQL): snapshots expire anyway.
SNAPSHOT_TTL_S = 60.0
_EPOCH_CACHE_KEY = "auth-epoch"


@dataclass
class KeySnapshot:
    """What authentication needs to know about a key, without touching the database."""

    id: int
    name: str
    key_hash: str
    workspace_id: str | None
    scopes: frozenset[str]
    scopes_label: str
    expires_at: float | None
    last_used_at: float | None
    loaded_at: float
    # The auth epoch read before the database lookup: a snapshot loaded while a revocation committed
    # (another thread may already have moved this process to the new epoch) is never served after it.
    epoch: Epoch = None

    @classmethod
    def from_model(cls, key: ApiKey) -> KeySnapshot:
        return cls(
            id=key.pk,
            name=key.name,
            key_hash=key.key_hash,
            workspace_id=key.workspace_id,
            scopes=key.scope_set,
            scopes_label=key.scopes,
            expires_at=_ts(key.expires_at),
            last_used_at=_ts(key.last_used_at),
            loaded_at=time.monotonic(),
        )


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class _FileEpoch:
    """A counter in a shared memory map: every worker of this machine sees a bump at once."""

    def __init__(self) -> None:
        self.file = SharedFile(settings.AUTH_EPOCH_FILE, 8)

    def read(self) -> Epoch:
        return struct.unpack_from("<Q", self.file.buffer, 0)[0]

    def bump(self) -> None:
        with self.file.locked() as buf:
            struct.pack_into("<Q", buf, 0, struct.unpack_from("<Q", buf, 0)[0] + 1)


class _RedisEpoch:
    """A random token in Redis, shared by every node.

    A token rather than a counter: if Redis loses the key (restart without persistence, eviction),
    the value becomes "missing", which differs from every token a worker may hold; a restarted counter
    could repeat a value a worker already has and hide the next revocation.
    """

    def read(self) -> Epoch:
        try:
            return cache.get(_EPOCH_CACHE_KEY) or ""
        except Exception:
            logger.exception("auth cache: Redis unavailable, looking keys up in the database")
            return None

    def bump(self) -> None:
        try:
            cache.set(_EPOCH_CACHE_KEY, uuid.uuid4().hex, timeout=None)
        except Exception:
            # The change is committed; cached copies elsewhere expire within SNAPSHOT_TTL_S.
            logger.exception("auth cache: could not publish a key change to Redis")


class KeyCache:
    def __init__(self) -> None:
        self._snapshots: dict[str, KeySnapshot] = {}
        # Workspaces this process has seen exist (for master keys); deletions bump the epoch too.
        self.known_workspaces: set[str] = set()
        self._epoch_value: Epoch = None
        self._epoch: _FileEpoch | _RedisEpoch | None = None

    @property
    def epoch(self) -> _FileEpoch | _RedisEpoch:
        if self._epoch is None:
            self._epoch = _RedisEpoch() if settings.REDIS_URL else _FileEpoch()
        return self._epoch

    def get(self, key_hash: str) -> KeySnapshot | None:
        current = self.epoch.read()
        if current is None:
            # The epoch cannot be read: nothing cached can be trusted, so go to the database.
            return self._load(key_hash, None)
        if current != self._epoch_value:
            self._snapshots.clear()
            self.known_workspaces.clear()
            self._epoch_value = current
        snapshot = self._snapshots.get(key_hash)
        if (
            snapshot is not None
            and snapshot.epoch == current
            and time.monotonic() - snapshot.loaded_at < SNAPSHOT_TTL_S
        ):
            return snapshot
        return self._load(key_hash, current)

    def _load(self, key_hash: str, epoch: Epoch) -> KeySnapshot | None:
        key = ApiKey.objects.active().filter(key_hash=key_hash).first()
        if key is None:
            self._snapshots.pop(key_hash, None)
            return None
        snapshot = KeySnapshot.from_model(key)
        if epoch is not None:
            snapshot.epoch = epoch
            self._snapshots[key_hash] = snapshot
        return snapshot

    def invalidate_everywhere(self) -> None:
        self._snapshots.clear()
        self.known_workspaces.clear()
        self.epoch.bump()

    def reset(self) -> None:
        """Forget everything, including which backend holds the epoch (tests switch settings)."""
        self._snapshots.clear()
        self.known_workspaces.clear()
        self._epoch_value = None
        self._epoch = None


key_cache = KeyCache()
