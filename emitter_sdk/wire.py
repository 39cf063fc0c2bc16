"""The one definition of the ingest wire format, shared by the SDK and the gateway.

An emitter sends each event as a single ZeroMQ frame holding one msgpack-encoded
:class:`WireEvent`.  The gateway decodes it with :data:`DECODER`, stamps ``seq``
and re-encodes it for browsers in the v1 JSON shape.

Invariants:
- ``producer`` + ``pseq`` identify an event uniquely and stably: ``pseq`` starts
  at 1 for a new producer id and grows by exactly 1 for every event the emitter
  queued, so a jump seen by the gateway is an upstream loss and a repeat is a
  duplicate (a re-send).
- Schema evolution only adds fields with defaults at the end (msgspec array-like
  structs decode older, shorter arrays).
"""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec

#: ``<domain>.<action>``: lowercase letters, digits and ``_`` in each part.  Always matched
#: against the whole string (``fullmatch``): ``$`` alone would accept a trailing newline.
TYPE_PATTERN = r"[a-z0-9_]+\.[a-z0-9_]+"
TYPE_RE = re.compile(TYPE_PATTERN)
#: Longest event type accepted (characters).
MAX_TYPE_LEN = 100

#: Types reserved for messages the gateway itself sends to clients.
RESERVED_PREFIX = "gateway."
RESERVED_TYPES = frozenset({"pong"})

#: The seed protocol's typed events (the SDK has a factory for each).
V1_TYPES = (
    "task.started",
    "task.progress",
    "task.completed",
    "task.failed",
    "provider.status_changed",
    "selfcheck.started",
    "selfcheck.progress",
    "selfcheck.completed",
    "selfcheck.failed",
)


class Entity(msgspec.Struct, frozen=True, array_like=True):
    """What an event is about: ``{"kind": ..., "id": ...}`` in JSON."""

    kind: str
    id: str


class WireEvent(msgspec.Struct, frozen=True, array_like=True):
    """One event as it travels from an emitter to the gateway."""

    type: str
    ts: str
    source: str
    entity: Entity | None
    payload: dict[str, Any]
    producer: str
    pseq: int


class EncodedWireEvent(msgspec.Struct, frozen=True, array_like=True):
    """A :class:`WireEvent` whose payload is already msgpack (the SDK checks it first).

    Encodes to exactly the bytes of the equivalent :class:`WireEvent`.
    """

    type: str
    ts: str
    source: str
    entity: Entity | None
    payload: msgspec.Raw
    producer: str
    pseq: int


ENCODER = msgspec.msgpack.Encoder()
DECODER = msgspec.msgpack.Decoder(WireEvent)


def is_valid_type(event_type: str) -> bool:
    """True for a well-formed, non-reserved event type of at most ``MAX_TYPE_LEN`` characters."""
    return (
        len(event_type) <= MAX_TYPE_LEN
        and TYPE_RE.fullmatch(event_type) is not None
        and not event_type.startswith(RESERVED_PREFIX)
        and event_type not in RESERVED_TYPES
    )


class TimestampClock:
    """Formats ``time.time()`` as ISO 8601 UTC with milliseconds and ``Z``.

    Caches the stamp of the current millisecond (and the formatted second), so
    most stamps cost one clock read, one multiplication and one comparison; not
    thread-safe by itself (callers hold a lock).
    """

    __slots__ = ("_ms", "_prefix", "_second", "_stamp")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._ms = -1
        self._stamp = ""

    def now(self) -> str:
        ms = int(time.time() * 1000)
        if ms == self._ms:
            return self._stamp
        second, frac = divmod(ms, 1000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._ms = ms
        self._stamp = f"{self._prefix}.{frac:03d}Z"
        return self._stamp
