"""``gateway.core.health`` without sockets: samples in, rates and windows out, and the degraded rule."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.core.health import WINDOW, Health, Sample, degraded_reasons
from gateway.core.histogram import LatencyHistogram
from gateway.core.status import Clients, Events, Producers, Status, UpstreamGaps
from gateway.core.status import Health as HealthStatus


def sample(
    at: float, *, accepted: int = 0, disconnects: int = 0, skipped: int = 0, evictions: int = 0, lag: float = 0.0
) -> Sample:
    return Sample(at, 1000.0 + at, lag, accepted, disconnects, skipped, evictions)


def test_latency_histogram_buckets_are_inclusive_upper_bounds() -> None:
    hist = LatencyHistogram((0.001, 0.01))
    for seconds in (0.0005, 0.001, 0.002, 5.0):
        hist.observe(seconds)
    assert hist.cumulative() == [(0.001, 2), (0.01, 3), (float("inf"), 4)]
    assert hist.count == 4 and abs(hist.sum - 5.0035) < 1e-9


def test_rates_windows_and_slow_drops_from_samples() -> None:
    health = Health()
    assert health.events_per_s() == 0.0 and health.ring_turnover(100) is None
    for t in range(0, 21):
        health.record(sample(float(t), accepted=50 * t, evictions=10 * t, lag=0.3 if t == 15 else 0.001))
    assert health.events_per_s() == 50.0
    assert health.ring_turnover(100) == 10.0  # 10 evictions/s, 100 held
    assert health.recent_lag_max() == 0.3 and health.loop_lag == 0.001
    assert health.last_slow_drop_at is None
    health.record(sample(21.0, accepted=1050, evictions=210, skipped=7))
    assert health.last_slow_drop_at == 1021.0
    snap = health.snapshot(100)
    assert snap["slow_client_skipped_window"] == 7 and snap["slow_client_disconnects_window"] == 0
    health.record(sample(21.0 + WINDOW + 1, accepted=1050, evictions=210, skipped=7))
    assert len(health.samples) == 1  # older than the window: dropped
    assert health.snapshot(100)["slow_client_skipped_window"] == 0


def status(**health: Any) -> Status:
    """A healthy /status with ``health`` fields replaced."""
    window = {"window_s": 60.0, "loop_lag_recent_max_s": 0.001, "ring_horizon_s": 60.0, "loop_lag_limit_s": 0.5}
    return Status(
        version="t",
        uptime_s=1.0,
        started_at=0.0,
        healthy=True,
        ingest={},
        epoch="e",
        seq=0,
        ring={},
        state={"dir": None},
        events=Events(accepted=0, rejected=0, rejected_by_reason={}, duplicate=0),
        upstream_gaps=UpstreamGaps(count=0, missed=0),
        producers=Producers(count=0),
        clients=Clients(count=0, by_transport={}, lagging=0, refused={}),
        deliveries=0,
        drops={},
        slow_client_disconnects=0,
        auth={},
        internal_errors=0,
        health=HealthStatus(**(window | health)),
    )


def test_degraded_reasons_name_each_cause() -> None:
    assert degraded_reasons(status(), 0.0) == []
    assert degraded_reasons(status(slow_client_disconnects_window=2), 0.0) == [
        "slow clients: 2 disconnected, 0 events skipped in the last 60s"
    ]
    assert degraded_reasons(status(ring_turnover_s=12.0), 0.0) == [
        "ring turns over every 12s, under the 60s resume horizon"
    ]
    assert degraded_reasons(status(ring_turnover_s=120.0), 0.0) == []
    assert degraded_reasons(status(loop_lag_recent_max_s=0.8), 0.0) == ["event loop lag 800 ms (limit 500 ms)"]
    assert degraded_reasons(msgspec.structs.replace(status(), state={"failed": True}), 0.0) == [
        "state log disabled by a write error (restarts will not resume)"
    ]
    lost = msgspec.structs.replace(status(), upstream_gaps=UpstreamGaps(count=1, missed=4, last_at=990.0))
    assert degraded_reasons(lost, now=1000.0) == ["upstream loss 10s ago (4 events missed)"]
    assert degraded_reasons(lost, now=1100.0) == []
