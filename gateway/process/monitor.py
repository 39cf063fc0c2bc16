"""The sampler: how late the event loop wakes (its lag) and the counters, once per :data:`TICK`.

:func:`monitor` runs on the event loop (a ``cleanup_ctx`` task of the daemon)
and wakes every :data:`TICK` seconds; how late it wakes is the loop's lag.
Each tick records one :class:`~gateway.core.health.Sample` into the
:class:`~gateway.core.health.Health` window.  Under pressure the samples simply
arrive late (that lateness is the lag); memory is bounded by the window.
"""

from __future__ import annotations

import asyncio
import time

from gateway.core.health import Health, Sample
from gateway.engine.fanout import SKIPPING_POLICIES, Hub
from gateway.engine.stream import Stream

TICK = 1.0


def take_sample(stream: Stream, hub: Hub, lag: float) -> Sample:
    return Sample(
        at=time.monotonic(),
        wall=time.time(),
        lag=lag,
        accepted=stream.accepted,
        slow_disconnects=hub.slow_disconnects,
        slow_skipped=sum(hub.drops[policy] for policy in SKIPPING_POLICIES),
        evictions=stream.ring.evictions,
    )


async def monitor(health: Health, stream: Stream, hub: Hub) -> None:
    """Sample every :data:`TICK` seconds, measuring how late each wake-up is."""
    loop = asyncio.get_running_loop()
    health.record(take_sample(stream, hub, 0.0))
    while True:
        started = loop.time()
        await asyncio.sleep(TICK)
        health.record(take_sample(stream, hub, max(0.0, loop.time() - started - TICK)))
