"""``--ring-bytes``: the ring is bounded by bytes as well as events, over a real gatewayd.

Big events fill the byte bound long before ``--ring-size``; ``/status`` shows
the ring's bytes under the bound, and a client resuming from 0 gets an exact
``evicted`` gap up to ``oldest - 1`` and then every event still held.
"""

from __future__ import annotations

from websockets.sync.client import connect

from tests.conftest import ROOT, Gateway, wait_for
from tests.e2e.test_data_path import recv_json
from tests.rawingest import RawProducer

MIB = 1 << 20


def test_big_events_are_evicted_by_bytes_and_resume_stays_exact(gateway_factory) -> None:
    gateway: Gateway = gateway_factory("--ring-bytes", str(MIB), "--ring-size", "1000")
    raw = RawProducer(gateway.ingest, producer="big")
    try:
        for pseq in range(1, 41):
            raw.send_raw(pseq, {"blob": "x" * 20_000})
        wait_for(lambda: gateway.status()["seq"] == 40, what="40 events sequenced")
    finally:
        raw.close()
    ring = gateway.status()["ring"]
    assert ring["max_bytes"] == MIB and 0 < ring["bytes"] <= MIB
    assert 1 < ring["fill"] < 40 and ring["oldest"] == 40 - ring["fill"] + 1 and ring["evictions"] == 40 - ring["fill"]
    with connect(gateway.ws_url + "?since=0", max_size=None) as ws:
        hello = recv_json(ws)
        assert (hello["seq"], hello["oldest"]) == (40, ring["oldest"])
        assert recv_json(ws) == {"type": "gateway.gap", "reason": "evicted", "from": 1, "to": ring["oldest"] - 1}
        assert [recv_json(ws)["seq"] for _ in range(ring["fill"])] == list(range(ring["oldest"], 41))


def test_a_ring_bytes_below_one_mebibyte_is_refused_naming_the_option(gateway_factory) -> None:
    gateway: Gateway = gateway_factory("--ring-bytes", "1000", start=False)
    gateway.start(wait=False)
    assert gateway.proc is not None and gateway.proc.wait(10) == 2
    assert "ring" in gateway.logs() and "bytes" in gateway.logs()


def test_the_unit_bounds_the_memory_of_the_service() -> None:
    unit = (ROOT / "systemd" / "event-gateway.service").read_text().splitlines()
    assert any(line.startswith("MemoryMax=") for line in unit)
