"""``deploy/cluster/nginx-upstream.conf`` end to end: two nodes behind the site's nginx, one killed.

Debian's nginx runs the deploy kit's TLS site with its upstream replaced by the
cluster's (only the node addresses rewritten).  WebSocket and SSE clients
connect through nginx only; ``least_conn`` spreads them over both nodes.  One
node is killed with SIGKILL while events flow: its clients reconnect to the
same address (WebSocket with ``since``/``epoch``, SSE with ``Last-Event-ID``),
nginx sends them to the live node, and every client receives every seq once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.cluster.conftest import NodeFactory
from tests.cluster.support import FailoverClient, PacedSender, SseFailoverClient
from tests.conftest import ROOT, Gateway, wait_for
from tests.natsservers import NatsCluster
from tests.nginxsite import Nginx, rewrite

UPSTREAM = ROOT / "deploy" / "cluster" / "nginx-upstream.conf"

Client = FailoverClient | SseFailoverClient


def cluster_upstream(a: Gateway, b: Gateway) -> str:
    text = UPSTREAM.read_text()
    text = rewrite(text, "server gw-a:8765 ", f"server 127.0.0.1:{a.port} ")
    text = rewrite(text, "server gw-b:8765 ", f"server 127.0.0.1:{b.port} ")
    start = text.index("upstream event_gateway {")
    return text[start : text.index("}", start) + 1]


def clients_on(node: Gateway) -> int:
    return sum(node.status()["clients"]["by_transport"].values())


def exactly_once(client: Client, upto: int) -> None:
    start = client.hellos[0]["seq"]
    assert [e["seq"] for e in client.events()] == list(range(start + 1, upto + 1))
    assert client.gaps() == []


def test_two_nodes_behind_the_upstream_a_killed_nodes_clients_resume_on_the_other_through_nginx(
    nats1: NatsCluster, node_factory: NodeFactory, tmp_path: Path
) -> None:
    a, b = node_factory(nats1), node_factory(nats1)
    proxy = Nginx(tmp_path / "nginx", upstream=cluster_upstream(a, b))
    clients: list[Client] = []
    try:
        sender = PacedSender([a.ingest, b.ingest], rate=300)
        wss = f"wss://localhost:{proxy.https_port}/ws/events"
        # least_conn, one client at a time: each node gets one WebSocket and one SSE client.
        for make in (
            lambda: FailoverClient([wss], tls=proxy.tls()),
            lambda: FailoverClient([wss], tls=proxy.tls()),
            lambda: SseFailoverClient("localhost", proxy.https_port, proxy.tls()),
            lambda: SseFailoverClient("localhost", proxy.https_port, proxy.tls()),
        ):
            clients.append(make())
            wait_for(lambda: clients_on(a) + clients_on(b) == len(clients), 10, "the client on a node")
        for node in (a, b):
            by_transport = node.status()["clients"]["by_transport"]
            assert by_transport.get("ws") == 1 and by_transport.get("sse") == 1, by_transport
        wait_for(lambda: all(len(c.events()) >= 300 for c in clients), 20, "a second of events everywhere")
        a.kill9()
        # b counts a client before its hello reaches the client's thread: wait for both.
        wait_for(
            lambda: clients_on(b) == 4 and sum(len(c.hellos) >= 2 for c in clients) >= 2,
            20,
            "a's clients resumed on b through nginx",
        )
        head = b.status()["seq"]
        wait_for(lambda: all(c.last_seq is not None and c.last_seq >= head + 300 for c in clients), 20, "events after")
        sent = sender.finish()
        wait_for(lambda: b.status()["seq"] == sent, 20, f"{sent} events on b")
        wait_for(lambda: all(c.last_seq == sent for c in clients), 20, "every client at the last seq")
    finally:
        stop_all(clients)
        proxy.stop()
    for client in clients:
        exactly_once(client, sent)


def stop_all(clients: Sequence[Client]) -> None:
    for client in clients:
        client.stop()
