"""The small shared tools of ``gateway.core`` without sockets: log throttle, token bucket, bounded cache."""

from __future__ import annotations

import pytest

from gateway.core.bucket import TokenBucket
from gateway.core.cache import BoundedCache
from gateway.core.throttle import LogThrottle


def test_log_throttle_lets_one_line_per_interval_and_reports_what_it_held_back() -> None:
    throttle = LogThrottle(5.0)
    assert throttle.allow("origin", 100.0) == 0
    assert [throttle.allow("origin", t) for t in (101.0, 102.0, 104.9)] == [None, None, None]
    assert throttle.allow("unauthorized", 101.0) == 0  # keys are independent
    assert throttle.due_in("origin", 103.0) == pytest.approx(2.0)
    assert throttle.allow("origin", 105.0) == 3
    throttle.mark("rejected", 200.0)
    assert throttle.due_in("rejected", 201.0) == pytest.approx(4.0) and throttle.due_in("rejected", 206.0) == 0.0


def test_token_bucket_charge_goes_below_zero_and_wait_says_until_when() -> None:
    bucket = TokenBucket(rate=0.5, burst=2, now=0.0)
    assert bucket.wait(0.0) == 0.0
    assert [bucket.charge(0.0) for _ in range(3)] == [1.0, 0.0, -1.0]  # every failure counts, even when blocked
    assert not bucket.take(0.0)
    assert bucket.wait(0.0) == pytest.approx(4.0)  # from -1 to 1 token at 0.5 per second
    assert bucket.take(4.0) and not bucket.take(4.0)


def test_bounded_cache_starts_over_when_full() -> None:
    cache: BoundedCache[str, int] = BoundedCache(limit=2)
    assert cache.put("a", 1) == 1 and cache.put("b", 2) == 2
    assert cache.get("a") == 1 and len(cache) == 2
    cache.put("c", 3)  # full: forgets everything, keeps the newest
    assert dict(cache) == {"c": 3}
