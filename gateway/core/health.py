"""The gateway's recent history, sampled: loop lag, rates, slow-client drops, ring turnover.

Values in, values out: the monitor (``gateway.process.monitor``) records one
:class:`Sample` of the cumulative counters per tick into a deque bounded to
:data:`WINDOW` seconds, so "events per second", "clients dropped in the last
minute" and "how fast the ring turns over" cost nothing on the data path.
Memory is ``WINDOW / tick`` samples.  :func:`degraded_reasons` is the rule that judges a
``/status`` (published there, in ``/healthz`` and in systemd's ``STATUS=``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from gateway.core.status import Status

WINDOW = 60.0
#: Span for the events/s rate and the recent loop-lag maximum.
RECENT = 10.0
#: Upstream loss this recent makes the gateway degraded (slow-client drops: the gateway's own window).
UPSTREAM_GAP_WINDOW = 60.0


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


def degraded_reasons(status: Status, now: float) -> list[str]:
    """Why a gateway is degraded, from its ``/status`` at ``now`` (wall clock); empty when it is not.

    Degraded: not serving; upstream loss in the last minute; clients dropped for
    slowness within the gateway's sampling window (a minute); the ring turning
    over faster than ``ring_horizon`` (clients away that long cannot resume); a
    cluster node that cannot use its stream; recent event-loop lag above
    ``loop_lag_limit``; the state log disabled by a write error.
    """
    reasons = []
    if not status.healthy:
        reasons.append("not serving (ingest unbound or shutting down)")
    gaps, health = status.upstream_gaps, status.health
    if gaps.last_at and now - gaps.last_at < UPSTREAM_GAP_WINDOW:
        reasons.append(f"upstream loss {now - gaps.last_at:.0f}s ago ({gaps.missed} events missed)")
    disconnects, skipped = health.slow_client_disconnects_window, health.slow_client_skipped_window
    if disconnects or skipped:
        window = max(health.window_s, 1.0)
        reasons.append(f"slow clients: {disconnects} disconnected, {skipped} events skipped in the last {window:.0f}s")
    turnover, horizon = health.ring_turnover_s, health.ring_horizon_s
    if turnover is not None and horizon and turnover < horizon:
        reasons.append(f"ring turns over every {turnover:.0f}s, under the {horizon:.0f}s resume horizon")
    problem = (status.cluster or {}).get("problem")
    if problem:
        reasons.append(f"cluster: {problem}")
    if status.state.get("failed"):
        reasons.append("state log disabled by a write error (restarts will not resume)")
    lag, limit = health.loop_lag_recent_max_s, health.loop_lag_limit_s
    if limit and lag > limit:
        reasons.append(f"event loop lag {lag * 1000:.0f} ms (limit {limit * 1000:.0f} ms)")
    return reasons
