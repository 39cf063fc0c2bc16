"""Upstream loss: a stalled gateway (SIGSTOP) while a producer bursts past every buffer.

The burst overflows the kernel socket buffers and the SDK's XPUB high-water
mark (events dropped there are upstream losses: their ``pseq`` was consumed)
and the SDK's own bounded queue (events refused there are counted in
``stats.dropped`` and consume no ``pseq``).  After SIGCONT the client must be
told about every missing event exactly once, as ``gateway.gap`` reason
``upstream``, and ``emitted == delivered + reported missed + dropped`` exactly.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from websockets.sync.client import ClientConnection, connect

from emitter_sdk import Emitter
from tests.conftest import Gateway, wait_for
from tests.e2e.test_data_path import recv_json

BURST = 20_000
PADDING = "x" * 8192  # the SDK queues ≥ max_queue of them: 8 MB+ ≫ loopback socket buffers + SNDHWM


def recv_available(ws: ClientConnection, until_type: str, timeout: float) -> list[dict[str, Any]]:
    """Messages until one of ``until_type`` or until none arrives for ``timeout`` s."""
    got: list[dict[str, Any]] = []
    while not got or got[-1]["type"] != until_type:
        try:
            got.append(recv_json(ws, timeout=timeout))
        except TimeoutError:
            break
    return got


def test_stalled_gateway_every_loss_is_reported_once_and_the_books_balance(gateway_factory) -> None:
    gateway: Gateway = gateway_factory("--client-queue-events", "1000000", "--client-queue-bytes", "1000000000")
    em = Emitter(gateway.ingest, sndhwm=200, max_queue=1000)
    try:
        assert em.wait_subscribed(10)
        with connect(gateway.ws_url, max_size=None) as ws:
            recv_json(ws)
            gateway.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
            # The burst outruns the I/O thread for sure: this thread keeps the GIL (no forced
            # switch for 1 s, the burst takes ~0.1 s), so the SDK's queue overflows.
            interval = sys.getswitchinterval()
            sys.setswitchinterval(1.0)
            try:
                for i in range(BURST):
                    em.emit("task.progress", entity=("task", "burst"), payload={"i": i, "pad": PADDING})
                sys.setswitchinterval(interval)
                assert em.flush(20)  # handed to ZeroMQ: what does not fit is dropped by XPUB
            finally:
                sys.setswitchinterval(interval)
                gateway.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
            # A loss is seen at the producer's next event: markers (re-emitted until one gets
            # through the draining buffers) reveal a trailing one.
            messages: list[dict[str, Any]] = []
            while not (messages and messages[-1]["type"] == "task.completed"):
                assert em.emit("task.completed", entity=("task", "burst"), payload={"marker": True})
                messages += recv_available(ws, until_type="task.completed", timeout=1.0)
        stats = em.stats
    finally:
        em.close()
    events = [m for m in messages if not m["type"].startswith("gateway.")]
    gaps = [m for m in messages if m["type"] == "gateway.gap"]
    assert gaps and all(g["reason"] == "upstream" and g["producer"] == em.producer for g in gaps)
    missed = sum(g["missed"] for g in gaps)
    assert missed > 0, "the burst did not overflow: size it up"
    assert stats.emitted > BURST
    assert stats.dropped > 0, "the burst did not overflow the SDK's own queue: size it up"
    assert stats.emitted == len(events) + missed + stats.dropped  # nothing lost silently, nothing counted twice
    # Each gap sits right before the event it was detected at, and pseqs + gaps cover 1..queued exactly.
    pseq, gap_at = 0, None
    for m in messages:
        if m["type"] == "gateway.gap":
            pseq += m["missed"]
            gap_at = m["seq"]
        else:
            pseq += 1
            assert int(m["id"].split(":")[1]) == pseq
            assert gap_at in (None, m["seq"])
            gap_at = None
    assert pseq == stats.queued
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1))  # upstream losses never leave a hole in the gateway's seqs
    status = wait_for(lambda: gateway.status(), 5)
    assert status["upstream_gaps"]["missed"] == missed and status["upstream_gaps"]["count"] == len(gaps)
