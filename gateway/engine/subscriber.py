"""One client's delivery state, as the hub sees it: a cursor into the ring and a way to write and close.

The base class is transport-neutral; ``gateway.http.ws`` and ``gateway.http.sse``
subclass it with their byte format and close.  May import ``gateway.core`` only.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from gateway.core.filters import Filter
from gateway.core.protocol import Message, encode
from gateway.core.ring import Entry


class Subscriber:
    """One client's delivery state.  Each transport's subclass sets ``kind`` and its byte format
    (:meth:`entry_bytes`, :meth:`control_bytes`) and how it closes (:meth:`kick`).

    Slotted, and holding no callable that points back at itself: one of these
    lives per connected client, so its size is part of the per-idle-client memory
    figure, and it must be freed by reference counting the moment its client
    leaves, not by a later cycle collection.
    """

    __slots__ = (
        "cache_key",
        "caught_up",
        "close_code",
        "close_reason",
        "closed",
        "coalescing",
        "cursor",
        "delivered",
        "dropped",
        "filter",
        "lagging",
        "peer",
        "transport",
    )
    #: The transport's name (``/status`` ``clients.by_transport``); part of the render cache key.
    kind: ClassVar[str]

    def __init__(
        self,
        transport: asyncio.BaseTransport,
        flt: Filter,
        peer: str,
    ) -> None:
        self.transport: Any = transport
        self.filter = flt
        self.peer = peer
        self.cursor = 0
        self.lagging = False
        self.coalescing = False
        self.closed = False
        #: The close code and reason the gateway sent (None while the client has not been closed by it).
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.delivered = 0
        self.dropped = 0
        #: Set once the client first reaches the head: the lag bound applies from then
        #: on (a client replaying a long resume is bounded only by the ring).
        self.caught_up = False
        self.cache_key: tuple[object, ...] = (self.kind, flt.key)

    def kick(self, code: int, reason: str) -> None:
        """Close this client: WebSocket close ``code``; SSE ends the stream."""
        raise NotImplementedError

    def entry_bytes(self, entry: Entry) -> bytes:
        """The bytes that carry ``entry`` to this client."""
        raise NotImplementedError

    def control_bytes(self, json: bytes) -> bytes:
        """The bytes that carry an encoded control message to this client."""
        raise NotImplementedError

    def wire(self, data: bytes) -> bytes:
        """``data`` (whole messages in this client's format) as written to its transport."""
        return data

    def write(self, data: bytes) -> None:
        self.transport.write(self.wire(data))

    def send_control(self, message: Message) -> None:
        """Write one control message now, in order with the events already written."""
        self.send_control_json(encode(message))

    def send_control_json(self, json: bytes) -> None:
        """Like :meth:`send_control`, for a message already encoded."""
        if not self.closed and not self.transport.is_closing():
            self.write(self.control_bytes(json))

    def buffered(self) -> int:
        return int(self.transport.get_write_buffer_size())
