"""Batched frames on a real socket: many events in one transport write parse correctly.

The gateway is paused (SIGSTOP) while an emitter queues a burst, so when it resumes
the burst is drained in large batches and each batch reaches the client as one
write holding many frames back to back — including frames with 16-bit and 64-bit
lengths.  The independent ``websockets`` client must read every event, whole and in
order; ``tests/browser/test_batched_frames.py`` does the same with Chromium's own
WebSocket and :func:`burst_while_stopped`.
"""

from __future__ import annotations

import json
import signal
from typing import Any

from websockets.sync.client import connect

from emitter_sdk import Emitter
from tests.conftest import Gateway

BURST = 400
SIZES = {100: 200, 200: 70_000}  # pseq → payload size: a 16-bit and a 64-bit frame length


def burst_while_stopped(gateway: Gateway) -> None:
    """Queue ``BURST`` events (payload ``i``, ``blob`` of ``SIZES``) while the gateway is stopped, then resume it."""
    with Emitter(gateway.ingest) as em:
        assert em.wait_subscribed(10)
        gateway.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
        try:
            for i in range(1, BURST + 1):
                assert em.emit("task.progress", entity=("task", "t1"), payload={"i": i, "blob": "x" * SIZES.get(i, 0)})
            assert em.flush(10)
        finally:
            gateway.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]


def assert_whole_burst(gateway: Gateway, events: list[dict[str, Any]]) -> None:
    """Every event of the burst, whole and in order; and the gateway wrote it in batches."""
    assert [e["seq"] for e in events] == list(range(1, BURST + 1))
    assert [e["payload"]["i"] for e in events] == list(range(1, BURST + 1))
    assert all(len(e["payload"]["blob"]) == SIZES.get(e["payload"]["i"], 0) for e in events)
    status = gateway.status()
    assert status["events"]["accepted"] == BURST and status["upstream_gaps"]["count"] == 0
    # Fewer ingest batches than events: some writes carried several frames.
    assert status["ingest"]["batches"] < BURST


def test_websockets_client_reads_a_burst_written_in_batches(gateway: Gateway) -> None:
    with connect(gateway.ws_url, max_size=None, open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "gateway.hello"
        burst_while_stopped(gateway)
        events = [json.loads(ws.recv(timeout=15)) for _ in range(BURST)]
    assert_whole_burst(gateway, events)
