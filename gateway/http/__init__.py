"""The HTTP face: the aiohttp app, subscriptions over WebSocket and SSE, /status, /metrics, the page.

May import ``gateway.ports``, ``gateway.policy``, ``gateway.engine`` and
``gateway.core``; never ``gateway.process`` (the daemon hands it its parts).
"""
