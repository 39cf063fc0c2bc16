"""``GET /ws/events``: the WebSocket transport.

The handler parses the query (``subscription``), upgrades, then starts the
subscription (hello, resume gap, join the hub) in one synchronous step.  Everything the gateway sends
(events, gaps, pongs, errors, the close frame) goes through the same transport
in order.  Inbound: ``{"type": "ping"}`` → ``pong``; anything else →
``gateway.error``.  Protocol pings (``heartbeat``) detect dead peers.

Compression (``gateway.core.deflate``): with ``--compression on`` a client that offers
``permessage-deflate`` gets it with ``server_no_context_takeover`` and receives each
event as the ring entry's compressed frame for its window size (shared by every such
client); control messages stay uncompressed.  A client that does not offer it gets the
plain frames of the same entries.

Limits (``gateway.policy.limits``): over ``max_clients`` / ``max_clients_per_ip``, an
upgrade is completed and then closed 1013 with the reason ``over capacity (<limit>)``
before any hello (a browser cannot read the status of a refused upgrade; it sees
1006, like a gateway that is down); a request without ``Upgrade: websocket`` gets 503
with ``Retry-After`` instead.  An inbound
frame over ``max_frame_bytes`` → 1009; more inbound frames (data or control) than
``client_msg_rate`` allows → ``gateway.error`` then 1008.

The close rule (SPEC) for every close the gateway starts (1001, 1008, 1009,
1013): stop acting on the client's messages, send the close frame after what
was already written, wait for the peer's close frame (``close_timeout``), never
close the socket while the peer may still be sending (a reset would destroy the
unread close frame).  Every connection that ends, however it ends, is aborted if
its socket is still open ``close_timeout`` later, so a peer that never reads
cannot hold a socket or its buffers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import structlog
from aiohttp import WebSocketError, WSCloseCode, WSMsgType, hdrs, web
from aiohttp.web_request import BaseRequest
from multidict import CIMultiDict

from gateway.core.deflate import deflate_frame, extension_header
from gateway.core.filters import Filter
from gateway.core.protocol import error, pong, ws_frame
from gateway.core.ring import Entry
from gateway.engine.subscriber import Subscriber
from gateway.http.subscription import SUBSCRIPTIONS
from gateway.policy.limits import Admission, message_bucket, refuse_after_upgrade, set_keepalive

log = structlog.get_logger("gateway.ws")


_JSON_DECODER = msgspec.json.Decoder()


class WsSubscriber(Subscriber):
    """A WebSocket client: events go out as the entry's prebuilt frame.

    :meth:`kick` (``Hub.close`` has set ``close_code``) only wakes the handler out of its read;
    the handler itself sends the close frame (after everything already written)
    and waits for the peer's close, so a close the gateway starts is a complete
    closing handshake, never a reset under the close frame.
    """

    __slots__ = ("close_timeout", "receiving", "task")
    kind = "ws"

    def __init__(self, transport: Any, flt: Filter, peer: str, close_timeout: float) -> None:
        super().__init__(transport, flt, peer)
        self.close_timeout = close_timeout
        #: True while the handler awaits the client's next message (a kick must wake it).
        self.receiving = False
        #: The handler's task (set by the handler; what a kick wakes).
        self.task: asyncio.Task[Any] | None = None

    def entry_bytes(self, entry: Entry) -> bytes:
        return entry.frame

    def control_bytes(self, json: bytes) -> bytes:
        return ws_frame(json)

    def kick(self, code: int, reason: str) -> None:
        # A peer that reads nothing cannot hold the close (or its buffers) longer than this.
        asyncio.get_running_loop().call_later(self.close_timeout, self.transport.abort)
        if self.receiving and self.task is not None:
            self.receiving = False  # one wake-up, however many kicks
            self.task.cancel(CLOSING)


#: The cancel message that wakes a handler out of ``receive()`` to close its client.
CLOSING = "gateway.ws.closing"


class DeflateWsSubscriber(WsSubscriber):
    """A WebSocket client that negotiated permessage-deflate with server window ``wbits``.

    Events go out as the entry's compressed frame for ``wbits``, built by the first
    such client that needs it and then shared (the batch cache key carries ``wbits``).
    """

    __slots__ = ("wbits",)

    def __init__(self, transport: Any, flt: Filter, peer: str, close_timeout: float, wbits: int) -> None:
        super().__init__(transport, flt, peer, close_timeout)
        self.wbits = wbits
        self.cache_key = (self.kind, flt.key, wbits)

    def entry_bytes(self, entry: Entry) -> bytes:
        frames = entry.deflated
        if frames is None:
            frames = entry.deflated = {}
        frame = frames.get(self.wbits)
        if frame is None:
            frame = frames[self.wbits] = deflate_frame(entry.json, entry.frame, self.wbits)
        return frame


class _WebSocketResponse(web.WebSocketResponse):
    """aiohttp's response, with two changes.

    The handshake accepts permessage-deflate always with ``server_no_context_takeover``:
    aiohttp adds that parameter only when the client asked for it; without it a
    compressed frame could not be shared between clients.  The reader side
    (inflating what the client sends) stays aiohttp's.

    An abnormal end does not close the socket under the peer: after a protocol
    error (a frame over ``max_frame_bytes``: aiohttp has sent 1009 and discards
    what follows) aiohttp would close the socket at once, and a peer still
    sending would get a reset instead of the close frame.  The handler keeps the
    socket open until the peer closes or ``close_timeout`` passes (:func:`linger`).
    """

    def _close_transport(self) -> None:
        if self.close_code != WSCloseCode.ABNORMAL_CLOSURE:
            super()._close_transport()

    def _handshake(self, request: BaseRequest) -> tuple[CIMultiDict[str], str | None, int, bool]:
        headers, protocol, wbits, _ = super()._handshake(request)
        if wbits:
            headers[hdrs.SEC_WEBSOCKET_EXTENSIONS] = extension_header(wbits)
        return headers, protocol, wbits, True


async def handle_ws(request: web.Request) -> web.StreamResponse:
    subs = request.app[SUBSCRIPTIONS]
    config = subs.settings
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    grant, since, epoch = subs.admit(request, WsSubscriber.kind, capacity=not upgrade)
    ws = _WebSocketResponse(
        compress=config.compression == "on",
        heartbeat=config.ping_interval or None,
        max_msg_size=config.max_frame_bytes,
        autoping=False,  # protocol pings are answered below, after the rate limit
        protocols=(grant.protocol,) if grant.protocol else (),
        timeout=config.close_timeout,  # how long close() waits for the peer's close frame
    )
    try:
        await ws.prepare(request)
    except ConnectionResetError:  # the peer vanished mid-handshake; aiohttp drops this unsent reply quietly
        return web.Response(status=499, reason="Client Closed Request")
    transport = request.transport
    if transport is None:
        return ws
    peer = request.remote or "?"
    refused = refuse_after_upgrade(subs.admission, peer, WsSubscriber.kind)
    if refused is not None:
        await ws.close(code=1013, message=f"over capacity ({refused})".encode())
        await linger(transport, config.close_timeout)
        return ws
    set_keepalive(transport, config.tcp_keepalive)
    wbits = int(ws.compress)
    if wbits:
        sub: WsSubscriber = DeflateWsSubscriber(transport, grant.filter, peer, config.close_timeout, wbits)
    else:
        sub = WsSubscriber(transport, grant.filter, peer, config.close_timeout)
    bucket = message_bucket(config.client_msg_rate, time.monotonic())
    subs.join(sub, grant, since, epoch)
    try:
        await _serve(subs.admission, sub, ws, bucket)
        code = sub.close_code
        if code is not None and code != 1006:  # stop reading, send the close frame, wait for the peer's close
            await ws.close(code=code, message=(sub.close_reason or "").encode()[:120])
    finally:
        subs.leave(sub, client_code=ws.close_code)
        await linger(transport, config.close_timeout)
    return ws


async def _serve(admission: Admission, sub: WsSubscriber, ws: web.WebSocketResponse, bucket: Any) -> None:
    """Read and answer the client's messages until it closes, errs, or the gateway closes it (``sub.close_code``)."""
    transport = sub.transport
    task = sub.task = asyncio.current_task()
    while sub.close_code is None:
        sub.receiving = True
        try:
            msg = await ws.receive()
        except asyncio.CancelledError:
            if sub.close_code is None or task is None or task.uncancel() > 0:
                raise  # a real cancellation, not this client's close
            return
        finally:
            sub.receiving = False
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return  # aiohttp answered the peer's close frame
        if not bucket.take(time.monotonic()):
            _close_for_limit(admission, sub, "rate_limited", 1008, "message rate exceeded")
        elif msg.type == WSMsgType.TEXT:
            _on_text(sub, msg.data)
        elif msg.type == WSMsgType.BINARY:
            sub.send_control(error("binary frames are not accepted"))
        elif msg.type == WSMsgType.PING:
            if not transport.is_closing():
                transport.write(ws_frame(msg.data, opcode=0xA))
        elif msg.type == WSMsgType.ERROR:
            _count_error(admission, sub, msg.data)
            return


