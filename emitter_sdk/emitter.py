"""The Core-side API: ``emit()`` never blocks and never raises for transport trouble.

``emit()`` (any thread) checks the event (:mod:`emitter_sdk.validate`,
:mod:`emitter_sdk.payload`), then numbers, stamps and encodes it under a short lock
and appends the bytes to a bounded in-memory queue.  It never touches a ZeroMQ
socket: the emitter's :class:`~emitter_sdk.io_thread.IOThread` does, so ``emit()``
costs the same whether the gateways are up, down, restarting or stalled.

Accounting (see :class:`EmitterStats`): every valid ``emit()`` is either
``queued`` (it got the next ``pseq``) or ``dropped`` (the queue was full or the
emitter closed; no ``pseq`` is consumed, so a drop here is never also an
upstream gap).  ``invalid`` events are counted apart, logged once per kind
(``emitter_sdk.invalid_event``) and raise only when ``strict``.

Fork (:mod:`emitter_sdk.forking`): in a forked child every open emitter gets a fresh
producer id, queue, lock and I/O thread (started on its first ``emit()``); it never
touches the parent's sockets.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from emitter_sdk import forking
from emitter_sdk.factories import V1Factories
from emitter_sdk.io_thread import IOThread, TransportOptions
from emitter_sdk.payload import PayloadError, encode_payload
from emitter_sdk.validate import ENTITIES, TYPE_VERDICTS, EntityArg, coerce_entity, valid_type
from emitter_sdk.wire import ENCODER, EncodedWireEvent, TimestampClock

DEFAULT_INGEST = "tcp://127.0.0.1:5556"
ENV_INGEST = "EVENT_GATEWAY_INGEST"
_EMPTY = msgspec.Raw(ENCODER.encode({}))

log = logging.getLogger("emitter_sdk")


class InvalidEvent(ValueError):
    """Raised by ``emit()`` for an invalid event, only when ``strict=True``."""


class EmitterStats(msgspec.Struct, frozen=True):
    """A frozen snapshot of an emitter's counters.

    ``emitted == queued + dropped``; ``invalid`` counts refused malformed events.
    ``sent`` counts events handed to ZeroMQ for the first time (once, however many
    endpoints); ``resent`` counts messages re-sent after a (re)subscription and
    ``resubscriptions`` the (re)subscriptions, both summed over the endpoints.
    """

    producer: str
    emitted: int
    queued: int
    dropped: int
    invalid: int
    sent: int
    resent: int
    resubscriptions: int
    queue_depth: int


class Emitter(V1Factories):
    """Publishes events to one gateway or to several (cluster nodes).  Thread- and fork-safe.

    ``endpoint``: one ZeroMQ endpoint or a list; default ``$EVENT_GATEWAY_INGEST``
    (comma-separated) or ``tcp://127.0.0.1:5556``.  Each event goes to every endpoint.
    Bounded: at most ``max_queue`` events wait for the I/O thread (more are dropped
    and counted), and the re-send buffer keeps at most ``resend_events`` events for
    at most ``resend_seconds``.
    """

    def __init__(
        self,
        endpoint: str | Sequence[str] | None = None,
        *,
        source: str = "core",
        strict: bool = False,
        max_queue: int = 100_000,
        resend_events: int = 10_000,
        resend_seconds: float = 60.0,
        sndhwm: int = 100_000,
        curve_server_key: bytes | str | None = None,
        curve_keypair: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.endpoints = _endpoints(endpoint)
        self.source = source
        self.strict = strict
        self.max_queue = max_queue
        self._transport = TransportOptions(
            endpoints=self.endpoints,
            resend_events=resend_events,
            resend_seconds=resend_seconds,
            sndhwm=sndhwm,
            curve_server_key=curve_server_key.encode() if isinstance(curve_server_key, str) else curve_server_key,
            curve_keypair=curve_keypair,
        )
        self._closed = False
        self._invalid_logged: set[str] = set()
        self._reset()
        forking.track(self)

    def _reset(self) -> None:
        """The state a forked child must not share with its parent."""
        self._lock = threading.Lock()
        self._clock = TimestampClock()
        self.producer = secrets.token_hex(4)
        self._pseq = 0
        #: Encoded events in ``pseq`` order (the lock makes numbering and appending one step).
        self._queue: deque[bytes] = deque()
        self._dropped = 0
        self._invalid = 0
        self._io = IOThread(self._transport, self._queue, self._lock, name=f"emitter-{self.producer}")

    def after_fork_in_child(self) -> None:
        """Called in a forked child (:mod:`emitter_sdk.forking`): start afresh; a closed emitter stays closed."""
        if not self._closed:
            self._reset()  # the parent's I/O thread did not survive the fork; its sockets stay untouched

    def emit(
        self,
        type: str,  # noqa: A002 - the protocol's field name
        *,
        entity: EntityArg = None,
        payload: Mapping[str, Any] | None = None,
        source: str | None = None,
    ) -> bool:
        """Queue one event; True if queued, False if dropped or invalid.

        Never blocks on I/O and never raises for transport trouble.  The cost is
        bounded and independent of the gateway: two cached verdict look-ups, the
        payload's encode and check (:func:`~emitter_sdk.payload.encode_payload`,
        before the lock), one msgpack encode and one deque append under a lock held
        for about a microsecond, then (only if the I/O thread is idle) one
        :meth:`IOThread.wake`, which makes no system call that releases the GIL.  The payload is
        encoded before ``emit()`` returns, so later changes by the caller cannot
        reach the event; a mapping that is not a ``dict`` is copied first.  A payload
        that is not JSON-compatible (non-string keys, bytes, ext types, other
        objects, at any depth) is refused as ``invalid``.
        """
        try:  # the cached verdicts first: a dict look-up each, no call
            ok = TYPE_VERDICTS[type]
        except (KeyError, TypeError):  # not cached yet, or unhashable
            ok = valid_type(type)
        if not ok:
            return self._refuse("type", f"invalid event type {type!r}")
        try:
            ent = ENTITIES.get(entity) if entity.__class__ is tuple else None
            if ent is None and entity is not None:
                ent = coerce_entity(entity)
        except (TypeError, ValueError) as exc:
            return self._refuse("entity", str(exc))
        try:
            if payload is None:
                body = _EMPTY
            else:
                body = msgspec.Raw(encode_payload(payload if payload.__class__ is dict else dict(payload)))
        except (PayloadError, TypeError, ValueError) as exc:  # dict() of a non-mapping: TypeError/ValueError
            return self._refuse("payload", f"payload cannot be encoded as JSON-compatible msgpack: {exc}")
        io = self._io
        with self._lock:
            if self._closed or len(self._queue) >= self.max_queue:
                self._dropped += 1
                return False
            self._pseq = pseq = self._pseq + 1
            self._queue.append(
                ENCODER.encode(
                    EncodedWireEvent(type, self._clock.now(), source or self.source, ent, body, self.producer, pseq)
                )
            )
            wake, io.idle = io.idle, False
        if wake:
            io.wake()
        return True

    @property
    def stats(self) -> EmitterStats:
        io = self._io
        with self._lock:
            return EmitterStats(
                producer=self.producer,
                emitted=self._pseq + self._dropped,
                queued=self._pseq,
                dropped=self._dropped,
                invalid=self._invalid,
                sent=io.sent,
                resent=io.resent,
                resubscriptions=io.resubscriptions,
                queue_depth=len(self._queue),
            )

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the queue is handed to ZeroMQ; True if it emptied in time."""
        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline:
            time.sleep(0.001)
        return not self._queue

    def wait_subscribed(self, timeout: float) -> bool:
        """Wait until every endpoint's gateway has subscribed (and got the re-send buffer).

        Starts the I/O thread.  True once each endpoint has subscribed at least once.
        """
        self._io.start()
        return self._io.subscribed.wait(timeout)

    def close(self, linger: float = 1.0) -> None:
        """Hand what is queued to ZeroMQ (for at most ``linger`` s) and stop.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._io.started:
            self.flush(linger)
        self._io.stop(linger + 1.0)

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _refuse(self, kind: str, reason: str) -> bool:
        with self._lock:
            self._invalid += 1
            first = kind not in self._invalid_logged
            self._invalid_logged.add(kind)
        if first:
            log.warning(
                "emitter_sdk.invalid_event kind=%s reason=%r (later %s errors are counted only)", kind, reason, kind
            )
        if self.strict:
            raise InvalidEvent(reason)
        return False


def _endpoints(endpoint: str | Sequence[str] | None) -> tuple[str, ...]:
    """The endpoints to connect: the argument, else ``$EVENT_GATEWAY_INGEST`` (comma-separated), else the default."""
    if endpoint is None:
        endpoint = os.environ.get(ENV_INGEST) or DEFAULT_INGEST
    if isinstance(endpoint, str):
        endpoint = endpoint.split(",")
    endpoints = tuple(dict.fromkeys(e.strip() for e in endpoint if e.strip()))
    if not endpoints:
        raise ValueError("Emitter needs at least one endpoint")
    return endpoints
