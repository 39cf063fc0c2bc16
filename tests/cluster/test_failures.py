"""Cluster failures with real processes: a gateway node killed, a NATS server killed, quorum lost.

Producers send every event to both nodes' ingest (as a multi-endpoint Emitter
does); clients hold the list of nodes and resume on the next one after any
disconnect.  What is checked is the contract: every seq exactly once per
client, or reported in a gap; nothing lost while JetStream keeps a quorum.
"""

from __future__ import annotations

import asyncio

import nats

from tests.cluster.conftest import NodeFactory
from tests.cluster.support import FailoverClient, PacedSender
from tests.conftest import Gateway, http_get, wait_for
from tests.natsservers import NatsCluster


def seqs_exactly_once(client: FailoverClient, upto: int) -> None:
    start = client.hellos[0]["seq"]
    assert [e["seq"] for e in client.events()] == list(range(start + 1, upto + 1))
    assert client.gaps() == []
    assert len({e["id"] for e in client.events()}) == upto - start


def settle(sender: PacedSender, nodes: list[Gateway], timeout: float = 30.0) -> int:
    """Stop sending; wait until every live node has sequenced every sent event once."""
    sent = sender.finish()
    wait_for(lambda: all(n.status()["seq"] == sent for n in nodes), timeout, f"{sent} events on {len(nodes)} nodes")
    return sent


def test_kill9_a_node_during_1000_events_per_second_its_clients_resume_on_the_other(
    nats1: NatsCluster, node_factory: NodeFactory
) -> None:
    a, b = node_factory(nats1), node_factory(nats1)
    clients = [FailoverClient([a.ws_url, b.ws_url]) for _ in range(3)]
    sender = PacedSender([a.ingest, b.ingest], rate=1000)
    wait_for(lambda: all(len(c.events()) >= 1500 for c in clients), 20, "1.5 s of events at every client")
    a.kill9()
    wait_for(lambda: all(len(c.hellos) >= 2 for c in clients), 10, "every client resumed on the other node")
    wait_for(lambda: all(len(c.events()) >= 3000 for c in clients), 20, "events after the failover")
    sent = settle(sender, [b])
    wait_for(lambda: all(c.last_seq == sent for c in clients), 20, "every client at the last seq")
    for client in clients:
        client.stop()
        seqs_exactly_once(client, sent)
    assert b.status()["upstream_gaps"]["count"] == 0


def stream_leader(cluster: NatsCluster, name: str) -> str:
    async def ask() -> str:
        nc = await nats.connect(servers=cluster.urls.split(","))
        info = await nc.jetstream().stream_info(name)
        await nc.close()
        assert info.cluster is not None and info.cluster.leader is not None
        return info.cluster.leader

    return asyncio.run(ask())


def test_replicas_3_kill9_the_stream_leader_during_ingest_loses_nothing(
    nats3: NatsCluster, node_factory: NodeFactory
) -> None:
    a, b = node_factory(nats3, "--cluster-replicas", "3"), node_factory(nats3, "--cluster-replicas", "3")
    client = FailoverClient([b.ws_url, a.ws_url])
    sender = PacedSender([a.ingest, b.ingest], rate=1000)
    wait_for(lambda: len(client.events()) >= 1000, 20, "events flowing")
    leader = stream_leader(nats3, "EVENT_GATEWAY")
    next(s for s in nats3.servers if s.name == leader).kill9()
    head = b.status()["seq"]
    wait_for(lambda: b.status()["seq"] >= head + 1000, 30, "ingest goes on with two of three servers")
    sent = settle(sender, [a, b])
    wait_for(lambda: client.last_seq == sent, 20, "the client at the last seq")
    client.stop()
    seqs_exactly_once(client, sent)
    for node in (a, b):
        wait_for(lambda n=node: n.status()["cluster"]["problem"] is None, 10, "the node healthy again")


def test_quorum_lost_then_back_degraded_meanwhile_then_everything_delivered(
    nats3: NatsCluster, node_factory: NodeFactory
) -> None:
    a, b = node_factory(nats3, "--cluster-replicas", "3"), node_factory(nats3, "--cluster-replicas", "3")
    client = FailoverClient([a.ws_url, b.ws_url])
    sender = PacedSender([a.ingest, b.ingest], rate=300)
    wait_for(lambda: len(client.events()) >= 300, 20, "events flowing")
    lost = nats3.servers[1:]
    for server in lost:
        server.stop()
    for node in (a, b):
        wait_for(lambda n=node: http_get(n.url + "/healthz")[0] == 503, 15, "/healthz 503 without a quorum")
        assert n_problem(node)
    during = sender.sent
    wait_for(lambda: sender.sent >= during + 2000, 15, "Core keeps emitting into the degraded nodes")
    assert all(n.status()["cluster"]["pending"] > 0 for n in (a, b)), "held for the stream, not dropped"
    for server in lost:
        server.start()
    for node in (a, b):
        wait_for(lambda n=node: http_get(n.url + "/healthz")[0] == 200, 30, "healthy again with the quorum back")
    sent = settle(sender, [a, b], timeout=40)
    wait_for(lambda: client.last_seq == sent, 20, "the client at the last seq")
    client.stop()
    seqs_exactly_once(client, sent)


def n_problem(node: Gateway) -> str:
    problem: str = node.status()["cluster"]["problem"]
    return problem
