"""``GET /ws/events``: the WebSocket transport.

The handler parses the query (``subscription``), upgrades, then starts the
subscription (hello, resume gap, join the hub) in one synchronous step.  Everything the gateway sends
(events, gaps, pongs, errors, the close frame) goes through the same transport
in order.  Inbound: ``{"type": "ping"}`` → ``pong``; anything else →
``gateway.error``.  Protocol pings (``heartbeat``) detect dead peers.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from gateway import logs
from gateway.auth import authorize
from gateway.codec import ws_frame
from gateway.fanout import Subscriber
from gateway.state import STATE
from gateway.subscription import RequestError, parse_request, start_subscription

log = logs.get("gateway.ws")

#: How long a closed client may take to read its close frame before the socket is aborted.
CLOSE_TIMEOUT = 2.0

_JSON_DECODER = msgspec.json.Decoder()


class WsSubscriber(Subscriber):
    kind = "ws"


def close_frame(code: int, reason: str) -> bytes:
    return ws_frame(struct.pack("!H", code) + reason.encode()[:120], opcode=0x8)


def kick_transport(transport: Any, code: int, reason: str) -> None:
    """Write a close frame after whatever is buffered, close, and abort if it never drains."""
    if transport is None or transport.is_closing():
        return
    transport.write(close_frame(code, reason))
    transport.close()
    asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, transport.abort)


async def handle_ws(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    config = state.config
    try:
        flt, since, epoch = parse_request(request.query, config.max_filters)
    except RequestError as exc:
        state.ws_refused["bad_request"] += 1
        raise web.HTTPBadRequest(text=f"{exc}\n") from None
    flt = authorize(request, state, flt)
    if len(state.hub.subscribers) >= config.max_clients:
        state.ws_refused["max_clients"] += 1
        raise web.HTTPServiceUnavailable(text="over capacity\n", headers={"Retry-After": "5"})
    ws = web.WebSocketResponse(
        heartbeat=config.ping_interval or None,
        max_msg_size=config.max_frame_bytes,
        autoping=True,
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    peer = request.remote or "?"
    sub = WsSubscriber(transport, flt, peer, lambda code, reason: kick_transport(transport, code, reason))
    start_subscription(state, sub, since, epoch)
    log.info("client.connected", transport="ws", peer=peer, types=flt.types, entity=flt.entities, since=since)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                _on_text(sub, msg.data)
            elif msg.type == WSMsgType.BINARY:
                sub.send_control({"type": "gateway.error", "error": "binary frames are not accepted"})
    finally:
        state.hub.remove(sub)
        log.info(
            "client.disconnected",
            transport="ws",
            peer=peer,
            delivered=sub.delivered,
            dropped=sub.dropped,
            close_code=ws.close_code,
        )
    return ws


def _on_text(sub: Subscriber, data: str) -> None:
    try:
        message = _JSON_DECODER.decode(data)
    except msgspec.DecodeError:
        sub.send_control({"type": "gateway.error", "error": "message is not JSON"})
        return
    if isinstance(message, dict) and message.get("type") == "ping":
        sub.send_control({"type": "pong", "ts": _now_iso()})
        return
    sub.send_control({"type": "gateway.error", "error": 'unknown message; only {"type": "ping"} is accepted'})


def _now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
