"""A fixed-bucket latency histogram: the data path's one timing hook.

``Stream`` observes once per ingest batch (one ``bisect`` and two additions, no
allocation); ``/metrics`` reads the cumulative counts.  Memory is one counter per
bucket, fixed at construction.
"""

from __future__ import annotations

from bisect import bisect_left

#: Upper bounds (seconds) of the ingest-to-socket-write latency buckets.
LATENCY_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class LatencyHistogram:
    """Fixed-bucket histogram of seconds; ``observe`` is O(log buckets), no allocation."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BOUNDS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last bucket is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations ≤ it)`` pairs, ending with ``(inf, count)``."""
        out, total = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out
