"""What the gateway measures about itself: event-loop lag, recent rates, batch latency.

:func:`monitor` runs on the event loop and wakes every :data:`TICK` seconds;
how late it wakes is the loop's lag.  Each tick records one :class:`Sample` of
the cumulative counters in a deque bounded to :data:`WINDOW` seconds, so
"events per second", "clients dropped in the last minute" and "how fast the ring
turns over" cost nothing on the data path.  Under pressure the samples simply
arrive late (that lateness is the lag); memory is ``WINDOW / TICK`` samples.

:class:`LatencyHistogram` is the one hot-path hook: ``Stream`` observes once per
ingest batch (one ``bisect`` and two additions).

Test hook: with ``EVENT_GATEWAY_TEST_HOOKS=1`` in the environment, SIGUSR1
blocks the event loop for :data:`TEST_BLOCK_SECONDS` (a stand-in for a stalled
loop, so tests can watch the watchdog pings stop and the lag be reported).
It is never installed otherwise.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.engine.fanout import SKIPPING_POLICIES
from gateway.process import logs

if TYPE_CHECKING:
    from gateway.http.state import GatewayState

TICK = 1.0
WINDOW = 60.0
#: Span for the events/s rate and the recent loop-lag maximum.
RECENT = 10.0
TEST_HOOKS_ENV = "EVENT_GATEWAY_TEST_HOOKS"
TEST_BLOCK_SECONDS = 2.0
#: Upper bounds (seconds) of the ingest-to-socket-write latency buckets.
LATENCY_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

log = logs.get("gateway.health")


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


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative counters at one tick (monotonic ``at``, wall-clock ``wall``)."""

    at: float
    wall: float
    lag: float
    accepted: int
    slow_disconnects: int
    slow_skipped: int
    evictions: int


class Health:
    """The sampled window and what is derived from it."""

    def __init__(self) -> None:
        self.samples: deque[Sample] = deque()
        #: Wall-clock time of the tick that first saw a slow-client drop, or None.
        self.last_slow_drop_at: float | None = None

    @property
    def loop_lag(self) -> float:
        return self.samples[-1].lag if self.samples else 0.0

    def record(self, sample: Sample) -> None:
        prev = self.samples[-1] if self.samples else None
        if prev is not None and (
            sample.slow_disconnects > prev.slow_disconnects or sample.slow_skipped > prev.slow_skipped
        ):
            self.last_slow_drop_at = sample.wall
        self.samples.append(sample)
        while sample.at - self.samples[0].at > WINDOW:
            self.samples.popleft()

    def _since(self, span: float) -> tuple[Sample, Sample] | None:
        """The oldest sample within ``span`` of the newest, and the newest."""
        if len(self.samples) < 2:
            return None
        last = self.samples[-1]
        first = next(s for s in self.samples if last.at - s.at <= span)
        return (first, last) if first is not last else (self.samples[-2], last)

    def events_per_s(self) -> float:
        pair = self._since(RECENT)
        if pair is None:
            return 0.0
        first, last = pair
        return (last.accepted - first.accepted) / (last.at - first.at)

    def recent_lag_max(self) -> float:
        last = self.samples[-1].at if self.samples else 0.0
        return max((s.lag for s in self.samples if last - s.at <= RECENT), default=0.0)

    def ring_turnover(self, capacity: int) -> float | None:
        """Seconds the ring takes to replace all it holds, at the last minute's eviction rate."""
        if len(self.samples) < 2:
            return None
        first, last = self.samples[0], self.samples[-1]
        evicted = last.evictions - first.evictions
        return capacity * (last.at - first.at) / evicted if evicted else None

    def snapshot(self, capacity: int) -> dict[str, Any]:
        first = self.samples[0] if self.samples else None
        last = self.samples[-1] if self.samples else None
        turnover = self.ring_turnover(capacity)
        return {
            "window_s": round(last.at - first.at, 3) if first and last else 0.0,
            "events_per_s": round(self.events_per_s(), 3),
            "loop_lag_s": round(self.loop_lag, 6),
            "loop_lag_recent_max_s": round(self.recent_lag_max(), 6),
            "ring_turnover_s": None if turnover is None else round(turnover, 3),
            "slow_client_disconnects_window": last.slow_disconnects - first.slow_disconnects if first and last else 0,
            "slow_client_skipped_window": last.slow_skipped - first.slow_skipped if first and last else 0,
            "last_slow_client_drop_at": self.last_slow_drop_at,
        }


def take_sample(state: GatewayState, lag: float) -> Sample:
    hub = state.hub
    return Sample(
        at=time.monotonic(),
        wall=time.time(),
        lag=lag,
        accepted=state.stream.accepted,
        slow_disconnects=hub.slow_disconnects,
        slow_skipped=sum(hub.drops[policy] for policy in SKIPPING_POLICIES),
        evictions=state.stream.ring.evictions,
    )


async def monitor(state: GatewayState) -> None:
    """Sample every :data:`TICK` seconds, measuring how late each wake-up is."""
    loop = asyncio.get_running_loop()
    state.health.record(take_sample(state, 0.0))
    while True:
        started = loop.time()
        await asyncio.sleep(TICK)
        state.health.record(take_sample(state, max(0.0, loop.time() - started - TICK)))


def install_test_hooks(loop: asyncio.AbstractEventLoop) -> None:
    """SIGUSR1 → block the loop, only when ``EVENT_GATEWAY_TEST_HOOKS=1`` (see module docstring)."""
    if os.environ.get(TEST_HOOKS_ENV) == "1":
        loop.add_signal_handler(signal.SIGUSR1, _block_loop)


def _block_loop() -> None:
    log.warning("test_hook.loop_blocked", seconds=TEST_BLOCK_SECONDS)
    time.sleep(TEST_BLOCK_SECONDS)
