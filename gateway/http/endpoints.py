"""``GET /status`` (JSON), ``GET /healthz``: what the gateway knows about itself."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway import __version__
from gateway.http.state import STATE, GatewayState


def status_snapshot(state: GatewayState) -> dict[str, Any]:
    stream, hub, ring = state.stream, state.hub, state.stream.ring
    return {
        "version": __version__,
        "uptime_s": round(time.monotonic() - state.started_monotonic, 3),
        "started_at": state.started_at,
        "healthy": healthy(state),
        "restart_needed": state.restart_needed,
        "ingest": state.ingest.statistics(),
        "epoch": stream.epoch,
        "seq": ring.head,
        "ring": ring.statistics(),
        "state": state.store.statistics() if state.store is not None else {"dir": None},
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
            "refused": dict(state.ws_refused),
            "closed_by_limit": dict(state.limit_closes),
            "addresses": len(hub.per_peer),
        },
        "deliveries": hub.deliveries,
        "drops": dict(hub.drops),
        "slow_client_disconnects": hub.slow_disconnects,
        "auth": state.auth.statistics(),
        "internal_errors": state.ingest.internal_errors,
        "cluster": state.cluster.statistics() if state.cluster is not None else None,
        "health": {
            **state.health.snapshot(ring.capacity),
            "ring_horizon_s": state.config.ring_horizon,
            "loop_lag_limit_s": state.config.loop_lag_limit,
        },
    }


def healthy(state: GatewayState) -> bool:
    return state.serving and state.ingest.bound and not state.shutting_down


async def handle_status(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.auth.authorize_operator(request)  # 401/403/429 beyond loopback with --auth token|jwt
    return web.json_response(status_snapshot(state))


def ready(state: GatewayState) -> bool:
    """Healthy, and (a cluster node) able to use its stream: what ``/healthz`` answers."""
    return healthy(state) and (state.cluster is None or state.cluster.ok)


async def handle_healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if ready(state):
        return web.Response(text="ok\n")
    return web.Response(status=503, text="unavailable\n")
