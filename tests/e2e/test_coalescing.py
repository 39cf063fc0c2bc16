"""A steady stream is drained in windows: events arriving within ``COALESCE_S`` share one batch.

A Core process emits 300 events paced 1 ms apart (each sent on its own by the SDK);
the gateway starts drains at most every ``COALESCE_S`` (2 ms) unless a held batch
completes sooner, so it must have taken them in clearly fewer batches than events
(drained one by one there are about as many batches as events: 294 of 300 measured),
while a client still receives every event, in order.  And a held batch closes on the
arrival that completes it, not on the window's timer: with a window of 30 s, the
second event after a drain is processed as soon as the third arrives.
"""

from __future__ import annotations

import asyncio
import json

import zmq
from websockets.sync.client import connect

from emitter_sdk.wire import ENCODER, Entity, WireEvent
from gateway.core.ring import Ring
from gateway.engine.fanout import Hub
from gateway.engine.stream import Stream
from gateway.ports.ingest import COALESCE_S, Ingest
from tests.conftest import Gateway, run_python
from tests.e2e.test_data_path import emit_script
from tests.unit.test_store import until

EVENTS = 300


def test_paced_events_are_drained_in_windows_and_all_delivered(gateway: Gateway) -> None:
    assert COALESCE_S >= 0.002  # the loop's timers tick in whole ms: a shorter window is none
    with connect(gateway.ws_url, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "gateway.hello"
        before = gateway.status()["ingest"]["batches"]
        body = f"""
        t0 = time.perf_counter()
        for i in range({EVENTS}):
            time.sleep(max(0.0, t0 + i / 1000 - time.perf_counter()))  # pacing at 1,000/s: the behaviour under test
            em.emit("task.progress", entity=("task", "t1"), payload={{"i": i}})
        """
        result = run_python(emit_script(gateway.ingest, body))
        assert result.returncode == 0, result.stderr
        events = [json.loads(ws.recv(timeout=10)) for _ in range(EVENTS)]
    assert [e["payload"]["i"] for e in events] == list(range(EVENTS))
    batches = gateway.status()["ingest"]["batches"] - before
    assert batches <= EVENTS * 2 // 3, f"{batches} batches for {EVENTS} paced events"


async def test_a_held_batch_is_drained_when_it_is_complete_not_at_the_windows_end() -> None:
    ring = Ring(100)
    ingest = Ingest("tcp://127.0.0.1:*", Stream(ring, Hub(ring), "e1"), max_event_bytes=65536, coalesce_s=30.0)
    ingest.bind()
    assert ingest.sock is not None
    ingest.start(asyncio.get_running_loop())
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.connect(ingest.sock.last_endpoint.decode())

    def send(pseq: int) -> None:
        event = WireEvent("task.progress", "2026-01-01T00:00:00.000Z", "core", Entity("task", "t1"), {}, "p1", pseq)
        pub.send(ENCODER.encode(event))

    try:
        await until(lambda: bool(pub.poll(0)), "the ingest's subscription")
        send(1)  # after a quiet spell: drained at once
        await until(lambda: ingest.batches == 1 and ring.head == 1, "the first event's drain")
        send(2)  # inside the 30 s window: held until a second event completes the batch
        send(3)
        await until(lambda: ring.head == 3, "the held batch, well before the window's end")
        assert ingest.batches == 2
    finally:
        pub.close(0)
        ctx.term()
        ingest.close()
