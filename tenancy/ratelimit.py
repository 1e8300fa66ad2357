"""Sliding-window rate limiting per (workspace, API key), counted once per request.

A request is allowed when fewer than ``RATE_LIMIT_MAX_REQUESTS`` requests of the same bucket were
allowed in the last ``RATE_LIMIT_WINDOW_MS`` milliseconds (a sliding log, not a fixed window).

Backends:
* Redis (``REDIS_URL``): a sorted set per bucket trimmed and counted by one Lua script, timed by the
  Redis server clock so that every node agrees.
* Without Redis: a ring buffer of the last N accepted timestamps per bucket in a memory-mapped file
  shared by all worker processes (see ``sharedmem``). Allowing a request is O(1): the bucket is full
  exactly when its oldest remembered timestamp is still inside the window.
"""

from __future__ import annotations

import hashlib
import logging
import math
import struct
import time
import uuid
from dataclasses import dataclass
from functools import cache

from django.conf import settings

from tenancy.sharedmem import SharedFile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_ms: float  # when the oldest counted request leaves the window (Unix ms)
    now_ms: float

    @property
    def reset_at(self) -> int:
        return math.ceil(self.reset_ms / 1000)

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil((self.reset_ms - self.now_ms) / 1000))

    @property
    def headers(self) -> dict[str, str]:
        """The ``RateLimit-*`` headers of the answer, plus ``Retry-After`` when refused."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_at),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class FileSlidingLog:
    """Sliding log in a shared memory map: slots of (digest, head, count, ring[N] of ms timestamps)."""

    _SLOT_HEADER = struct.Struct("<16sII")
    _PROBE = 32
    # Buckets (workspace, key) that can be live at once. The file is sparse: a slot's ring costs
    # disk and memory only for the entries it has used.
    SLOTS = 4096

    def __init__(self, limit: int, window_ms: int) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self.slot_size = self._SLOT_HEADER.size + 8 * limit
        self.slots = self.SLOTS
        # Limit and window are part of the name: a changed configuration starts from fresh state
        # instead of misreading the old layout.
        path = settings.RATE_LIMIT_DIR / f"ratelimit-{limit}-{window_ms}.bin"
        self.file = SharedFile(path, self.slots * self.slot_size)

    def hit(self, bucket: str) -> RateLimitResult:
        digest = hashlib.blake2b(bucket.encode(), digest_size=16).digest()
        home = int.from_bytes(digest[:8], "little") % self.slots
        with self.file.locked() as buf:
            now = time.time() * 1000
            offset, frees_at = self._find_slot(buf, digest, home, now)
            if offset is None:
                # Every slot this bucket may use holds a live bucket. Taking one over would reset a
                # live count and let it exceed its limit, so the newcomer waits instead.
                logger.warning("rate limiter: no free slot for bucket %s; refusing", bucket.split(":")[0])
                return RateLimitResult(False, self.limit, 0, frees_at, now)
            return self._hit_slot(buf, offset, digest, now)

    def _find_slot(self, buf: memoryview, digest: bytes, home: int, now: float) -> tuple[int | None, float]:
        """The slot of ``digest`` near ``home``, else a free or fully expired one (claimed for it).

        Without either, ``(None, when the first of those slots expires)``.
        """
        horizon = now - self.window_ms
        frees_at = math.inf
        free: int | None = None
        for i in range(self._PROBE):
            offset = ((home + i) % self.slots) * self.slot_size
            slot_digest, head, count = self._SLOT_HEADER.unpack_from(buf, offset)
            if slot_digest == digest:
                return offset, now
            newest = self._ts(buf, offset, (head + count - 1) % self.limit) if count else -math.inf
            if newest <= horizon:
                free = offset if free is None else free
            else:
                frees_at = min(frees_at, newest + self.window_ms)
        if free is None:
            return None, frees_at
        self._SLOT_HEADER.pack_into(buf, free, digest, 0, 0)
        return free, now

    def _ts(self, buf: memoryview, offset: int, index: int) -> float:
        return struct.unpack_from("<d", buf, offset + self._SLOT_HEADER.size + 8 * index)[0]

    def _expired_prefix(self, buf: memoryview, offset: int, head: int, count: int, horizon: float) -> int:
        """How many of the oldest entries left the window.

        Under steady traffic that is zero or one entry, so the first few are checked directly;
        beyond that a binary search (the ring is in time order: timestamps are taken under the
        lock), since a linear scan would stall every worker behind the lock for milliseconds when a
        large bucket wakes up after a quiet spell.
        """
        for index in range(min(count, 4)):
            if self._ts(buf, offset, (head + index) % self.limit) > horizon:
                return index
        low, high = min(count, 4), count
        while low < high:
            mid = (low + high) // 2
            if self._ts(buf, offset, (head + mid) % self.limit) <= horizon:
                low = mid + 1
            else:
                high = mid
        return low

    def _hit_slot(self, buf: memoryview, offset: int, digest: bytes, now: float) -> RateLimitResult:
        _, head, count = self._SLOT_HEADER.unpack_from(buf, offset)
        expired = self._expired_prefix(buf, offset, head, count, now - self.window_ms)
        head, count = (head + expired) % self.limit, count - expired
        allowed = count < self.limit
        if allowed:
            tail = (head + count) % self.limit
            struct.pack_into("<d", buf, offset + self._SLOT_HEADER.size + 8 * tail, now)
            count += 1
        self._SLOT_HEADER.pack_into(buf, offset, digest, head, count)
        reset = self._ts(buf, offset, head) + self.window_ms
        return RateLimitResult(allowed, self.limit, self.limit - count, reset, now)


_REDIS_SCRIPT = """
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', key, window)
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {allowed, count, tostring(now), oldest[2] or tostring(now)}
"""


class RedisSlidingLog:
    """Sliding log in Redis: ZSET of request timestamps, trimmed and counted atomically."""

    def __init__(self, limit: int, window_ms: int) -> None:
        from django_redis import get_redis_connection

        self.limit = limit
        self.window_ms = window_ms
        self.client = get_redis_connection("default")
        self.script = self.client.register_script(_REDIS_SCRIPT)
        self.prefix = f"{settings.CACHE_KEY_PREFIX}:ratelimit:"

    def hit(self, bucket: str) -> RateLimitResult:
        try:
            allowed, count, now, oldest = self.script(
                keys=[self.prefix + bucket], args=[self.window_ms, self.limit, uuid.uuid4().hex]
            )
        except Exception:
            # Fail open, as the original does: a Redis outage must not take the whole API down.
            # /health/deep reports the outage.
            logger.exception("rate limiter: Redis unavailable, request allowed")
            now_ms = time.time() * 1000
            return RateLimitResult(True, self.limit, self.limit, now_ms + self.window_ms, now_ms)
        return RateLimitResult(
            bool(allowed), self.limit, self.limit - int(count), float(oldest) + self.window_ms, float(now)
        )


@cache
def _limiter(limit: int, window_ms: int, redis: bool) -> FileSlidingLog | RedisSlidingLog:
    return RedisSlidingLog(limit, window_ms) if redis else FileSlidingLog(limit, window_ms)


def rate_limit_hit(*, workspace_id: str, key_hash: str) -> RateLimitResult | None:
    """Count one request against the bucket; ``None`` when rate limiting is disabled."""
    limit = settings.RATE_LIMIT_MAX_REQUESTS
    if limit == 0:
        return None
    limiter = _limiter(limit, settings.RATE_LIMIT_WINDOW_MS, bool(settings.REDIS_URL))
    return limiter.hit(f"{workspace_id}:{key_hash}")
