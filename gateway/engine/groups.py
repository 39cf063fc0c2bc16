"""The hub's live clients, in groups that get the same bytes: a batch is written to a group with ``map``.

A client is *live* while it is at the head of the ring, not lagging, and its
transport open: then it is a member of exactly one :class:`Group` (same render
key, same transport type) and its ``cursor`` reads :data:`LIVE` (its position is
the hub's ``sent``).  Per batch and per member, :meth:`Group.write` costs one
C-level call each to the transport type's ``is_closing`` and ``write``, and
:meth:`Group.buffering` one to ``get_write_buffer_size``; no Python code runs per
member unless its transport is closing or holds unsent bytes.  May import ``gateway.core`` and
``gateway.engine.subscriber`` only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from itertools import compress, count, filterfalse, repeat
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

    def write(self, data: bytes) -> int:
        """Write ``data`` to every member whose transport is not closing; how many were written."""
        written = count()  # zip takes one number per write made: the next one is how many
        open_transports = filterfalse(self._closing, self.live.values())
        deque(zip(map(self._write, open_transports, repeat(data)), written, strict=False), maxlen=0)
        return next(written)

    def closing(self) -> list[Subscriber]:
        """The members whose transport is closing."""
        return [s for s, t in self.live.items() if t.is_closing()]

    def buffering(self) -> list[Subscriber]:
        """The members whose transport still holds bytes the kernel did not take."""
        transports = self.live.values()
        if not any(map(self._buffered, transports)):  # the usual case: no member (no Subscriber) is touched
            return []
        return list(compress(self.live, map(self._buffered, transports)))
