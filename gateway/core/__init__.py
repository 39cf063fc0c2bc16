"""The gateway's pure floor: values in, values out — no sockets, files, clocks read or event loop.

Entries and the replay ring, producer sequence tracking, resume arithmetic,
subscription filters, ingest validation and every message the gateway sends
(WebSocket/SSE framing), plus the small shared tools.  May import: the standard
library, ``msgspec`` and ``emitter_sdk.wire`` (the one wire format).  Never
``aiohttp`` or ``zmq``, nor any other floor of ``gateway``.
"""
