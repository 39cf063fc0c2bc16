"""A steady stream is drained in windows: events arriving within ``COALESCE_S`` share one batch.

A Core process emits 300 events paced 1 ms apart (each sent on its own by the SDK);
the gateway starts drains at most every ``COALESCE_S`` (2 ms), so it must have taken
them in clearly fewer batches than events (drained one by one there are about as many
batches as events: 294 of 300 measured), while a client still receives every event, in
order.
"""

from __future__ import annotations

import json

from websockets.sync.client import connect

from gateway.ports.ingest import COALESCE_S
from tests.conftest import Gateway, run_python
from tests.e2e.test_data_path import emit_script

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
