"""Bytes in, bytes out: ingest validation and the v1 event encoding.  Pure.

- :func:`decode_wire` turns one ZeroMQ message into a :class:`WireEvent` or a
  rejection reason (a short fixed string, used as a counter label) for what
  cannot be attributed to a producer; :func:`check_event` judges a decoded
  event's fields; :func:`decode_ingest` is both; :func:`well_formed` is the same
  judgement in one C decode for the messages it accepts (the hot path).
- :func:`encode_event` renders an accepted event once as v1 JSON; it raises
  :data:`ENCODE_ERRORS` for a payload that decoded but has no JSON form
  (non-string map keys, msgpack ext types …): the caller rejects that one
  event with reason ``payload``.  A payload holding NaN or ±Infinity (msgpack
  carries them, JSON cannot) is rejected as ``payload`` by :func:`decode_wire`.

Every other message the gateway sends, and the framing, is in :mod:`gateway.core.protocol`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec

from emitter_sdk.payload import has_non_finite
from emitter_sdk.wire import DECODER, MAX_TYPE_LEN, EncodedWireEvent, Entity, WireEvent, is_valid_type
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
    "payload",
    "producer_key",
)

#: What :func:`encode_event` raises for a payload without a JSON form.
ENCODE_ERRORS = (msgspec.EncodeError, TypeError, ValueError, OverflowError, RecursionError)

MAX_ID_LEN = 256
MAX_PRODUCER_LEN = 64
MAX_TS_LEN = 40


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


def decode_ingest(frames: Sequence[bytes], max_bytes: int) -> WireEvent | str:
    """One ingest message → event, or the reason it is rejected (before encoding)."""
    event = decode_wire(frames, max_bytes)
    if isinstance(event, str):
        return event
    return check_event(event) or event


def decode_wire(frames: Sequence[bytes], max_bytes: int) -> WireEvent | str:
    """One ingest message → a decoded event (fields not yet judged), or the reason it is rejected."""
    if len(frames) != 1:
        return "frames"
    data = frames[0]
    if len(data) > max_bytes:
        return "oversized"
    try:
        event: WireEvent = DECODER.decode(data)
    except (msgspec.DecodeError, ValueError, TypeError, RecursionError):
        return "payload" if producer_of(data) is not None else "decode"
    if _non_finite(data, event.payload):
        return "payload"
    return event


def well_formed(frames: Sequence[bytes], max_bytes: int) -> WireEvent | None:
    """The event of a message :func:`decode_ingest` accepts, else ``None`` (then it says why).

    The common case, once per event: one C decode that also checks the field limits
    (:class:`_CheckedEvent`), then the type's verdict (a memo lookup) and the float
    check.  Exactly :func:`decode_ingest`'s judgement for what it accepts; whatever it
    does not is judged again by :func:`decode_wire` and :func:`check_event` (a
    rejected message costs a second decode, no other message anything).
    """
    if len(frames) != 1:
        return None
    data = frames[0]
    if len(data) > max_bytes:
        return None
    try:
        event: WireEvent = _CHECKED_DECODER.decode(data)
    except (msgspec.DecodeError, ValueError, TypeError, RecursionError):
        return None
    event_type = event.type
    verdict = _TYPE_VERDICTS.get(event_type)
    if verdict is None:
        verdict = _judge_type(event_type)
    if verdict or _non_finite(data, event.payload):
        return None
    return event


def _non_finite(data: bytes, payload: dict[str, Any]) -> bool:
    """Whether the payload holds NaN or ±Infinity (JSON has neither: they would reach clients as null).

    Only a message holding a msgpack float marker byte can: two memchr scans (an int
    operand: ``bytes`` looks a single byte up directly) gate the exact search.
    """
    return (_FLOAT64 in data or _FLOAT32 in data) and has_non_finite(data, payload)


#: msgpack's float64 and float32 markers (``0xcb``, ``0xca``).
_FLOAT64, _FLOAT32 = 0xCB, 0xCA


class _CheckedEntity(Entity, frozen=True, array_like=True, gc=False):
    """:class:`Entity` with :func:`check_event`'s limits, checked by msgspec while decoding.

    Not tracked by the cycle collector (``gc=False``), like :class:`_CheckedEvent`.
    """

    kind: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LEN)]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LEN)]


class _CheckedEvent(WireEvent, frozen=True, array_like=True, gc=False):
    """:class:`WireEvent` with :func:`check_event`'s limits (all but the type's pattern), checked while decoding.

    Not tracked by the cycle collector (``gc=False``): decoded from msgpack, an event is a
    tree (strings, ints, floats, lists, dicts) and can never be part of a reference cycle.
    Tracked, every event counted towards a collection while it waited to be sequenced
    (on a cluster node, in the writer's buffer, long enough to reach the oldest
    generation): a node spent about a tenth of its time in the collector.
    """

    type: Annotated[str, msgspec.Meta(max_length=MAX_TYPE_LEN)]
    ts: Annotated[str, msgspec.Meta(max_length=MAX_TS_LEN)]
    source: Annotated[str, msgspec.Meta(max_length=MAX_ID_LEN)]
    entity: _CheckedEntity | None
    producer: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PRODUCER_LEN)]
    pseq: Annotated[int, msgspec.Meta(ge=1)]


_CHECKED_DECODER = msgspec.msgpack.Decoder(_CheckedEvent)


#: Decodes all but the payload (left as raw msgpack): who sent a message whose payload is bad.
_HEAD_DECODER = msgspec.msgpack.Decoder(EncodedWireEvent)


def producer_of(data: bytes) -> tuple[str, int] | None:
    """``(producer, pseq)`` of a message that is a well-formed event but for its payload, else ``None``."""
    try:
        head = _HEAD_DECODER.decode(data)
    except (msgspec.DecodeError, ValueError, TypeError, RecursionError):
        return None
    if not head.producer or len(head.producer) > MAX_PRODUCER_LEN or head.pseq < 1:
        return None
    return head.producer, head.pseq


def check_event(event: WireEvent) -> str:
    """``""`` for a well-formed event, else the reason it is rejected.

    ``producer`` is judged first: any other reason leaves a producer id and
    ``pseq`` the sequencer can count as seen.  A type longer than
    ``MAX_TYPE_LEN`` is refused before the verdict cache sees it, so the cache
    holds only strings of at most ``MAX_TYPE_LEN`` characters.
    """
    if not event.producer or len(event.producer) > MAX_PRODUCER_LEN or event.pseq < 1:
        return "producer"
    event_type = event.type
    if len(event_type) > MAX_TYPE_LEN:
        return "type"
    verdict = _TYPE_VERDICTS.get(event_type)
    if verdict is None:
        verdict = _judge_type(event_type)
    if verdict:
        return verdict
    ent = event.entity
    if ent is not None and (not ent.kind or not ent.id or len(ent.kind) > MAX_ID_LEN or len(ent.id) > MAX_ID_LEN):
        return "entity"
    if len(event.ts) > MAX_TS_LEN or len(event.source) > MAX_ID_LEN:
        return "ts"
    return ""


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
    """The v1 JSON of an accepted event (``seq`` and ``id`` added); raises :data:`ENCODE_ERRORS`."""
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
