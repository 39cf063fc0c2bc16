"""Operating a cluster node: its state in ``/metrics``, retention options applied to an existing stream.

Real ``nats-server`` (JetStream) and real ``gatewayd`` processes on loopback.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import closing
from typing import Any

import nats

from tests.cluster.conftest import NodeFactory
from tests.conftest import Gateway, wait_for
from tests.natsservers import NatsCluster
from tests.rawingest import RawProducer
from tests.scrape import gateway_series, scrape_when, value

REASONS = (
    "connecting",
    "unreachable",
    "disconnected",
    "jetstream_unavailable",
    "catching_up",
    "publish_failed",
    "other",
)


def degraded(series: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {r: value(series, "event_gateway_cluster_degraded", reason=r) for r in REASONS}


def test_metrics_show_the_node_state_and_why_it_is_degraded(nats1: NatsCluster, node_factory: NodeFactory) -> None:
    a = node_factory(nats1, "--cluster-max-events", "5000")
    with closing(RawProducer(a.ingest, producer="metric01")) as producer:
        check_metrics(a, producer, nats1)


def check_metrics(a: Gateway, producer: RawProducer, nats1: NatsCluster) -> None:
    for pseq in range(1, 21):
        producer.send(pseq)
    wait_for(lambda: a.status()["seq"] == 20, 10, "20 events sequenced")
    healthy = scrape_when(
        a,
        lambda s: (
            value(s, "event_gateway_cluster_lag_records") == 0
            and value(s, "event_gateway_cluster_stream_first_seq") == 1
        ),
        "the node caught up",
    )
    applied = value(healthy, "event_gateway_cluster_applied_seq")
    assert value(healthy, "event_gateway_cluster_connected") == 1
    assert set(degraded(healthy).values()) == {0}
    assert value(healthy, "event_gateway_cluster_stream_last_seq") == applied
    assert value(healthy, "event_gateway_cluster_stream_first_seq") == 1
    assert value(healthy, "event_gateway_cluster_records_applied_total") == applied
    assert value(healthy, "event_gateway_cluster_records_published_total") == applied
    assert value(healthy, "event_gateway_cluster_events_published_total") == 20
    assert value(healthy, "event_gateway_cluster_oldest_seq") == 1
    assert value(healthy, "event_gateway_cluster_pending_events") == 0
    assert value(healthy, "event_gateway_cluster_pending_capacity_events") == 200_000
    assert value(healthy, "event_gateway_cluster_replaying_clients") == 0
    assert value(healthy, "event_gateway_cluster_epoch_changes_total") == 0
    assert value(healthy, "event_gateway_cluster_records_decoded_total") == 0  # its own: applied as published

    nats1.servers[0].kill9()
    lost = scrape_when(a, lambda s: value(s, "event_gateway_cluster_connected") == 0, "the node sees NATS gone")
    for pseq in range(21, 31):
        producer.send(pseq)
    lost = scrape_when(a, lambda s: value(s, "event_gateway_cluster_pending_events") == 10, "10 events held")
    reasons = degraded(lost)
    assert sum(reasons.values()) == 1, reasons
    assert reasons["disconnected"] == 1 or reasons["jetstream_unavailable"] == 1, reasons
    assert gateway_series(healthy) == gateway_series(lost)  # a fixed set of series, healthy or not
    assert value(lost, "event_gateway_seq") == 20


async def _stream_config(urls: str, name: str) -> tuple[int | None, float | None, int | None]:
    nc = await nats.connect(servers=urls.split(","))
    config = (await nc.jetstream().stream_info(name)).config
    await nc.close()
    return config.max_msgs, config.max_age, config.num_replicas


def logged(gw: Gateway, event: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gw.logs().splitlines() if f'"{event}"' in line]


def test_retention_options_changed_are_applied_to_the_existing_stream_at_start(
    nats1: NatsCluster, node_factory: NodeFactory
) -> None:
    a = node_factory(nats1, "--cluster-max-events", "1000", "--cluster-max-age", "1h")
    assert asyncio.run(_stream_config(nats1.urls, "EVENT_GATEWAY")) == (1000, 3600.0, 1)
    assert logged(a, "cluster.stream_created") and not logged(a, "cluster.stream_updated")
    b = node_factory(nats1, "--cluster-max-events", "500", "--cluster-max-age", "90m")
    assert asyncio.run(_stream_config(nats1.urls, "EVENT_GATEWAY")) == (500, 5400.0, 1)
    [updated] = logged(b, "cluster.stream_updated")
    assert updated["before"] == {"max_msgs": 1000, "max_age": 3600.0}
    assert updated["after"] == {"max_msgs": 500, "max_age": 5400.0}
    c = node_factory(nats1, "--cluster-max-events", "500", "--cluster-max-age", "90m", "--cluster-replicas", "3")
    [updated] = logged(c, "cluster.stream_updated")
    assert (updated["before"], updated["after"]) == ({"num_replicas": 1}, {"num_replicas": 3})
    assert asyncio.run(_stream_config(nats1.urls, "EVENT_GATEWAY")) == (500, 5400.0, 3)
    assert not logged(c, "cluster.stream_update_failed") and c.status()["cluster"]["problem"] is None


def test_stream_options_jetstream_refuses_are_logged_and_the_stream_is_used_as_it_is(
    nats3: NatsCluster, node_factory: NodeFactory
) -> None:
    node_factory(nats3, "--cluster-replicas", "3")
    b = node_factory(nats3, "--cluster-replicas", "5")  # more copies than NATS servers
    [refused] = logged(b, "cluster.stream_update_failed")
    assert refused["wanted"] == {"num_replicas": 5} and refused["error"], refused
    assert not logged(b, "cluster.stream_updated")
    assert asyncio.run(_stream_config(nats3.urls, "EVENT_GATEWAY"))[2] == 3
    assert b.status()["cluster"]["problem"] is None
