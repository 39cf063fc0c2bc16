"""Cluster edge cases with real processes: JetStream trimming what a replay is reading; rejected events.

Real ``nats-server`` (JetStream) and real ``gatewayd`` processes on loopback.
"""

from __future__ import annotations

import asyncio
from contextlib import closing

import nats
import pytest

from tests.cluster.conftest import NodeFactory
from tests.cluster.support import FanProducer, Recorder
from tests.conftest import wait_for
from tests.natsservers import NatsCluster
from tests.rawingest import RawProducer
from tests.rawws import RawWs, assert_covers


async def _purge_below(urls: str, name: str, sseq: int) -> None:
    nc = await nats.connect(servers=urls.split(","))
    await nc.jetstream().purge_stream(name, seq=sseq)
    await nc.close()


@pytest.mark.parametrize("seen", [True, False], ids=["trim-seen-by-the-probe", "trim-found-by-the-read"])
def test_a_range_trimmed_during_a_replay_is_an_evicted_gap_up_to_the_streams_oldest_record(
    nats1: NatsCluster, node_factory: NodeFactory, seen: bool
) -> None:
    # 120 events of 300 KB: one per record (512 KiB at most), 36 MB in the stream, the last 10 in the ring.
    a = node_factory(nats1, "--ring-size", "10")
    with closing(RawProducer(a.ingest, producer="trimrd01")) as producer:
        for pseq in range(1, 121):
            producer.send_raw(pseq, {"blob": "x" * 300_000})
        wait_for(lambda: a.status()["seq"] == 120, 30, "120 events sequenced")
    status = a.status()
    assert status["ring"]["oldest"] == 111 and status["cluster"]["oldest_seq"] == 1
    last_sseq = status["cluster"]["stream_last_seq"]
    # A client that reads nothing: the replay stops after its first read of 32 records (9.6 MB
    # against a 4 KB receive buffer), far before what JetStream now trims.
    client = RawWs(f"{a.ws_url}?since=0&epoch={status['epoch']}", rcvbuf=4096)
    wait_for(lambda: a.status()["cluster"]["replaying_clients"] == 1, 10, "the client replayed from the stream")
    asyncio.run(_purge_below(nats1.urls, "EVENT_GATEWAY", last_sseq - 19))  # keeps the last 20 records
    if seen:  # else the replay's next read most likely finds the records gone before the probe does
        wait_for(lambda: a.status()["cluster"]["oldest_seq"] == 101, 10, "the node sees the stream trimmed")
    messages = client.read_until(lambda ms: any(m.get("seq") == 120 and "payload" in m for m in ms), 60)
    client.close()
    hello, *rest = messages
    assert hello["type"] == "gateway.hello"
    seqs = assert_covers(rest, 0, 120)  # every seq once, as an event or inside a gap
    [gap] = [m for m in rest if m["type"] == "gateway.gap"]
    assert gap["reason"] == "evicted" and gap["from"] <= 40, gap  # trimmed while it was being read
    assert gap["to"] == 100, gap  # the stream's oldest record is 101, not the ring's 111
    assert seqs[-20:] == list(range(101, 121))


def test_a_rejected_event_takes_its_pseq_on_every_node_no_false_gap_no_false_duplicate(
    nats1: NatsCluster, node_factory: NodeFactory
) -> None:
    a, b = node_factory(nats1), node_factory(nats1)
    clients = [Recorder(a.ws_url), Recorder(b.ws_url)]
    nodes = (a, b)

    def total(field: str) -> int:
        return sum(n.status()["events"][field] for n in nodes)

    fan = FanProducer([a.ingest, b.ingest], producer="reject01")  # every message reaches both nodes
    try:
        for pseq in (1, 2, 3):
            fan.send(pseq)
        fan.send(4, event_type="gateway.forged")  # reserved: rejected, takes pseq 4
        fan.send(4, event_type="gateway.forged")  # its re-send: a duplicate
        fan.send(5)
        fan.send(6, event_type="gateway.forged")  # rejected, the last message for now
        # both nodes planned everything: each message entered the stream once (one node counts
        # the rejection or event, the other finds it a duplicate), so 6 is in the stream alone
        wait_for(lambda: (total("rejected"), total("duplicate")) == (2, 4 + 1 + 2 + 1), 15, "2 rejected, 8 duplicates")
        fan.send(7)
        fan.send(9, event_type="gateway.forged")  # 8 lost upstream, revealed by a rejected event
        fan.send(10)
        for client in clients:
            client.wait_events(6)
        wait_for(lambda: (total("rejected"), total("duplicate")) == (3, 8 + 3), 15, "3 rejected, 11 duplicates")
    finally:
        fan.close()
    for client in clients:
        client.stop()
    assert clients[0].frames[1:] == clients[1].frames[1:]  # the same bytes on both nodes
    messages = clients[0].messages()[1:]
    events = [m for m in messages if m["type"] != "gateway.gap"]
    assert [(e["seq"], e["payload"]["pseq"]) for e in events] == [(1, 1), (2, 2), (3, 3), (4, 5), (5, 7), (6, 10)]
    gaps = [m for m in messages if m["type"] == "gateway.gap"]
    assert gaps == [{"type": "gateway.gap", "reason": "upstream", "producer": "reject01", "missed": 1, "seq": 6}]
    for node in nodes:
        status = node.status()
        assert status["upstream_gaps"]["missed"] == 1, status["upstream_gaps"]
        [producer] = [p for p in status["producers"]["recent"] if p["id"] == "reject01"]
        assert (producer["last_seq"], producer["rejected"], producer["missed"]) == (10, 3, 1), producer


def test_a_producer_restarting_its_numbering_is_a_reset_on_every_node_not_duplicates(
    nats1: NatsCluster, node_factory: NodeFactory
) -> None:
    a, b = node_factory(nats1), node_factory(nats1)
    clients = [Recorder(a.ws_url), Recorder(b.ws_url)]
    with closing(RawProducer(a.ingest, producer="restart1")) as producer:
        producer.send(20_000)
        wait_for(lambda: a.status()["seq"] == b.status()["seq"] == 1, 10, "the first event on both nodes")
        for pseq in (1, 2):  # an emitter restarted under the same id: numbering from 1 again
            producer.send(pseq)
        for client in clients:
            client.wait_events(3)
            client.stop()
    assert clients[0].frames[1:] == clients[1].frames[1:]
    messages = clients[0].messages()[1:]
    assert [m.get("payload", {}).get("pseq") for m in messages] == [20_000, None, 1, 2]
    assert messages[1] == {
        "type": "gateway.gap",
        "reason": "upstream",
        "producer": "restart1",
        "missed": 0,
        "seq": 2,
        "reset": True,
    }
    for node in (a, b):
        assert node.status()["upstream_gaps"]["producer_resets"] == 1
