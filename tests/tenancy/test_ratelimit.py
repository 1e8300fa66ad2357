"""The shared-memory sliding log, driven by a controlled clock."""

from __future__ import annotations

import pytest

from tenancy import ratelimit
from tenancy.ratelimit import FileSlidingLog


@pytest.fixture
def clock(monkeypatch):
    now = {"ms": 1_000_000.0}
    monkeypatch.setattr(ratelimit.time, "time", lambda: now["ms"] / 1000)
    return now


def hits(log: FileSlidingLog, clock: dict[str, float], at: list[float], bucket: str = "ws:key") -> list[bool]:
    results = []
    for ms in at:
        clock["ms"] = 1_000_000.0 + ms
        results.append(log.hit(bucket).allowed)
    return results


def test_the_window_slides_one_request_at_a_time(settings, tmp_path, clock):
    settings.RATE_LIMIT_DIR = tmp_path
    log = FileSlidingLog(limit=3, window_ms=1000)

    assert hits(log, clock, [0, 100, 200, 300]) == [True, True, True, False]
    # The request at 0 leaves the window at 1000, the one at 100 at 1100: one slot frees each time.
    assert hits(log, clock, [999, 1000, 1001, 1050, 1101]) == [False, True, False, False, True]


def test_remaining_and_reset_follow_the_oldest_counted_request(settings, tmp_path, clock):
    settings.RATE_LIMIT_DIR = tmp_path
    log = FileSlidingLog(limit=2, window_ms=5000)
    hits(log, clock, [0, 1000])
    clock["ms"] = 1_002_000.0
    refused = log.hit("ws:key")
    assert (refused.allowed, refused.remaining) == (False, 0)
    assert refused.reset_ms == 1_000_000.0 + 5000
    assert refused.retry_after == 3


def test_a_bucket_that_slept_past_many_windows_starts_empty(settings, tmp_path, clock):
    settings.RATE_LIMIT_DIR = tmp_path
    log = FileSlidingLog(limit=1000, window_ms=1000)
    assert all(hits(log, clock, [i * 0.5 for i in range(1000)]))
    assert hits(log, clock, [600]) == [False]
    # At 1250 the 501 requests sent at 0..250 ms have left the window: exactly that many fit again.
    assert hits(log, clock, [1250] * 502) == [True] * 501 + [False]
    clock["ms"] = 1_000_000.0 + 100_000
    result = log.hit("ws:key")
    assert (result.allowed, result.remaining) == (True, 999)


def test_buckets_are_independent(settings, tmp_path, clock):
    settings.RATE_LIMIT_DIR = tmp_path
    log = FileSlidingLog(limit=1, window_ms=1000)
    assert hits(log, clock, [0, 1], bucket="a:1") == [True, False]
    assert hits(log, clock, [2], bucket="b:1") == [True]


def test_a_full_neighbourhood_refuses_newcomers_instead_of_resetting_live_buckets(
    settings, tmp_path, clock, monkeypatch
):
    settings.RATE_LIMIT_DIR = tmp_path
    monkeypatch.setattr(FileSlidingLog, "SLOTS", 32)  # one probe window covers the whole table
    log = FileSlidingLog(limit=2, window_ms=1000)
    assert hits(log, clock, [0, 1], bucket="ws:full") == [True, True]
    for i in range(31):
        assert hits(log, clock, [2], bucket=f"ws:other-{i}") == [True]

    newcomer = log.hit("ws:newcomer")
    assert not newcomer.allowed
    assert newcomer.retry_after == 1
    # The full bucket kept its count: still refused.
    assert hits(log, clock, [3], bucket="ws:full") == [False]
    # Once the window has passed, slots are free again.
    assert hits(log, clock, [1003], bucket="ws:newcomer") == [True]
