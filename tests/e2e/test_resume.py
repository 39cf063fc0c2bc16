"""Resume, eviction, epochs and filters through a real gatewayd, real ZeroMQ and real WebSockets.

Each test emits through the SDK (in this process, as Core would), then connects
a ``websockets`` client with ``since``/``epoch``/filters and checks exactly what
it is sent: the hello, any gap, and every event once, in seq order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from websockets.sync.client import ClientConnection, connect

from emitter_sdk import Emitter
from tests.conftest import Gateway, wait_for
from tests.e2e.test_data_path import recv_json


@contextmanager
def emitter(gateway: Gateway, **kw: Any) -> Iterator[Emitter]:
    em = Emitter(gateway.ingest, **kw)
    try:
        assert em.wait_subscribed(10), "gateway never subscribed"
        yield em
    finally:
        em.close()


def emit_n(gateway: Gateway, em: Emitter, n: int, type_: str = "task.progress", entity: str = "t") -> None:
    head = gateway.status()["seq"]
    for i in range(n):
        em.emit(type_, entity=("task", entity), payload={"i": i})
    assert em.flush(10)
    wait_for(lambda: gateway.status()["seq"] >= head + n, 15, f"{n} events sequenced")


def recv_until(ws: ClientConnection, done: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not done(got):
        assert time.monotonic() < deadline, f"timed out with {len(got)} messages"
        got.append(recv_json(ws, timeout=max(0.1, deadline - time.monotonic())))
    return got


def test_resume_replays_exactly_the_missed_events_then_live_while_another_producer_emits(
    gateway: Gateway,
) -> None:
    stop = threading.Event()
    with emitter(gateway) as first:
        emit_n(gateway, first, 500)
        first_producer = first.producer
    with emitter(gateway) as second:

        def keep_emitting() -> None:
            while not stop.is_set():
                second.emit("task.progress", entity=("task", "other"), payload={})
                stop.wait(0.0005)  # paced, and ends as soon as the test says so

        thread = threading.Thread(target=keep_emitting)
        thread.start()
        try:
            wait_for(lambda: gateway.status()["seq"] > 600, 15, "the second producer running")
            with connect(gateway.ws_url + "?since=200", max_size=None) as ws:
                hello = recv_json(ws)
                assert hello["type"] == "gateway.hello" and hello["seq"] > 600 and hello["oldest"] == 1
                got = recv_until(ws, lambda g: len(g) >= hello["seq"] - 200 + 300)
                stop.set()
                thread.join()
                assert second.flush(10)
                final = 500 + second.stats.queued
                wait_for(lambda: gateway.status()["seq"] == final, 10, "every event of the second producer")
                got += recv_until(ws, lambda g: len(g) >= final - 200 - len(got))
        finally:
            stop.set()
            thread.join()
    assert all(m["type"] == "task.progress" for m in got), [m for m in got if m["type"] != "task.progress"][:3]
    assert [m["seq"] for m in got] == list(range(201, 201 + len(got)))  # no hole, no duplicate
    assert [m["id"] for m in got[:300]] == [f"{first_producer}:{p}" for p in range(201, 501)]
    assert {m["id"].split(":")[0] for m in got[300:]} == {second.producer}
    assert len(got) > hello["seq"] - 200  # events that arrived during the replay came live after it


def test_resume_older_than_the_ring_is_an_evicted_gap_then_the_oldest_held(gateway_factory) -> None:
    gateway = gateway_factory("--ring-size", "100")
    with emitter(gateway) as em:
        emit_n(gateway, em, 300)
    with connect(gateway.ws_url + "?since=5") as ws:
        hello = recv_json(ws)
        assert (hello["seq"], hello["oldest"]) == (300, 201)
        assert recv_json(ws) == {"type": "gateway.gap", "reason": "evicted", "from": 6, "to": 200}
        assert [recv_json(ws)["seq"] for _ in range(100)] == list(range(201, 301))
    with connect(gateway.ws_url + f"?since=250&epoch=not-{hello['epoch']}") as ws:
        assert recv_json(ws)["epoch"] == hello["epoch"]
        assert recv_json(ws) == {"type": "gateway.gap", "reason": "epoch", "from": 1, "to": 200}
        assert [recv_json(ws)["seq"] for _ in range(100)] == list(range(201, 301))
    with connect(gateway.ws_url + f"?since=300&epoch={hello['epoch']}") as ws:
        recv_json(ws)
        with emitter(gateway) as em:
            em.emit("task.done", payload={})
            assert recv_json(ws)["seq"] == 301  # our own epoch, up to date: live, no gap


def test_filters_select_exactly_the_matching_events_on_replay_and_live(gateway: Gateway) -> None:
    def burst(em: Emitter) -> None:
        for i in range(20):
            em.emit("task.progress", entity=("task", "abc" if i % 2 else "xyz"), payload={"i": i})
            em.emit("task.started", entity=("task", "abc"), payload={"i": i})
            em.emit("provider.status_changed", entity=("provider", "abc"), payload={"i": i})
            em.emit("selfcheck.progress", payload={"i": i})
        assert em.flush(10)

    def matching(msgs: list[dict[str, Any]], types: bool) -> list[int]:
        return [
            m["seq"]
            for m in msgs
            if (m["type"].startswith("task.") if types else m["entity"] == {"kind": "task", "id": "abc"})
        ]

    with emitter(gateway) as em:
        burst(em)  # seqs 1..80, replayed
        wait_for(lambda: gateway.status()["seq"] == 80, 10, "first burst")
        with (
            connect(gateway.ws_url + "?since=0&types=task.*") as by_type,
            connect(gateway.ws_url + "?since=0&entity=task:abc") as by_entity,
            connect(gateway.ws_url + "?since=0") as everything,
        ):
            for ws in (by_type, by_entity, everything):
                recv_json(ws)
            burst(em)  # seqs 81..160, live
            all_msgs = recv_until(everything, lambda g: len(g) == 160)
            want_type, want_entity = matching(all_msgs, True), matching(all_msgs, False)
            assert len(want_type) == 80 and len(want_entity) == 60
            got_type = recv_until(by_type, lambda g: len(g) == len(want_type))
            got_entity = recv_until(by_entity, lambda g: len(g) == len(want_entity))
    assert [m["seq"] for m in got_type] == want_type
    assert [m["seq"] for m in got_entity] == want_entity
    assert {m["seq"] <= 80 for m in got_type} == {True, False}  # both replay and live were filtered
