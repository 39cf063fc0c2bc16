"""Each ingest event is accepted or rejected alone, over real ZeroMQ into a real gatewayd.

The issue's scenario: 5 good events, one whose payload decodes but has no JSON
form, 3 good ones.  Every good event arrives, in order, without a gap; the bad
one is counted (``payload``), not an internal error; the producer's re-send of
all nine is nine duplicates.  A type with a trailing newline is refused (type).
"""

from __future__ import annotations

import math

from websockets.sync.client import connect

from tests.conftest import Gateway, wait_for
from tests.e2e.test_data_path import recv_json
from tests.rawingest import RawProducer


def test_one_unencodable_payload_costs_only_itself(gateway: Gateway) -> None:
    raw = RawProducer(gateway.ingest, producer="core1")
    try:
        with connect(gateway.ws_url) as ws:
            assert recv_json(ws)["type"] == "gateway.hello"
            wait_for(lambda: gateway.status()["clients"]["count"] == 1, what="the client joined")
            for pseq in range(1, 6):
                raw.send(pseq)
            raw.send_raw(6, {"x": {(1, 2): 1}})
            for pseq in range(7, 10):
                raw.send(pseq)
            got = [recv_json(ws) for _ in range(8)]
            assert [m["type"] for m in got] == ["task.progress"] * 8, got
            assert [m["id"] for m in got] == [f"core1:{i}" for i in (1, 2, 3, 4, 5, 7, 8, 9)]
            assert [m["seq"] for m in got] == list(range(1, 9))
            for pseq in range(1, 10):  # the SDK's re-send after a reconnect
                raw.send(pseq)
            raw.send(10)
            after = recv_json(ws)
            assert (after["type"], after["id"], after["seq"]) == ("task.progress", "core1:10", 9), after
        status = gateway.status()
        assert status["events"]["rejected_by_reason"]["payload"] == 1
        assert status["events"]["duplicate"] == 9 and status["events"]["accepted"] == 9
        assert status["upstream_gaps"]["count"] == 0 and status["internal_errors"] == 0
    finally:
        raw.close()


def test_a_type_with_a_trailing_newline_is_refused(gateway: Gateway) -> None:
    raw = RawProducer(gateway.ingest, producer="core2")
    try:
        with connect(gateway.ws_url + "?types=task.started") as ws:
            assert recv_json(ws)["type"] == "gateway.hello"
            wait_for(lambda: gateway.status()["clients"]["count"] == 1, what="the client joined")
            raw.send(1, "task.started\n")
            raw.send(2, "task.started")
            event = recv_json(ws)
            assert (event["type"], event["id"], event["seq"]) == ("task.started", "core2:2", 1), event
        status = gateway.status()
        assert status["events"]["rejected_by_reason"]["type"] == 1 and status["upstream_gaps"]["count"] == 0
    finally:
        raw.close()


def test_nan_and_infinity_are_refused_not_turned_into_null(gateway: Gateway) -> None:
    raw = RawProducer(gateway.ingest, producer="core3")
    try:
        with connect(gateway.ws_url) as ws:
            assert recv_json(ws)["type"] == "gateway.hello"
            wait_for(lambda: gateway.status()["clients"]["count"] == 1, what="the client joined")
            raw.send(1)
            raw.send_raw(2, {"x": math.nan})
            raw.send_raw(3, {"x": [1.0, {"y": -math.inf}]})
            raw.send(4)
            got = [recv_json(ws) for _ in range(2)]
            assert [(m["id"], m["seq"]) for m in got] == [("core3:1", 1), ("core3:4", 2)], got
        status = gateway.status()
        assert status["events"]["rejected_by_reason"]["payload"] == 2 and status["upstream_gaps"]["count"] == 0
    finally:
        raw.close()
