"""``GET /status`` (JSON), ``GET /healthz``: what the gateway knows about itself."""

from __future__ import annotations

import time

import msgspec
from aiohttp import web

from gateway import __version__
from gateway.core.health import degraded_reasons
from gateway.core.status import Clients, Events, Health, Producers, Status, UpstreamGaps
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


def status_snapshot(app: web.Application) -> Status:
    """Everything ``/status`` shows, ending with ``degraded_reasons`` (the gateway's own judgement)."""
    stream, hub, ring, ingest, store = app[STREAM], app[HUB], app[STREAM].ring, app[INGEST], app[STORE]
    lifecycle, admission, settings, cluster = app[LIFECYCLE], app[ADMISSION], app[SETTINGS], app[CLUSTER]
    status = Status(
        version=__version__,
        uptime_s=round(time.monotonic() - lifecycle.started_monotonic, 3),
        started_at=lifecycle.started_at,
        healthy=healthy(app),
        restart_needed=list(lifecycle.restart_needed),
        ingest=ingest.statistics(),
        epoch=stream.epoch,
        seq=ring.head,
        ring=ring.statistics(),
        state=store.statistics() if store is not None else {"dir": None},
        events=Events(
            accepted=stream.accepted,
            rejected=sum(stream.rejected.values()),
            rejected_by_reason=dict(stream.rejected),
            duplicate=stream.duplicates,
        ),
        upstream_gaps=UpstreamGaps(
            count=stream.upstream_gaps,
            missed=stream.upstream_missed,
            producer_resets=stream.producer_resets,
            last_at=stream.last_upstream_gap_at or None,
        ),
        producers=Producers(count=len(stream.tracker), recent=stream.tracker.snapshot()),
        clients=Clients(
            count=len(hub.subscribers),
            by_transport=hub.count_by_kind(),
            lagging=len(hub.lagging),
            refused=dict(admission.refused),
            refused_by_transport=dict(admission.refused_by_transport),
            closed_by_limit=dict(admission.closed_by_limit),
            addresses=len(hub.per_peer),
        ),
        deliveries=hub.deliveries,
        drops=dict(hub.drops),
        slow_client_disconnects=hub.slow_disconnects,
        auth=app[AUTH].statistics(),
        internal_errors=ingest.internal_errors,
        cluster=cluster.statistics() if cluster is not None else None,
        health=Health(
            **app[HEALTH].snapshot(ring.capacity),
            ring_horizon_s=settings.ring_horizon,
            loop_lag_limit_s=settings.loop_lag_limit,
        ),
    )
    status.degraded_reasons = degraded_reasons(status, time.time())
    return status


_JSON = msgspec.json.Encoder()


async def handle_status(request: web.Request) -> web.Response:
    request.app[AUTH].authorize_operator(request)  # 401/403/429 beyond loopback with --auth token|jwt
    return web.Response(body=_JSON.encode(status_snapshot(request.app)), content_type="application/json")


def ready(app: web.Application) -> bool:
    """Healthy, and (a cluster node) able to use its stream: what ``/healthz`` answers."""
    cluster = app[CLUSTER]
    return healthy(app) and (cluster is None or cluster.ok)


async def handle_healthz(request: web.Request) -> web.Response:
    """200 while serving (``ok``, or ``ok, degraded: <reasons>``), else 503."""
    if not ready(request.app):
        return web.Response(status=503, text="unavailable\n")
    reasons = status_snapshot(request.app).degraded_reasons
    return web.Response(text="ok, degraded: " + "; ".join(reasons) + "\n" if reasons else "ok\n")
