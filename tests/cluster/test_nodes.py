"""Two gateway nodes on one JetStream stream: the same bytes everywhere, resume from the stream, epochs.

Real ``nats-server`` (JetStream) and real ``gatewayd`` processes on loopback.
"""

from __future__ import annotations

import asyncio
import json

import nats

from emitter_sdk import Emitter
from tests.cluster.conftest import NodeFactory
from tests.cluster.support import FanProducer, Recorder
from tests.conftest import wait_for
from tests.natsservers import NatsCluster
from tests.rawingest import RawProducer


def test_two_nodes_send_the_same_events_and_gaps_byte_for_byte(nats1: NatsCluster, node_factory: NodeFactory) -> None:
    a, b = node_factory(nats1), node_factory(nats1)
    clients = [Recorder(a.ws_url), Recorder(b.ws_url), Recorder(a.ws_url + "?types=task.started")]
    clients.append(Recorder(b.ws_url + "?types=task.started"))
    fan = FanProducer([a.ingest, b.ingest])  # every event reaches both nodes: each must enter once
    only_b = RawProducer(b.ingest, producer="onlyb001")
    for pseq in [*range(1, 51), *range(60, 101), 55]:  # 51..59 lost upstream; 55 a straggler
        fan.send(pseq)
        if pseq % 10 == 0:
            only_b.send(pseq // 10, event_type="task.started", entity=("task", f"b{pseq}"))
    only_b.send(12, event_type="task.started")  # 11 lost upstream
    total = 91 + 11
    for client in clients[:2]:
        client.wait_events(total)
    for client in clients[2:]:
        client.wait_events(11)
    wait_for(lambda: a.status()["seq"] == b.status()["seq"] == total, 10, "both nodes at the same seq")
    for client in clients:
        client.stop()
    assert clients[0].frames[1:] == clients[1].frames[1:]  # all but the hello: byte for byte
    assert clients[2].frames[1:] == clients[3].frames[1:]
    messages = clients[0].messages()[1:]
    events = [m for m in messages if m["type"] != "gateway.gap"]
    assert [e["seq"] for e in events] == list(range(1, total + 1))
    assert len({e["id"] for e in events}) == total
    gaps = [m for m in messages if m["type"] == "gateway.gap"]
    assert sorted((g["producer"], g["missed"]) for g in gaps) == [("fan00001", 9), ("onlyb001", 1)]
    assert [m for m in clients[2].messages() if m["type"] == "gateway.gap"] == gaps  # upstream gaps for all
    status_a, status_b = a.status(), b.status()
    assert status_a["epoch"] == status_b["epoch"]
    assert status_a["upstream_gaps"]["missed"] == status_b["upstream_gaps"]["missed"] == 10
    assert status_a["cluster"]["applied_seq"] == status_b["cluster"]["applied_seq"] > 0
    assert status_a["cluster"]["lag"] == 0
    for this, other in ((status_a["cluster"], status_b["cluster"]), (status_b["cluster"], status_a["cluster"])):
        assert this["records_decoded"] == other["records_published"]  # its own records are not decoded
        assert this["records_applied"] == this["records_decoded"] + this["records_published"] > 0
    fan.close()
    only_b.close()


def test_an_emitter_connected_to_both_nodes_puts_each_event_in_the_stream_once(
    nats1: NatsCluster, node_factory: NodeFactory
) -> None:
    a, b = node_factory(nats1), node_factory(nats1)
    clients = [Recorder(a.ws_url), Recorder(b.ws_url)]
    with Emitter([a.ingest, b.ingest]) as em:
        assert em.wait_subscribed(10)
        for i in range(2000):
            em.emit("task.progress", entity=("task", f"t{i % 5}"), payload={"i": i})
        assert em.flush(10)
        wait_for(lambda: a.status()["seq"] == b.status()["seq"] == 2000, 15, "2000 events on both nodes")
        assert em.stats.dropped == 0
    for client in clients:
        events = client.wait_events(2000)
        client.stop()
        assert [e["payload"]["i"] for e in events] == list(range(2000))
        assert [e["seq"] for e in events] == list(range(1, 2001))
    assert clients[0].frames[1:] == clients[1].frames[1:]
    # Each event reached both nodes and entered the stream once: the node that did not
    # carry it drops it as a duplicate, once its writer has caught up with the stream.
    wait_for(
        lambda: a.status()["events"]["duplicate"] + b.status()["events"]["duplicate"] == 2000,
        15,
        "every event dropped once as a duplicate by the node that did not carry it",
    )


def test_resume_older_than_the_ring_but_inside_the_stream_has_no_hole(
    nats1: NatsCluster, node_factory: NodeFactory
) -> None:
    a = node_factory(nats1, "--ring-size", "100")
    producer = RawProducer(a.ingest, producer="resume01")
    for pseq in range(1, 1001):
        producer.send(pseq, entity=("task", f"t{pseq % 3}"))
    wait_for(lambda: a.status()["seq"] == 1000, 15, "1000 events")
    assert a.status()["ring"]["oldest"] == 901
    epoch = a.status()["epoch"]
    b = node_factory(nats1, "--ring-size", "100")  # a node that joined later: same history
    everything = Recorder(f"{b.ws_url}?since=10&epoch={epoch}")
    filtered = Recorder(f"{a.ws_url}?since=0&epoch={epoch}&entity=task:t1")
    for pseq in range(1001, 1051):
        producer.send(pseq, entity=("task", f"t{pseq % 3}"))
    events = everything.wait_events(1040)
    assert [e["seq"] for e in events] == list(range(11, 1051))
    assert not [m for m in everything.messages() if m["type"] == "gateway.gap"]
    hello = everything.messages()[0]
    assert hello["type"] == "gateway.hello" and hello["oldest"] == 1
    picked = filtered.wait_events(350)
    assert [e["seq"] for e in picked] == [s for s in range(1, 1051) if s % 3 == 1]
    everything.stop()
    filtered.stop()
    producer.close()


def test_the_stream_keeps_about_max_events_and_an_older_resume_is_an_evicted_gap(
    nats1: NatsCluster, node_factory: NodeFactory
) -> None:
    a = node_factory(nats1, "--ring-size", "100", "--cluster-max-events", "500")
    producer = RawProducer(a.ingest, producer="trim0001")
    for burst in range(40):
        for pseq in range(burst * 50 + 1, burst * 50 + 51):
            producer.send(pseq)
        wait_for(lambda b=burst: a.status()["seq"] == b * 50 + 50, 10, "the burst sequenced")
    cluster = a.status()["cluster"]
    assert 2000 - 500 - 64 - 50 < cluster["oldest_seq"] <= 2000 - 500 + 1, cluster  # slack + a record
    oldest = cluster["oldest_seq"]
    client = Recorder(f"{a.ws_url}?since=0&epoch={a.status()['epoch']}")
    events = client.wait_events(2000 - oldest + 1)
    client.stop()
    hello, gap = client.messages()[:2]
    assert hello["oldest"] == oldest
    assert gap == {"type": "gateway.gap", "reason": "evicted", "from": 1, "to": oldest - 1}
    assert [e["seq"] for e in events] == list(range(oldest, 2001))
    producer.close()


async def _recreate(urls: str, name: str) -> None:
    nc = await nats.connect(servers=urls.split(","))
    js = nc.jetstream()
    await js.delete_stream(name)
    await nc.close()


def test_stream_recreated_is_a_new_epoch_with_an_epoch_gap_on_every_node(
    nats1: NatsCluster, node_factory: NodeFactory
) -> None:
    a, b = node_factory(nats1), node_factory(nats1)
    producer = RawProducer(a.ingest, producer="epoch001")
    for pseq in range(1, 21):
        producer.send(pseq)
    wait_for(lambda: a.status()["seq"] == b.status()["seq"] == 20, 10, "20 events on both nodes")
    old = a.status()["epoch"]
    live = [Recorder(a.ws_url), Recorder(b.ws_url)]
    asyncio.run(_recreate(nats1.urls, "EVENT_GATEWAY"))
    for client in live:
        assert client.done.wait(10), "clients are closed when the epoch changes"
        assert client.close_code == 1012
    wait_for(lambda: a.status()["epoch"] == b.status()["epoch"] != old, 10, "a new epoch on both nodes")
    new = a.status()["epoch"]
    resumed = [Recorder(f"{gw.ws_url}?since=20&epoch={old}") for gw in (a, b)]
    for pseq in range(21, 26):
        producer.send(pseq)
    for client in resumed:
        client.wait_events(5)
        client.stop()
    assert resumed[0].frames[1:] == resumed[1].frames[1:]
    hello, gap, *events = resumed[0].messages()
    assert hello["epoch"] == new
    assert gap == {"type": "gateway.gap", "reason": "epoch", "from": 1, "to": 0}
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert a.status()["cluster"]["epoch_changes"] == 1
    producer.close()
    assert json.dumps(a.status()["cluster"])
