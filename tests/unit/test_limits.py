"""The pure limit decisions of ``gateway.limits``: the inbound token bucket and client admission."""

from __future__ import annotations

import pytest

from gateway.core.bucket import TokenBucket
from gateway.policy.limits import message_bucket, refusal


def test_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    assert all(bucket.take(0.0) for _ in range(20))
    assert not bucket.take(0.0)


def test_bucket_refills_at_its_rate_and_never_beyond_the_burst() -> None:
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    for _ in range(20):
        bucket.take(0.0)
    assert bucket.take(0.1) and not bucket.take(0.1)  # 0.1 s at 10/s = one token
    assert sum(bucket.take(1000.0) for _ in range(100)) == 20  # a long idle still caps at the burst


def test_bucket_sustains_exactly_its_rate() -> None:
    bucket = TokenBucket(rate=20, burst=40, now=0.0)
    accepted = sum(bucket.take(i / 1000) for i in range(10_000))  # 1000 msgs/s for 10 s
    assert accepted in (239, 240)  # burst 40 + 20/s × 10 s, give or take the float sum of 10,000 refills


def test_bucket_ignores_a_clock_going_backwards() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (1, 0.5)])
def test_bucket_rejects_nonsense(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, 0.0)


def test_message_bucket_follows_the_config() -> None:
    bucket = message_bucket(5, now=0.0)
    assert (bucket.rate, bucket.burst) == (5, 10)


@pytest.mark.parametrize(
    ("total", "from_peer", "max_clients", "max_per_peer", "expected"),
    [
        (0, 0, 1, 0, None),
        (1, 0, 1, 0, "max_clients"),
        (5, 5, 100, 0, None),  # 0 = no per-address limit
        (5, 2, 100, 2, "max_clients_per_ip"),
        (5, 1, 100, 2, None),
        (100, 2, 100, 2, "max_clients"),  # the global limit is reported first
    ],
)
def test_refusal(total: int, from_peer: int, max_clients: int, max_per_peer: int, expected: str | None) -> None:
    assert refusal(total, from_peer, max_clients, max_per_peer) == expected
