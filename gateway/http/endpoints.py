"""``GET /status`` (JSON), ``GET /healthz``: what the gateway knows about itself."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway import __version__
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


def status_snapshot(app: web.Application) -> dict[str, Any]:
    stream, hub, ring, ingest, store = app[STREAM], app[HUB], app[STREAM].ring, app[INGEST], app[STORE]
    cluster = app[CLUSTER]
    lifecycle, admission, settings = app[LIFECYCLE], app[ADMISSION], app[SETTINGS]
    return {
        "version": __version__,
        "uptime_s": round(time.monotonic() - lifecycle.started_monotonic, 3),
        "started_at": lifecycle.started_at,
        "healthy": healthy(app),
        "restart_needed": lifecycle.restart_needed,
        "ingest": ingest.statistics(),
        "epoch": stream.epoch,
        "seq": ring.head,
        "ring": ring.statistics(),
        "state": store.statistics() if store is not None else {"dir": None},
        "events": {
            "accepted": stream.accepted,
            "rejected": sum(stream.rejected.values()),
            "rejected_by_reason": dict(stream.rejected),
            "duplicate": stream.duplicates,
        },
        "upstream_gaps": {
            "count": stream.upstream_gaps,
            "missed": stream.upstream_missed,
            "last_at": stream.last_upstream_gap_at or None,
        },
        "producers": {"count": len(stream.tracker), "recent": stream.tracker.snapshot()},
        "clients": {
            "count": len(hub.subscribers),
            "by_transport": hub.count_by_kind(),
            "lagging": len(hub.lagging),
            "refused": dict(admission.refused),
            "closed_by_limit": dict(admission.closed_by_limit),
            "addresses": len(hub.per_peer),
        },
        "deliveries": hub.deliveries,
        "drops": dict(hub.drops),
        "slow_client_disconnects": hub.slow_disconnects,
        "auth": app[AUTH].statistics(),
        "internal_errors": ingest.internal_errors,
        "cluster": cluster.statistics() if cluster is not None else None,
        "health": {
            **app[HEALTH].snapshot(ring.capacity),
            "ring_horizon_s": settings.ring_horizon,
            "loop_lag_limit_s": settings.loop_lag_limit,
        },
    }


async def handle_status(request: web.Request) -> web.Response:
    request.app[AUTH].authorize_operator(request)  # 401/403/429 beyond loopback with --auth token|jwt
    return web.json_response(status_snapshot(request.app))


def ready(app: web.Application) -> bool:
    """Healthy, and (a cluster node) able to use its stream: what ``/healthz`` answers."""
    cluster = app[CLUSTER]
    return healthy(app) and (cluster is None or cluster.ok)


async def handle_healthz(request: web.Request) -> web.Response:
    if ready(request.app):
        return web.Response(text="ok\n")
    return web.Response(status=503, text="unavailable\n")
