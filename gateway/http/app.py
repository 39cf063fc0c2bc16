"""The aiohttp application: routes only; each handler lives in its transport's module.

:func:`build_app` makes the routes, the hooks (Host check, client address) and the
HTTP layer's own parts (the SSE sweeper); the daemon sets every other part's ``web.AppKey`` (``gateway.http.parts``,
``SUBSCRIPTIONS``) before the app starts.
"""

from __future__ import annotations

from aiohttp import web

from gateway.http.endpoints import handle_healthz, handle_status
from gateway.http.metrics import metrics_handler
from gateway.http.page import asset_handler
from gateway.http.parts import AUTH, SETTINGS, ClientSettings
from gateway.http.sse import SSE_CLIENTS, SseClients, handle_sse
from gateway.http.ws import handle_ws
from gateway.policy import peers
from gateway.policy.auth import Authenticator


def build_app(settings: ClientSettings, auth: Authenticator) -> web.Application:
    # Host check and client address first, before any handler reads request.host or request.remote.
    app = web.Application(middlewares=[peers.middleware(lambda: auth.peers, auth.refuse_request)])
    app[SETTINGS] = settings
    app[AUTH] = auth
    app.router.add_get("/ws/events", handle_ws)
    app[SSE_CLIENTS] = SseClients(settings.sse_heartbeat)
    app.router.add_get("/sse/events", handle_sse, allow_head=False)  # a stream has no HEAD
    app.router.add_get("/", asset_handler("index.html"))
    for name in ("client.js", "chart.js", "monitor.js", "monitor.css"):
        app.router.add_get(f"/{name}", asset_handler(name))
    app.router.add_get("/status", handle_status)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/metrics", metrics_handler(app))
    return app
