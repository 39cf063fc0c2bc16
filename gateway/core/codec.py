"""Bytes in, bytes out: ingest validation and client encodings.  Pure.

- :func:`decode_ingest` turns one ZeroMQ message into a :class:`WireEvent` or a
  rejection reason (a short fixed string, used as a counter label).
- :func:`encode_event` renders an accepted event once, as v1 JSON and as a
  ready-to-write WebSocket text frame.
- :func:`ws_frame` builds an unmasked server frame (RFC 6455 §5.2).
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

from emitter_sdk.wire import DECODER, WireEvent, is_valid_type

#: Rejection reasons, a fixed set (metrics labels).
REJECT_REASONS = (
    "frames",
    "oversized",
    "decode",
    "type",
    "reserved",
    "entity",
    "producer",
    "ts",
    "not_allowed",
)

MAX_ID_LEN = 256


class OutEntity(msgspec.Struct):
    kind: str
    id: str


class OutEvent(msgspec.Struct):
    """The v1 event as clients see it."""

    type: str
    ts: str
    source: str
    entity: OutEntity | None
    payload: dict[str, Any]
    seq: int
    id: str


_JSON = msgspec.json.Encoder()


def decode_ingest(frames: list[bytes], max_bytes: int) -> WireEvent | str:
    """One ingest message → event, or the reason it is rejected."""
    if len(frames) != 1:
        return "frames"
    data = frames[0]
    if len(data) > max_bytes:
        return "oversized"
    try:
        event = DECODER.decode(data)
    except (msgspec.DecodeError, ValueError, TypeError, RecursionError):
        return "decode"
    verdict = _TYPE_VERDICTS.get(event.type)
    if verdict is None:
        verdict = _judge_type(event.type)
    if verdict:
        return verdict
    ent = event.entity
    if ent is not None and (not ent.kind or not ent.id or len(ent.kind) > MAX_ID_LEN or len(ent.id) > MAX_ID_LEN):
        return "entity"
    if not event.producer or len(event.producer) > 64 or event.pseq < 1:
        return "producer"
    if len(event.ts) > 40 or len(event.source) > MAX_ID_LEN:
        return "ts"
    return event


#: type → "" (valid) or its rejection reason; bounded, emptied when full.
_TYPE_VERDICTS: dict[str, str] = {}
_TYPE_VERDICTS_MAX = 4096


def _judge_type(event_type: str) -> str:
    if is_valid_type(event_type):
        verdict = ""
    elif event_type.startswith("gateway.") or event_type == "pong":
        verdict = "reserved"
    else:
        verdict = "type"
    if len(_TYPE_VERDICTS) >= _TYPE_VERDICTS_MAX:
        _TYPE_VERDICTS.clear()
    _TYPE_VERDICTS[event_type] = verdict
    return verdict


def encode_event(event: WireEvent, seq: int) -> bytes:
    """The v1 JSON of an accepted event (``seq`` and ``id`` added)."""
    ent = event.entity
    return _JSON.encode(
        OutEvent(
            event.type,
            event.ts,
            event.source,
            None if ent is None else OutEntity(ent.kind, ent.id),
            event.payload,
            seq,
            f"{event.producer}:{event.pseq}",
        )
    )


def encode_control(message: dict[str, Any]) -> bytes:
    """JSON of a gateway control message (``gateway.*``, ``pong``)."""
    return _JSON.encode(message)


def encode_upstream_gap(producer: str, missed: int, seq: int) -> bytes:
    """JSON of ``gateway.gap`` reason ``upstream``: ``missed`` events of ``producer`` lost before ``seq``."""
    return _JSON.encode(
        {"type": "gateway.gap", "reason": "upstream", "producer": producer, "missed": missed, "seq": seq}
    )


_H2 = struct.Struct("!BBH")
_H8 = struct.Struct("!BBQ")


def ws_frame(payload: bytes, opcode: int = 0x1, *, rsv1: bool = False) -> bytes:
    """An unmasked, unfragmented server frame (FIN set) carrying ``payload``; ``rsv1`` marks it compressed."""
    n = len(payload)
    first = (0xC0 if rsv1 else 0x80) | opcode
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return _H2.pack(first, 126, n) + payload
    return _H8.pack(first, 127, n) + payload
