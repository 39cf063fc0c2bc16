"""The app as the daemon wires it, in process (pytest-aiohttp's ``aiohttp_client``): no socket is bound.

Ingest is not bound here, so the gateway is not serving: ``/healthz`` is 503 and
``/status`` (the shared ``Status`` schema) says why it is degraded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.core import status as schema
from gateway.http.parts import INGEST, LIFECYCLE
from gateway.process.config import Config
from gateway.process.daemon import build
from gateway.process.keys import load_keys

Client = TestClient[Any, web.Application]


async def test_status_and_healthz_from_the_wired_app(aiohttp_client: Callable[..., Awaitable[Client]]) -> None:
    config = Config()
    app = build(config, load_keys(config))
    try:
        client = await aiohttp_client(app)
        status = schema.decode(await (await client.get("/status")).read())
        assert status.seq == 0 and status.ring["size"] == config.ring_size and not status.healthy
        assert status.degraded_reasons == ["not serving (ingest unbound or shutting down)"]
        assert status.clients.refused_by_transport == {"ws": 0, "sse": 0}
        healthz = await client.get("/healthz")
        assert healthz.status == 503 and await healthz.text() == "unavailable\n"
        app[LIFECYCLE].serving = True  # still not healthy: ingest is not bound
        assert (await client.get("/healthz")).status == 503
    finally:
        app[INGEST].close()
