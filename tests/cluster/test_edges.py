"""Cluster edge cases with real processes: JetStream trimming what a replay is reading.

Real ``nats-server`` (JetStream) and real ``gatewayd`` processes on loopback.
"""

from __future__ import annotations

import asyncio
from contextlib import closing

import nats
import pytest

from tests.cluster.conftest import NodeFactory
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
