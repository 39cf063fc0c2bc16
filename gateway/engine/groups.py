"""The hub's live clients, in groups that get the same bytes: a batch is written to a group with ``map``.

A client is *live* while it is at the head of the ring, not lagging, and its
transport open: then it is a member of exactly one :class:`Group` (same render
key, same transport type) and its ``cursor`` reads :data:`LIVE` (its position is
the hub's ``sent``).  Per batch and per member, :meth:`Group.write` costs one
C-level call to the transport type's ``write`` and :meth:`Group.unready` two more
(``is_closing``, ``get_write_buffer_size``); no Python code runs per member unless
its transport is closing or holds unsent bytes.  May import ``gateway.core`` and
``gateway.engine.subscriber`` only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from itertools import compress, repeat
from typing import Any

from gateway.engine.subscriber import Subscriber

#: The ``cursor`` of a live client: it has been written every batch up to the hub's ``sent``.
LIVE = -1


class Group:
    """The live clients that share a render key (``key``) and a transport type.

    ``live`` maps each member to its transport.  ``total`` counts the events
    written to the group: a member joins with its ``delivered`` lowered by the
    ``total`` of that moment and gets it back when it leaves, so nothing is counted
    per member per batch, and ``delivered`` is exact again once it has left.
    """

    __slots__ = ("_buffered", "_closing", "_write", "key", "live", "total")

    def __init__(self, key: tuple[object, ...], transport_type: Any) -> None:
        self.key = key
        self.live: dict[Subscriber, Any] = {}
        self.total = 0
        self._write: Callable[[Any, bytes], object] = transport_type.write
        self._closing: Callable[[Any], bool] = transport_type.is_closing
        self._buffered: Callable[[Any], int] = transport_type.get_write_buffer_size

    def join(self, sub: Subscriber) -> None:
        """``sub`` (at the head) gets every batch from now on."""
        self.live[sub] = sub.transport
        sub.delivered -= self.total
        sub.cursor = LIVE

    def leave(self, sub: Subscriber, cursor: int) -> None:
        """``sub`` gets no more batches; its cursor is ``cursor`` (the last seq written to the group)."""
        del self.live[sub]
        sub.delivered += self.total
        sub.cursor = cursor

    def unready(self) -> tuple[list[Subscriber], list[Subscriber]]:
        """The members whose transport is closing, and those whose transport still holds unsent bytes."""
        transports = self.live.values()
        closing = [s for s, t in self.live.items() if t.is_closing()] if any(map(self._closing, transports)) else []
        return closing, list(compress(self.live, map(self._buffered, transports)))

    def write(self, data: bytes, count: int) -> None:
        """Write ``data`` (``count`` events; nothing when empty) to every member."""
        if data:
            deque(map(self._write, self.live.values(), repeat(data)), maxlen=0)
        self.total += count
