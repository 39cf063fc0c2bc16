"""One set of test doubles for the pure layers: a transport in memory, a subscriber that records.

Production code has no hooks for these: the hub and the subscribers use only
``write``, ``get_write_buffer_size`` and ``is_closing`` of a transport, and a
subscriber's framing and ``kick`` are its own methods.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from gateway.core.filters import Filter
from gateway.core.protocol import ws_frame
from gateway.core.ring import Entry
from gateway.engine.subscriber import Subscriber


class FakeTransport:
    """A socket in memory.

    Every write is kept in ``writes``.  A *reading* peer takes bytes at once
    (``received``); a stalled one (``reading=False``) leaves them ``pending`` in
    the write buffer until :meth:`drain`.  ``backlog`` adds to the reported buffer
    size without data (a full kernel buffer).
    """

    def __init__(self, reading: bool = True) -> None:
        self.reading = reading
        self.writes: list[bytes] = []
        self.pending = bytearray()
        self.received = bytearray()
        self.backlog = 0
        self.closing = False

    @property
    def data(self) -> bytes:
        """Everything ever written, in order."""
        return b"".join(self.writes)

    def write(self, data: bytes) -> None:
        assert not self.closing, "write after close"
        self.writes.append(bytes(data))
        self.pending += data
        if self.reading:
            self.drain()

    def drain(self) -> None:
        self.received += self.pending
        self.pending.clear()

    def get_write_buffer_size(self) -> int:
        return len(self.pending) + self.backlog

    def is_closing(self) -> bool:
        return self.closing


class RecordingSubscriber(Subscriber):
    """A subscriber with the WebSocket's byte format that records how it was kicked instead of closing."""

    __slots__ = ("kicked",)
    kind = "test"

    def __init__(self, transport: Any, flt: Filter | None = None, peer: str = "127.0.0.1") -> None:
        super().__init__(transport, flt or Filter(), peer)
        self.kicked: tuple[int, str] | None = None

    def entry_bytes(self, entry: Entry) -> bytes:
        return entry.frame

    def control_bytes(self, json: bytes) -> bytes:
        return ws_frame(json)

    def kick(self, code: int, reason: str) -> None:
        self.kicked = (code, reason)


def ws_messages(data: bytes) -> list[dict[str, Any]]:
    """Split concatenated unmasked server text frames (RFC 6455) into JSON documents."""
    out, pos = [], 0
    while pos < len(data):
        assert data[pos] == 0x81, "FIN + text"
        n = data[pos + 1] & 0x7F
        pos += 2
        if n == 126:
            (n,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif n == 127:
            (n,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        out.append(json.loads(data[pos : pos + n]))
        pos += n
    return out
