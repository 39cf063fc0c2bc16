"""One token bucket, for every rate the gateway limits (client messages, failed auth attempts).

``rate`` tokens per second, holding at most ``burst``; starts full.  Every
method costs O(1), never blocks and takes the time as an argument (any
monotonic clock, in seconds), so decisions are pure and unit-tested without
waiting.
"""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; starts full."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def _refill(self, now: float) -> None:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are enough; refill first by the time elapsed."""
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def charge(self, now: float, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens even if that goes below zero (a penalty); returns what is left."""
        self._refill(now)
        self.tokens -= cost
        return self.tokens

    def wait(self, now: float, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are there (0: now)."""
        self._refill(now)
        return 0.0 if self.tokens >= cost else (cost - self.tokens) / self.rate
