"""``GET /sse/events``: the Server-Sent Events transport.

Same filters and resume semantics as the WebSocket (``subscription``); the resume
point may also come from ``Last-Event-ID: <epoch>:<seq>`` (the header browsers'
EventSource sends on its own reconnect, or ``?lastEventId=``), which wins over
``since``/``epoch``.  Wire format, one message per event::

    id: <epoch>:<seq>
    event: <type>
    data: <v1 JSON>

Control messages are named events (``event: gateway.hello``, ``event:
gateway.gap``).  A ``gateway.gap`` that moves the cursor (``to``) carries ``id:
<epoch>:<to>``, and a hello that starts the client live at the head carries
``id: <epoch>:<head>``, so a reconnect resumes from the right place even before
the first event arrived.  The stream opens with a ``retry:`` hint (1–2 s, jittered
so a restart is not met by every browser at once); comment heartbeats (``: hb``)
every ``sse_heartbeat`` seconds keep proxies from timing it out.

Delivery goes through the hub like every transport: bytes are written without
awaiting, in HTTP/1.1 chunked framing (aiohttp chunks a streamed response without
a length, so raw writes frame their own chunks; an HTTP/1.0 response is unframed
and ends with the connection).  Every write is a whole number
of SSE messages, so heartbeats may fall between any two writes.  One task per
application (:class:`SseClients`) sends the heartbeats and notices dead peers for
every SSE client, instead of one timer per client.  A kicked client (slow, or the
gateway stopping) gets the end of the stream; EventSource then reconnects by itself.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import msgspec
import structlog
from aiohttp import hdrs, web

from gateway.core.filters import Filter
from gateway.core.protocol import GAP, HELLO, Message, encode, sse_message
from gateway.core.ring import Entry
from gateway.engine.subscriber import Subscriber
from gateway.http.subscription import SUBSCRIPTIONS, RequestError
from gateway.policy.limits import refuse_after_upgrade, set_keepalive

log = structlog.get_logger("gateway.sse")

#: How often the sweeper looks for closed peers and due heartbeats (seconds).
SWEEP_INTERVAL = 1.0
#: ``retry:`` hint: the EventSource reconnect delay, ms (base + uniform jitter).
RETRY_BASE_MS = 1000
RETRY_JITTER_MS = 1000

_END_OF_STREAM = b"0\r\n\r\n"  # the last chunk of a chunked HTTP/1.1 body


class _Control(msgspec.Struct):
    """What the SSE framing needs of a control message: its name, and where a range gap ends."""

    type: str
    to: int | None = None


_CONTROL = msgspec.json.Decoder(_Control)


def parse_last_event_id(raw: str) -> tuple[int, str]:
    """``"<epoch>:<seq>"`` → ``(seq, epoch)``; :class:`RequestError` when malformed."""
    epoch, sep, seq = raw.strip().rpartition(":")
    if not sep or not epoch or len(epoch) > 64 or not seq.isdigit() or len(seq) > 19:
        raise RequestError("Last-Event-ID must be <epoch>:<seq>")
    return int(seq), epoch


class SseSubscriber(Subscriber):
    """An SSE client: events rendered once per entry (``Entry.sse``) and written as HTTP chunks."""

    __slots__ = ("chunked", "close_timeout", "done", "epoch", "last_beat", "since")
    kind = "sse"

    def __init__(
        self,
        transport: Any,
        flt: Filter,
        peer: str,
        epoch: str,
        since: int | None,
        *,
        chunked: bool,
        close_timeout: float,
    ) -> None:
        super().__init__(transport, flt, peer)
        self.epoch = epoch
        #: HTTP/1.1 responses are chunked (every write framed); HTTP/1.0 ones end when the connection does.
        self.chunked = chunked
        self.cache_key = (self.kind, flt.key, chunked)  # the framing is part of the shared bytes
        self.close_timeout = close_timeout
        #: The resume point asked for (a hello only sets the client's id when it starts at the head).
        self.since = since
        self.done = asyncio.Event()
        self.last_beat = time.monotonic()

    def entry_bytes(self, entry: Entry) -> bytes:
        sse = entry.sse
        if sse is None:
            sse = entry.sse = sse_message(entry.type, entry.json, f"{self.epoch}:{entry.seq}")
        return sse

    def control_bytes(self, json: bytes) -> bytes:
        """A control message built elsewhere (the hub's gaps): a range gap carries ``id: <epoch>:<to>``."""
        control = _CONTROL.decode(json)
        ident = f"{self.epoch}:{control.to}" if control.type == GAP and control.to is not None else None
        return sse_message(control.type, json, ident)

    def send_control(self, message: Message) -> None:
        if self.closed or self.transport.is_closing():
            return
        if message["type"] == HELLO:
            ident = f"{self.epoch}:{message['seq']}" if self.since is None or self.since >= message["seq"] else None
            self.write(sse_message(message["type"], encode(message), ident))
        else:
            self.write(self.control_bytes(encode(message)))

    def wire(self, data: bytes) -> bytes:
        """One HTTP/1.1 chunk when the response is chunked; as is for HTTP/1.0."""
        return b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data

    def heartbeat(self, now: float) -> None:
        self.last_beat = now
        if not self.lagging:
            self.write(b": hb\n\n")

    def kick(self, code: int, reason: str) -> None:
        """End the stream after what is buffered (SSE has no close codes); abort if it never drains."""
        self.closed = True
        transport = self.transport
        if not transport.is_closing():
            if self.chunked:
                transport.write(_END_OF_STREAM)
            transport.close()
            asyncio.get_running_loop().call_later(self.close_timeout, transport.abort)
        self.done.set()


class SseClients:
    """Every open SSE stream, swept by one task: heartbeats, and noticing peers that went away.

    The task runs only while there are SSE clients.  A peer that disconnected is
    noticed within ``SWEEP_INTERVAL`` (its transport is closing); the hub skips
    closing transports meanwhile.
    """

    def __init__(self, heartbeat: float) -> None:
        self.heartbeat = heartbeat
        self.clients: dict[SseSubscriber, None] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, sub: SseSubscriber) -> None:
        self.clients[sub] = None
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sweep())

    def remove(self, sub: SseSubscriber) -> None:
        self.clients.pop(sub, None)

    async def _sweep(self) -> None:
        while self.clients:
            interval = self.heartbeat
            await asyncio.sleep(min(SWEEP_INTERVAL, interval) if interval else SWEEP_INTERVAL)
            now = time.monotonic()
            for sub in list(self.clients):
                if sub.closed or sub.transport.is_closing():
                    sub.done.set()
                elif interval and now - sub.last_beat >= interval:
                    sub.heartbeat(now)


