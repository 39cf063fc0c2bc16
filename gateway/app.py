"""The aiohttp application: routes only; each handler lives in its transport's module."""

from __future__ import annotations

from aiohttp import web

from gateway.endpoints import handle_healthz, handle_status
from gateway.state import STATE, GatewayState
from gateway.ws import handle_ws


def build_app(state: GatewayState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app.router.add_get("/ws/events", handle_ws)
    app.router.add_get("/status", handle_status)
    app.router.add_get("/healthz", handle_healthz)
    return app
