"""A node's chained publishes refused while it ingests: every event once, no false gap or duplicate.

The writer keeps up to 4 records in flight, each chained to the previous one by
``Nats-Expected-Last-Msg-Id`` (the first by ``Nats-Expected-Last-Sequence``).  Here the
test publishes a foreign message (not a record) to the stream's subject with nats-py right
after each record it sees, while the nodes drain a backlog of full records, so foreign
messages land between chained publishes: the
next link is refused (``wrong last msg id``), the rest of the chain is abandoned and its
events are planned again — with one node ingesting, and with both ingesting the same
events (each also loses positions to the other).  Real ``nats-server`` (JetStream) and
real ``gatewayd`` processes on loopback.
"""

from __future__ import annotations

import asyncio
import threading

import msgspec
import nats
import nats.errors
import pytest

from emitter_sdk import Emitter
from gateway.ports.cluster.record import Record, decode_record
from tests.cluster.conftest import NodeFactory
from tests.cluster.support import Recorder
from tests.conftest import wait_for
from tests.natsservers import NatsCluster
from tests.scrape import scrape_when, value

STREAM = "EVENT_GATEWAY"
SUBJECT = f"{STREAM}.records"
FOREIGN = b"not a record: a foreign message between two chained publishes"
#: Events per burst: with a 2 KB payload a record (512 KiB at most) holds ~250, so a burst is a
#: backlog of ~20 full records that the writer drains with 4 in flight.
BURST = 5000
PAD = "x" * 2000


class Interferer(threading.Thread):
    """Publishes a foreign message to the stream's subject right after each record a node publishes (nats-py).

    Event-driven, no pacing: the foreign message follows the record the subscription just
    saw, so it lands behind a chained record while the writer's next links are in flight.
    """

    def __init__(self, urls: str) -> None:
        super().__init__(daemon=True)
        self.urls = urls
        self.sent = 0
        self.halt = threading.Event()
        self.start()

    def run(self) -> None:
        asyncio.run(self._publish())

    async def _publish(self) -> None:
        nc = await nats.connect(servers=self.urls.split(","))
        try:
            sub = await nc.subscribe(SUBJECT)
            await nc.flush()
            while not self.halt.is_set():
                try:
                    msg = await sub.next_msg(timeout=0.1)  # a deadline, so halt is seen while the nodes are idle
                except nats.errors.TimeoutError:
                    continue
                if msg.data != FOREIGN:  # a node's record (our own messages come back too)
                    await nc.publish(SUBJECT, FOREIGN)
                    await nc.flush()
                    self.sent += 1
        finally:
            await nc.close()

    def finish(self) -> int:
        self.halt.set()
        self.join(10)
        return self.sent


async def _stream(urls: str) -> list[Record | None]:
    """Every message in the stream, in order: its record, or None for a message that is not one."""
    nc = await nats.connect(servers=urls.split(","))
    js = nc.jetstream()
    try:
        state = (await js.stream_info(STREAM)).state
        out: list[Record | None] = []
        for sseq in range(state.first_seq, state.last_seq + 1):
            data = (await js.get_msg(STREAM, sseq)).data or b""
            try:
                out.append(decode_record(data))
            except msgspec.DecodeError:
                out.append(None)
        return out
    finally:
        await nc.close()


@pytest.mark.parametrize("writers", [1, 2], ids=["one-node-ingests", "both-nodes-ingest"])
def test_a_refused_link_abandons_the_chain_and_every_event_lands_once(
    nats1: NatsCluster, node_factory: NodeFactory, writers: int
) -> None:
    nodes = [node_factory(nats1), node_factory(nats1)]  # with one writer, B only reads the stream
    ingesting = nodes[:writers]
    clients = [Recorder(node.ws_url) for node in nodes]
    interferer = Interferer(nats1.urls)

    def cluster(key: str) -> int:
        return sum(int(node.status()["cluster"][key]) for node in ingesting)

    total = 0
    try:
        with Emitter([node.ingest for node in ingesting]) as em:
            assert em.wait_subscribed(10)
            while cluster("links_refused") < 3:  # a burst or two: most foreign messages refuse a link
                assert total < 10 * BURST, f"no refused link after {total} events ({interferer.sent} foreign messages)"
                for _ in range(BURST):
                    em.emit("task.progress", entity=("task", f"t{total % 5}"), payload={"i": total, "pad": PAD})
                    total += 1
                assert em.flush(10)
                wait_for(lambda n=total: all(node.status()["seq"] == n for node in nodes), 30, f"{total} sequenced")
            assert em.stats.dropped == 0
            producer = em.producer
    finally:
        foreign = interferer.finish()

    records = asyncio.run(_stream(nats1.urls))
    assert records.count(None) == foreign  # every foreign message is in the stream, between records
    stored = [(ev.producer, ev.pseq) for r in records if r is not None for ev in r.events]
    assert stored == [(producer, pseq) for pseq in range(1, total + 1)]  # each event once, in order
    assert not [ev for r in records if r is not None for ev in r.events if ev.missed]  # no false upstream gap
    seq = 1
    for record in records:
        if record is not None:
            assert record.first_seq == seq, "records continue each other: no hole, no overlap"
            seq = record.last_seq + 1

    for client in clients:
        events = client.wait_events(total)
        client.stop()
        assert [e["seq"] for e in events] == list(range(1, total + 1))
        assert [e["payload"]["i"] for e in events] == list(range(total))
        assert not [m for m in client.messages() if m["type"] == "gateway.gap"]
    assert clients[0].frames[1:] == clients[1].frames[1:]

    for node in nodes:
        wait_for(lambda n=node: n.status()["cluster"]["bad_records"] == foreign, 10, "every foreign message skipped")
        assert node.status()["upstream_gaps"]["missed"] == 0
    # An event planned again after its chain was abandoned is not a duplicate; with two writers
    # each event reached both and entered the stream once: the other node dropped it once.
    wait_for(lambda: sum(n.status()["events"]["duplicate"] for n in nodes) == total * (writers - 1), 10, "duplicates")
    assert cluster("events_published") == total
    assert cluster("conflicts") >= cluster("links_refused") >= 3
    for node in ingesting:
        writer = node.status()["cluster"]
        assert writer["chains_abandoned"] == writer["conflicts"] + writer["publish_errors"]
        series = scrape_when(
            node,
            lambda s, w=writer: value(s, "event_gateway_cluster_chains_abandoned_total") == w["chains_abandoned"],
            "the counters in /metrics",
        )
        assert value(series, "event_gateway_cluster_links_refused_total") == writer["links_refused"]
        assert value(series, "event_gateway_cluster_publish_conflicts_total") == writer["conflicts"]
