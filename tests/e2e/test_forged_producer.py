"""A forged producer id cannot silence the real producer, over real ZeroMQ into a real gatewayd.

Producer ids are public.  A forger sends ``producer=<Core's id>, pseq=2**64-1``:
- with CURVE, the id is bound to the client key that first used it (and the
  binding persists in ``--state-dir``): the forger's message is rejected
  (``producer_key``) and Core goes on as if nothing happened, also after a restart;
- without CURVE, Core's next event is a backwards jump beyond any re-send: a
  producer reset, reported (``gateway.gap`` upstream, ``reset: true``) and
  delivered, never dropped as a duplicate — also across a restart with ``--state-dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zmq.auth
from websockets.sync.client import connect

from tests.conftest import Gateway, wait_for
from tests.e2e.test_data_path import recv_json
from tests.rawingest import RawProducer

FORGED = 2**64 - 1


def events_after_hello(gateway: Gateway, n: int, since: int) -> list[dict[str, Any]]:
    with connect(f"{gateway.ws_url}?since={since}") as ws:
        assert recv_json(ws)["type"] == "gateway.hello"
        return [recv_json(ws) for _ in range(n)]


def test_without_curve_a_forged_pseq_is_a_reported_reset_not_silent_duplicates(gateway_factory, tmp_path) -> None:
    gateway: Gateway = gateway_factory("--state-dir", str(tmp_path / "state"))
    core, forger = RawProducer(gateway.ingest, producer="core"), RawProducer(gateway.ingest, producer="core")
    try:
        for pseq in (1, 2):
            core.send(pseq)
        wait_for(lambda: gateway.status()["seq"] == 2, what="core's first events")
        forger.send(FORGED)
        wait_for(lambda: gateway.status()["seq"] == 3, what="the forged event")
        core.send(3)
        core.send(4)
        wait_for(lambda: gateway.status()["seq"] == 5, what="core's events after the forgery")
    finally:
        forger.close()
    got = events_after_hello(gateway, 5, since=2)
    assert got[0]["type"] == "gateway.gap" and got[0]["missed"] == FORGED - 3  # the forgery: a loss, reported
    assert got[1]["id"] == f"core:{FORGED}"
    assert got[2] == {
        "type": "gateway.gap",
        "reason": "upstream",
        "producer": "core",
        "missed": 0,
        "seq": 4,
        "reset": True,
    }
    assert [m["id"] for m in got[3:5]] == ["core:3", "core:4"]
    assert gateway.status()["upstream_gaps"]["producer_resets"] == 1
    # Across a restart the restored position is Core's own: its next event is in order.
    core.close()
    assert gateway.stop() == 0
    gateway.start()
    core = RawProducer(gateway.ingest, producer="core")
    try:
        core.send(5)
        wait_for(lambda: gateway.status()["seq"] == 6, what="core's event after the restart")
    finally:
        core.close()
    [event] = events_after_hello(gateway, 1, since=5)
    assert (event["id"], event["seq"]) == ("core:5", 6)
    status = gateway.status()
    assert status["events"]["duplicate"] == 0 and status["upstream_gaps"]["producer_resets"] == 0


def test_with_curve_a_producer_id_belongs_to_its_first_key_across_restarts(gateway_factory, tmp_path: Path) -> None:
    keys, clients = tmp_path / "keys", tmp_path / "clients"
    keys.mkdir()
    clients.mkdir()
    server_public, _ = zmq.auth.load_certificate(zmq.auth.create_certificates(keys, "gateway")[1])
    server_secret_file = str(keys / "gateway.key_secret")
    pairs = {}
    for name in ("core", "forger"):
        public_file, secret_file = zmq.auth.create_certificates(keys, name)
        Path(public_file).rename(clients / f"{name}.key")  # both are allowed to publish
        pairs[name] = zmq.auth.load_certificate(secret_file)
    gateway: Gateway = gateway_factory(
        "--curve-key-file", server_secret_file, "--curve-clients-dir", str(clients), "--state-dir", str(tmp_path / "s")
    )

    def producer(name: str) -> RawProducer:
        public, secret = pairs[name]
        assert secret is not None
        return RawProducer(gateway.ingest, producer="core", curve=(server_public, (public, secret)))

    core, forger = producer("core"), producer("forger")
    try:
        core.send(1)
        wait_for(lambda: gateway.status()["seq"] == 1, what="core's first event")
        forger.send(FORGED)
        wait_for(lambda: gateway.status()["events"]["rejected_by_reason"]["producer_key"] == 1, what="refused")
        core.send(2)
        wait_for(lambda: gateway.status()["seq"] == 2, what="core's next event")
    finally:
        core.close()
        forger.close()
    got = events_after_hello(gateway, 2, since=0)
    assert [(m["type"], m["id"]) for m in got] == [("task.progress", "core:1"), ("task.progress", "core:2")]
    assert gateway.stop() == 0
    assert (tmp_path / "s" / "producer-keys.json").exists()
    gateway.start()
    forger = producer("forger")  # first after the restart: the binding was persisted
    core = producer("core")
    try:
        forger.send(FORGED)
        wait_for(lambda: gateway.status()["events"]["rejected_by_reason"]["producer_key"] == 1, what="refused")
        core.send(3)
        wait_for(lambda: gateway.status()["seq"] == 3, what="core's event after the restart")
    finally:
        core.close()
        forger.close()
    [event] = events_after_hello(gateway, 1, since=2)
    assert (event["id"], event["seq"]) == ("core:3", 3)
    assert gateway.status()["upstream_gaps"]["count"] == 0
