"""Who may subscribe and what they may see (``--auth``, ``--allow-origin``).

:func:`authorize` is called by every subscribing transport (WebSocket, SSE)
before the upgrade / response starts.  It returns the client's filter narrowed
to what its credentials allow, or raises an aiohttp HTTP error (401/403).
"""

from __future__ import annotations

from aiohttp import web

from gateway.filters import Filter
from gateway.state import GatewayState


def authorize(request: web.Request, state: GatewayState, flt: Filter) -> Filter:
    """``--auth none`` on loopback: everyone may see everything."""
    return flt