SSE_CLIENTS: web.AppKey[SseClients] = web.AppKey("sse_clients", SseClients)


def resume_point(request: web.Request, since: int | None, epoch: str | None) -> tuple[int | None, str | None]:
    """``Last-Event-ID`` (header, else ``?lastEventId=``) overrides ``since``/``epoch``."""
    raw = request.headers.get("Last-Event-ID") or request.query.get("lastEventId")
    if not raw:
        return since, epoch
    return parse_last_event_id(raw)


async def handle_sse(request: web.Request) -> web.StreamResponse:
    subs = request.app[SUBSCRIPTIONS]
    config = subs.settings
    grant, since, epoch = subs.admit(request, SseSubscriber.kind, resume_point)
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
            **grant.cors_headers,
        }
    )
    await resp.prepare(request)
    retry = RETRY_BASE_MS + random.randrange(RETRY_JITTER_MS)  # jitter, not security
    try:
        await resp.write(f"retry: {retry}\n\n".encode())  # through aiohttp: it owns the first chunk's framing
    except ConnectionError:
        return resp
    transport = request.transport
    if transport is None or transport.is_closing():
        return resp
    peer = request.remote or "?"
    chunked = resp.headers.get(hdrs.TRANSFER_ENCODING) == "chunked"  # aiohttp chose the framing in prepare()
    sub = SseSubscriber(
        transport, grant.filter, peer, subs.stream.epoch, since, chunked=chunked, close_timeout=config.close_timeout
    )
    if refuse_after_upgrade(subs.admission, peer, SseSubscriber.kind) is not None:
        sub.kick(1013, "over capacity")
        return resp
    set_keepalive(transport, config.tcp_keepalive)
    clients = request.app[SSE_CLIENTS]
    clients.add(sub)
    subs.join(sub, grant, since, epoch)
    try:
        await sub.done.wait()
    finally:
        subs.leave(sub)
        clients.remove(sub)
    return resp
