"""Every message the gateway sends, built here and only here; and how each transport frames it.  Pure.

Messages (see ``docs/protocol.md``) are plain dicts with ``type`` first, encoded
once to single-line JSON (:func:`encode`):

- events: the v1 JSON of an accepted event (``gateway.core.codec.encode_event``);
- ``gateway.hello`` (:func:`hello`): the epoch, the head and the oldest seq held;
- ``gateway.gap`` (:func:`gap`, :func:`upstream_gap`): a range of seqs the client
  will not get (``epoch``, ``evicted``, ``slow_client``) or events lost before ingest
  (``upstream``: ``producer``, ``missed``, and the ``seq`` it was noticed at);
- ``gateway.error`` (:func:`error`) and ``pong`` (:func:`pong`).

Framing: :func:`ws_frame` / :func:`close_frame` (RFC 6455 server frames, unmasked)
and :func:`sse_message` (one Server-Sent Events message).
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

from gateway.core.cache import BoundedCache

HELLO = "gateway.hello"
GAP = "gateway.gap"
ERROR = "gateway.error"
PONG = "pong"

#: A control message: ``type`` first, JSON-ready values.
Message = dict[str, Any]


_JSON = msgspec.json.Encoder()


def encode(message: Message) -> bytes:
    """JSON of a control message (``gateway.*``, ``pong``)."""
    return _JSON.encode(message)


def hello(epoch: str, head: int, oldest: int | None) -> Message:
    return {"type": HELLO, "epoch": epoch, "seq": head, "oldest": oldest}


def gap(reason: str, first: int, last: int) -> Message:
    """Seqs ``first .. last`` will not be sent (``last < first``: an empty range); the cursor moves to ``last``."""
    return {"type": GAP, "reason": reason, "from": first, "to": last}


def upstream_gap(producer: str, missed: int, seq: int, reset: bool = False) -> Message:
    """``missed`` events of ``producer`` never reached the gateway; noticed before ``seq``.

    ``reset``: the producer's ``pseq`` went back beyond any re-send, so its numbering
    restarted at the event ``seq`` (``"missed": 0, "reset": true``; docs/wire.md).
    """
    message: Message = {"type": GAP, "reason": "upstream", "producer": producer, "missed": missed, "seq": seq}
    if reset:
        message["reset"] = True
    return message


def encode_upstream_gap(producer: str, missed: int, seq: int, reset: bool = False) -> bytes:
    """:func:`upstream_gap`, encoded: what a ring entry carries to send before its event."""
    return encode(upstream_gap(producer, missed, seq, reset))


def error(text: str) -> Message:
    return {"type": ERROR, "error": text}


def pong(ts: str) -> Message:
    return {"type": PONG, "ts": ts}


_H2 = struct.Struct("!BBH")
_H8 = struct.Struct("!BBQ")


def ws_frame(payload: bytes, opcode: int = 0x1, *, rsv1: bool = False) -> bytes:
    """An unmasked, unfragmented server frame (FIN set) carrying ``payload``; ``rsv1`` marks it compressed."""
    return _header((0xC0 if rsv1 else 0x80) | opcode, len(payload)) + payload


def _header(first: int, n: int) -> bytes:
    """A server frame's header: ``first`` (FIN, RSV1, opcode), then the payload length ``n``."""
    if n < 126:
        return bytes((first, n))
    if n < 65536:
        return _H2.pack(first, 126, n)
    return _H8.pack(first, 127, n)


#: The header :func:`ws_frame` puts before a text payload, by the payload's length (filled by
#: :func:`text_header`; event JSON lengths repeat, so building an entry's frame is a lookup).
TEXT_HEADERS: BoundedCache[int, bytes] = BoundedCache()


def text_header(n: int) -> bytes:
    """The header of a text frame (FIN set, unmasked) with an ``n``-byte payload; remembered in :data:`TEXT_HEADERS`."""
    return TEXT_HEADERS.put(n, _header(0x81, n))


def close_frame(code: int, reason: str) -> bytes:
    """A WebSocket close frame: ``code`` and the reason, cut to fit a control frame."""
    return ws_frame(struct.pack("!H", code) + reason.encode()[:120], opcode=0x8)


def sse_message(event: str, data: bytes, ident: str | None = None) -> bytes:
    """One SSE message; ``data`` is single-line JSON (msgspec escapes newlines)."""
    head = f"id: {ident}\nevent: {event}\ndata: " if ident else f"event: {event}\ndata: "
    return head.encode() + data + b"\n\n"