async def linger(transport: Any, timeout: float) -> None:
    """Keep an ended connection's socket open (reading, discarding) until it closes or ``timeout`` passes.

    A socket closed with unread input is reset by the kernel, which can destroy a
    close frame not yet read by the peer; so after an abnormal end the gateway
    waits for the peer's EOF.  Bounded: a socket outlives its connection by at most
    ``timeout`` (``--close-timeout``), then it is aborted, closing or not (a peer
    that never reads cannot hold its buffers).  Polled every 50 ms, only after an
    abnormal end; a normal close returns at once.
    """
    deadline = time.monotonic() + timeout
    while not transport.is_closing() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    asyncio.get_running_loop().call_later(max(0.0, deadline - time.monotonic()), transport.abort)


def _close_for_limit(admission: Admission, sub: Subscriber, limit: str, code: int, reason: str) -> None:
    """``gateway.error``, then the close frame; counted in ``clients.closed_by_limit``."""
    admission.closed_by_limit[limit] += 1
    sub.send_control(error(reason))
    admission.hub.close(sub, code, reason)
    log.info("client.limit_closed", peer=sub.peer, limit=limit, code=code)


def _count_error(admission: Admission, sub: Subscriber, exc: BaseException) -> None:
    """aiohttp ended the connection: a frame over ``max_frame_bytes`` (it sent 1009) or no pong (1006)."""
    if isinstance(exc, WebSocketError) and exc.code == WSCloseCode.MESSAGE_TOO_BIG:
        limit, code = "frame_too_big", 1009
    elif isinstance(exc, TimeoutError):
        limit, code = "dead_peer", 1006
    else:
        return
    admission.closed_by_limit[limit] += 1
    sub.close_code, sub.close_reason = code, limit.replace("_", " ")
    log.info("client.limit_closed", peer=sub.peer, limit=limit, code=code)


def _on_text(sub: Subscriber, data: str) -> None:
    try:
        message = _JSON_DECODER.decode(data)
    except msgspec.DecodeError:
        sub.send_control(error("message is not JSON"))
        return
    if isinstance(message, dict) and message.get("type") == "ping":
        sub.send_control(pong(_now_iso()))
        return
    sub.send_control(error('unknown message; only {"type": "ping"} is accepted'))


def _now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
