"""Bytes in, bytes out: ingest validation and the v1 event encoding.  Pure.

- :func:`decode_ingest` turns one ZeroMQ message into a :class:`WireEvent` or a
  rejection reason (a short fixed string, used as a counter label).
- :func:`encode_event` renders an accepted event once, as v1 JSON.

Every other message the gateway sends, and the framing, is in :mod:`gateway.core.protocol`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from emitter_sdk.wire import DECODER, WireEvent, is_valid_type
from gateway.core.cache import BoundedCache
from gateway.core.protocol import PONG

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


#: type → "" (valid) or its rejection reason.
_TYPE_VERDICTS: BoundedCache[str, str] = BoundedCache()


def _judge_type(event_type: str) -> str:
    if is_valid_type(event_type):
        verdict = ""
    elif event_type.startswith("gateway.") or event_type == PONG:
        verdict = "reserved"
    else:
        verdict = "type"
    return _TYPE_VERDICTS.put(event_type, verdict)


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
