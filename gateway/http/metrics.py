"""``GET /metrics``: Prometheus text format, read from the live counters at scrape time.

Nothing here runs per event: :class:`GatewayCollector` reads the same counters
``/status`` shows (``Stream``, ``Hub``, ``Ring``, ``Health``) when Prometheus
scrapes, so the data path pays only for the plain integer increments it already
does (plus one histogram observation per ingest batch, see ``Stream.write_latency``).

Cardinality is fixed: labels come only from small sets defined in code
(rejection reasons, slow-client policies, transports, refusal and close
reasons, a cluster node's degraded reasons) — never per client or per producer
id (producer ids change at every Core restart; per-producer detail is in
``/status``).  Each registry is built per
application (no module-level registry), with the process and platform collectors.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway import __version__
from gateway.engine.fanout import SKIPPING_POLICIES
from gateway.http.parts import (
    ADMISSION,
    AUTH,
    CLUSTER,
    HEALTH,
    HUB,
    INGEST,
    LIFECYCLE,
    SETTINGS,
    STORE,
    STREAM,
    healthy,
)
from gateway.ports.cluster.source import DEGRADED_REASONS, ClusterSource
from gateway.ports.cluster.writer import MAX_PENDING

PREFIX = "event_gateway_"
#: Transports always exported (0 when none), so the series set does not change as clients come and go.
TRANSPORTS = ("ws", "sse")


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, value=value)


def _labelled(family: CounterMetricFamily | GaugeMetricFamily, values: dict[str, int]) -> Metric:
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


class GatewayCollector(Collector):
    """Turns one gateway's counters into metric families on every scrape."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app = self.app
        stream, hub, ring, admission = app[STREAM], app[HUB], app[STREAM].ring, app[ADMISSION]
        info = GaugeMetricFamily(PREFIX + "build_info", "Gateway version (always 1).", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield _gauge("healthy", "1 while ingest is bound and HTTP serving, else 0.", int(healthy(app)))
        yield _gauge(
            "restart_needed",
            "Options changed in the config that only a restart applies.",
            len(app[LIFECYCLE].restart_needed),
        )
        yield _gauge("seq", "Latest sequence number assigned (stream offset).", stream.seq)
        yield _counter("events_accepted", "Events sequenced into the ring.", stream.accepted)
        yield _labelled(
            CounterMetricFamily(PREFIX + "events_rejected", "Ingest messages refused, by reason.", labels=["reason"]),
            stream.rejected,
        )
        yield _counter("events_duplicate", "Events dropped as already seen (producer re-sends).", stream.duplicates)
        yield _counter(
            "upstream_gaps", "Jumps in a producer's sequence (events lost before ingest).", stream.upstream_gaps
        )
        yield _counter(
            "upstream_missed_events", "Events lost between emitters and the gateway.", stream.upstream_missed
        )
        yield _counter("events_delivered", "Events written to client sockets (one per client).", hub.deliveries)
        yield _labelled(
            CounterMetricFamily(
                PREFIX + "slow_client_skipped_events",
                "Events a slow client did not receive, reported to it as gateway.gap, by policy.",
                labels=["policy"],
            ),
            {policy: hub.drops[policy] for policy in SKIPPING_POLICIES},
        )
        yield _counter("slow_client_disconnects", "Clients closed with 1013 for being too slow.", hub.slow_disconnects)
        by_kind = dict.fromkeys(TRANSPORTS, 0) | hub.count_by_kind()
        yield _labelled(
            GaugeMetricFamily(PREFIX + "clients", "Connected clients, by transport.", labels=["transport"]), by_kind
        )
        yield _gauge("clients_lagging", "Clients catching up from the ring.", len(hub.lagging))
        yield _gauge("clients_limit", "The configured max_clients.", app[SETTINGS].max_clients)
        yield _labelled(
            CounterMetricFamily(PREFIX + "clients_refused", "Subscriptions refused, by reason.", labels=["reason"]),
            admission.refused,
        )
        yield _labelled(
            CounterMetricFamily(
                PREFIX + "clients_closed_by_limit",
                "Clients closed for breaking a limit or going silent, by limit.",
                labels=["limit"],
            ),
            admission.closed_by_limit,
        )
        auth = app[AUTH].statistics()
        yield _labelled(
            CounterMetricFamily(
                PREFIX + "auth_refused", "Subscriptions refused by auth or origin, by reason.", labels=["reason"]
            ),
            auth["refused"],
        )
        yield _labelled(
            CounterMetricFamily(
                PREFIX + "auth_closed",
                "Connections closed 1008 when their credential ended, by reason.",
                labels=["reason"],
            ),
            {"expired": auth["expired"], "revoked": auth["revoked"]},
        )
        yield _gauge("ring_events", "Events held in the replay ring.", len(ring))
        yield _gauge("ring_capacity_events", "Capacity of the replay ring.", ring.capacity)
        yield _gauge("ring_bytes", "Bytes of encoded events held in the replay ring.", ring.bytes)
        yield _gauge("ring_capacity_bytes", "Byte bound of the replay ring (--ring-bytes).", ring.max_bytes)
        yield _counter("ring_evictions", "Events evicted from the ring to make room.", ring.evictions)
        yield _gauge(
            "event_loop_lag_seconds", "How late the event loop ran a 1 s timer, last sample.", app[HEALTH].loop_lag
        )
        yield _counter("internal_errors", "Ingest batches that failed unexpectedly.", app[INGEST].internal_errors)
        store = app[STORE]
        if store is not None:  # only with state_dir: the series set is fixed for the process's life
            yield _counter("state_log_fsyncs", "fsyncs of the state log.", store.fsyncs)
            yield _counter("state_log_write_errors", "Failed writes to the state log.", store.write_errors)
            yield _gauge("state_log_failed", "1 once a write error disabled the state log.", int(store.failed))
        cluster = app[CLUSTER]
        if cluster is not None:  # only with --cluster: the series set is fixed for the process's life
            yield from cluster_metrics(cluster)
        latency = stream.write_latency
        yield HistogramMetricFamily(
            PREFIX + "ingest_to_write_latency_seconds",
            "Per ingest batch: from its arrival to the end of its fan-out socket writes.",
            buckets=[("+Inf" if b == float("inf") else repr(b), n) for b, n in latency.cumulative()],
            sum_value=latency.sum,
        )


#: A cluster node's counters: metric name (``_total`` added by the exposition), help, key of
#: ``ClusterSource.statistics()``.
CLUSTER_COUNTERS = (
    (
        "cluster_pending_dropped_events",
        "Events dropped past the pending bound (reported as upstream gaps).",
        "pending_dropped",
    ),
    ("cluster_records_published", "Records this node published to the stream.", "records_published"),
    ("cluster_events_published", "Events in the records this node published.", "events_published"),
    ("cluster_publish_conflicts", "Publishes refused because another node won the position.", "conflicts"),
    (
        "cluster_links_refused",
        "Conflicts on a chained record (a later link: its predecessor was not the last record).",
        "links_refused",
    ),
    (
        "cluster_chains_abandoned",
        "Chains of unacknowledged records dropped (a conflict or a failed publish); their events planned again.",
        "chains_abandoned",
    ),
    ("cluster_publish_errors", "Publishes that failed (no quorum, timeout, unreachable).", "publish_errors"),
    ("cluster_records_applied", "Records applied here from the stream.", "records_applied"),
    ("cluster_records_decoded", "Records decoded from the stream (other nodes'; own ones are not).", "records_decoded"),
    ("cluster_bad_records", "Stream messages that were not records (skipped).", "bad_records"),
    ("cluster_epoch_changes", "Times the stream was re-created (a new epoch).", "epoch_changes"),
)


def cluster_metrics(cluster: ClusterSource) -> Iterator[Metric]:
    """A cluster node's state (``/status`` → ``cluster``): connection, health by reason, positions, writer, reader."""
    st = cluster.statistics()
    yield _gauge("cluster_connected", "1 while the node's NATS connection is up.", int(st["connected"]))
    reason = cluster.degraded_reason
    yield _labelled(
        GaugeMetricFamily(
            PREFIX + "cluster_degraded", "1 for the reason the node cannot use its stream, else 0.", labels=["reason"]
        ),
        {label: int(label == reason) for label in DEGRADED_REASONS.values()},
    )
    yield _gauge(
        "cluster_stream_first_seq", "The stream's first record sequence, as last seen.", st["stream_first_seq"]
    )
    yield _gauge("cluster_stream_last_seq", "The stream's last record sequence, as last seen.", st["stream_last_seq"])
    yield _gauge("cluster_applied_seq", "Stream sequence of the last record applied here.", st["applied_seq"])
    yield _gauge("cluster_lag_records", "Records in the stream not yet applied here.", st["lag"])
    yield _gauge(
        "cluster_oldest_seq", "Oldest event seq the stream holds: the resume horizon (0: none).", st["oldest_seq"] or 0
    )
    yield _gauge("cluster_pending_events", "Ingested events waiting to be published to the stream.", st["pending"])
    yield _gauge(
        "cluster_pending_capacity_events", "Bound of the pending buffer (newest dropped past it).", MAX_PENDING
    )
    for name, doc, key in CLUSTER_COUNTERS:
        yield _counter(name, doc, st[key])
    yield _gauge("cluster_replaying_clients", "Clients being replayed from the stream.", st["replaying_clients"])


def build_registry(app: web.Application) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(app))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def metrics_handler(app: web.Application) -> Handler:
    """The ``/metrics`` handler for ``app``'s parts (prometheus-client's own aiohttp exposition).

    With ``--auth token|jwt`` a client beyond loopback needs a credential (``auth.authorize_operator``)."""
    expose = make_aiohttp_handler(build_registry(app))

    async def handle(request: web.Request) -> web.StreamResponse:
        app[AUTH].authorize_operator(request)
        return await expose(request)

    return handle
