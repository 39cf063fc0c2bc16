"""The Core-side emitter: ``emit()`` never blocks and never raises for transport trouble.

Threads and sockets:
- ``emit()`` (any thread) validates, numbers and encodes the event under a short
  lock, then appends the bytes to a bounded in-memory queue.  It never touches
  the ZeroMQ socket, so it costs the same whether the gateway is up, down,
  restarting or stalled.
- ``emit()`` writes one byte to the I/O thread's wake-up pipe only when that
  thread sleeps, which it does only after ``LINGER_S`` without events.
- One daemon I/O thread per emitter owns one XPUB socket per endpoint, each
  *connected* to a gateway's ingest (the gateway binds; several endpoints are
  several cluster nodes, and every event goes to each of them).  It sends queued
  events without blocking (each XPUB drops at its own high-water mark; that
  gateway sees the jump in ``pseq`` and reports it as an upstream gap) and keeps
  the last ``resend_events`` events / ``resend_seconds`` seconds (one buffer for
  all endpoints).  When a gateway (re)subscribes, which XPUB reports on every
  (re)connect, it re-sends that buffer to that endpoint only; the gateway drops
  what it already has.

Accounting (see :class:`EmitterStats`): every valid ``emit()`` is either
``queued`` (it got the next ``pseq``) or ``dropped`` (the queue was full or the
emitter closed; no ``pseq`` is consumed, so a drop here is never also an
upstream gap).  ``invalid`` events are counted apart and raise only when
``strict``.

Fork: at ``fork()`` (``os.register_at_fork``) every live emitter in the child gets
a fresh producer id, queue and lock, and starts its own thread on its first
``emit()``; it never touches the parent's socket.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import zmq

from emitter_sdk.payload import PayloadError, encode_payload
from emitter_sdk.wire import ENCODER, EncodedWireEvent, Entity, TimestampClock, is_valid_type

DEFAULT_INGEST = "tcp://127.0.0.1:5556"
#: After sending, the I/O thread keeps checking the queue every LINGER_TICK_S for
#: LINGER_S before it sleeps on its wake-up pipe: a steady stream of events costs
#: emit() no syscall (and each event at most LINGER_TICK_S of added latency); an
#: event after a quiet spell wakes the thread at once.
LINGER_S = 0.002
LINGER_TICK_S = 0.0002
ENV_INGEST = "EVENT_GATEWAY_INGEST"
_EMPTY = msgspec.Raw(ENCODER.encode({}))

log = logging.getLogger("emitter_sdk")

EntityArg = tuple[str, str] | Mapping[str, str] | Entity | None

_live_emitters: weakref.WeakSet[Emitter] = weakref.WeakSet()


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


class Emitter:
    """Publishes events to the gateway.  Safe from many threads and across ``fork()``."""

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
        self.resend_events = resend_events
        self.resend_seconds = resend_seconds
        self.sndhwm = sndhwm
        self.curve_server_key = curve_server_key.encode() if isinstance(curve_server_key, str) else curve_server_key
        self.curve_keypair = curve_keypair
        self._closed = False
        self._invalid_logged: set[str] = set()
        self._reset()
        _live_emitters.add(self)

    # -- state that a forked child must not share ------------------------------------

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._clock = TimestampClock()
        self.producer = secrets.token_hex(4)
        self._pseq = 0
        #: Encoded events in ``pseq`` order (the lock makes numbering and appending one step).
        self._queue: deque[bytes] = deque()
        self._dropped = 0
        self._invalid = 0
        self._sent = 0
        self._resent = 0
        self._resubscriptions = 0
        self._thread: threading.Thread | None = None
        self._subscribed = threading.Event()  # set once every endpoint has subscribed
        self._stop = False
        self._sleeping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- public API -------------------------------------------------------------------

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
        bounded and independent of the gateway: two dict look-ups (valid types and
        entities are cached, up to ``_CACHE_MAX`` each), the payload's encode and
        check (:func:`~emitter_sdk.payload.encode_payload`, before the lock), one
        msgpack encode and one deque append under a lock held for about a
        microsecond; the I/O thread is woken (one pipe write) only when it sleeps.
        The payload is encoded before ``emit()`` returns, so later changes by the
        caller cannot reach the event; a mapping that is not a ``dict`` is copied
        first.  A payload that is not JSON-compatible (non-string keys, bytes,
        ext types, other objects, at any depth) is refused as ``invalid``.
        """
        try:
            ok = _TYPES.get(type)
        except TypeError:  # unhashable: not a type string
            ok = False
        if ok is None:
            ok = _cache(_TYPES, type, isinstance(type, str) and is_valid_type(type))
        if not ok:
            return self._refuse("type", f"invalid event type {type!r}")
        try:
            if entity is None:
                ent = None
            elif entity.__class__ is tuple:
                ent = _ENTITIES.get(entity)
                if ent is None:
                    ent = _cache(_ENTITIES, entity, _entity(entity))
            else:
                ent = _entity(entity)
        except (TypeError, ValueError) as exc:
            return self._refuse("entity", str(exc))
        try:
            if payload is None:
                body = _EMPTY
            else:
                body = msgspec.Raw(encode_payload(payload if payload.__class__ is dict else dict(payload)))
        except (PayloadError, TypeError, ValueError) as exc:  # dict() of a non-mapping: TypeError/ValueError
            return self._refuse("payload", f"payload cannot be encoded as JSON-compatible msgpack: {exc}")
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
        if self._thread is None:
            self._start_thread()
        elif self._sleeping:
            self._sleeping = False
            try:
                os.write(self._wake_w, b"\0")
            except (BlockingIOError, OSError):
                pass
        return True

    @property
    def stats(self) -> EmitterStats:
        with self._lock:
            return EmitterStats(
                producer=self.producer,
                emitted=self._pseq + self._dropped,
                queued=self._pseq,
                dropped=self._dropped,
                invalid=self._invalid,
                sent=self._sent,
                resent=self._resent,
                resubscriptions=self._resubscriptions,
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
        if self._thread is None:
            self._start_thread()
        return self._subscribed.wait(timeout)

    def close(self, linger: float = 1.0) -> None:
        """Hand what is queued to ZeroMQ (for at most ``linger`` s) and stop.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self.flush(linger)
            self._stop = True
            self._wake()
            self._thread.join(linger + 1.0)
        self._close_pipe()

    def _close_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- typed factories for the v1 types ----------------------------------------------

    def task_started(self, task_id: str, **payload: Any) -> bool:
        return self.emit("task.started", entity=("task", task_id), payload=payload)

    def task_progress(self, task_id: str, progress: int, message: str = "", **extra: Any) -> bool:
        payload = {"progress": progress, "message": message, **extra}
        return self.emit("task.progress", entity=("task", task_id), payload=payload)

    def task_completed(self, task_id: str, **payload: Any) -> bool:
        return self.emit("task.completed", entity=("task", task_id), payload=payload)

    def task_failed(self, task_id: str, error: str, **extra: Any) -> bool:
        payload = {"error": error, **extra}
        return self.emit("task.failed", entity=("task", task_id), payload=payload)

    def provider_status_changed(self, provider_id: str, state: str, **details: Any) -> bool:
        payload = {"state": state, **details}
        return self.emit("provider.status_changed", entity=("provider", provider_id), payload=payload)

    def selfcheck_started(self, check_id: str, **payload: Any) -> bool:
        return self.emit("selfcheck.started", entity=("selfcheck", check_id), payload=payload)

    def selfcheck_progress(self, check_id: str, progress: int, message: str = "", **extra: Any) -> bool:
        payload = {"progress": progress, "message": message, **extra}
        return self.emit("selfcheck.progress", entity=("selfcheck", check_id), payload=payload)

    def selfcheck_completed(self, check_id: str, **payload: Any) -> bool:
        return self.emit("selfcheck.completed", entity=("selfcheck", check_id), payload=payload)

    def selfcheck_failed(self, check_id: str, error: str, **extra: Any) -> bool:
        payload = {"error": error, **extra}
        return self.emit("selfcheck.failed", entity=("selfcheck", check_id), payload=payload)

    # -- internals ----------------------------------------------------------------------

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

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=f"emitter-{self.producer}", daemon=True)
            self._thread.start()

    def _open_socket(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
        sock = ctx.socket(zmq.XPUB)
        # Manual mode: a (re)connecting gateway receives nothing until this thread
        # has applied its subscription and re-sent the recent buffer, so re-sent
        # events always reach it before newer ones.
        sock.setsockopt(zmq.XPUB_MANUAL, 1)
        # No pipe while disconnected: otherwise events sent during a gateway restart
        # wait in the old pipe and reach the new gateway *before* the re-send, which
        # it would then see as a jump (upstream gap) followed by duplicates.
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, self.sndhwm)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        if self.curve_server_key is not None:
            public, secret = self.curve_keypair or zmq.curve_keypair()
            sock.curve_serverkey = self.curve_server_key
            sock.curve_publickey = public
            sock.curve_secretkey = secret
        sock.connect(endpoint)
        return sock

    def _run(self) -> None:
        """I/O thread: send queued events, re-send the recent buffer on (re)subscription."""
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        socks = [self._open_socket(ctx, endpoint) for endpoint in self.endpoints]
        poller = zmq.Poller()
        for sock in socks:
            poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        recent: deque[tuple[float, bytes]] = deque()
        queue = self._queue
        subscribed: set[zmq.Socket[bytes]] = set()
        last_sent = 0.0
        try:
            while True:
                events = dict(poller.poll(1000 if self._sleeping else 0))
                if self._wake_r in events:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                for sock in socks:
                    if sock in events and self._on_subscriptions(sock, recent):
                        subscribed.add(sock)
                        if len(subscribed) == len(socks):
                            self._subscribed.set()
                now = time.monotonic()
                sent = 0
                while queue:
                    data = queue.popleft()
                    for sock in socks:
                        sock.send(data, zmq.NOBLOCK)
                    recent.append((now, data))
                    sent += 1
                if sent:
                    last_sent = now
                    with self._lock:
                        self._sent += sent
                    _trim(recent, self.resend_events, now - self.resend_seconds)
                if self._stop and not queue:
                    return
                if not queue and now - last_sent < LINGER_S:
                    # Busy lately: look at the queue again shortly instead of sleeping,
                    # so emit() need not pay a pipe write to wake this thread.
                    time.sleep(LINGER_TICK_S)
                    continue
                self._sleeping = True
                if queue or self._stop:
                    self._sleeping = False
        except zmq.ZMQError as exc:
            log.warning("emitter_sdk.io_thread_stopped error=%r", str(exc))
        finally:
            for sock in socks:
                sock.close(linger=200 if sock in subscribed else 0)
            ctx.term()

    def _on_subscriptions(self, sock: zmq.Socket[bytes], recent: deque[tuple[float, bytes]]) -> bool:
        """Apply ``sock``'s (un)subscriptions; on a subscription re-send ``recent`` there.  True if resubscribed."""
        resubscribed = False
        while True:
            try:
                msg = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if msg[:1] == b"\x01":
                sock.setsockopt(zmq.SUBSCRIBE, msg[1:])
                resubscribed = True
            elif msg[:1] == b"\x00":
                sock.setsockopt(zmq.UNSUBSCRIBE, msg[1:])
        if not resubscribed:
            return False
        _trim(recent, self.resend_events, time.monotonic() - self.resend_seconds)
        for _ts, data in recent:
            sock.send(data, zmq.NOBLOCK)
        with self._lock:
            self._resubscriptions += 1
            self._resent += len(recent)
        return True


def _trim(recent: deque[tuple[float, bytes]], max_events: int, oldest: float) -> None:
    while len(recent) > max_events:
        recent.popleft()
    while recent and recent[0][0] < oldest:
        recent.popleft()


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


def _entity(entity: EntityArg) -> Entity | None:
    if entity is None or isinstance(entity, Entity):
        return entity
    if isinstance(entity, tuple):
        kind, ident = entity
    else:
        kind, ident = entity["kind"], entity["id"]
    if not isinstance(kind, str) or not isinstance(ident, str) or not kind or not ident:
        raise ValueError(f"entity must be (kind, id) strings, got {entity!r}")
    return Entity(kind, ident)


#: Bound of each validation cache; a full cache is emptied and refilled by what comes next.
_CACHE_MAX = 4096
_TYPES: dict[str, bool] = {}
_ENTITIES: dict[tuple[str, str], Entity] = {}


def _cache(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    """Remember ``value`` for ``key`` (emptying a full cache first); returns ``value``."""
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _reinit_after_fork() -> None:
    """In the child: each open emitter starts afresh (new producer, queue, pipe, no thread)."""
    for emitter in list(_live_emitters):
        if emitter._closed:  # noqa: SLF001 - fork hook owned by this module
            continue  # its pipe is closed already; nothing to renew
        emitter._close_pipe()  # noqa: SLF001 - the parent's wake-up pipe, inherited
        emitter._reset()  # noqa: SLF001


os.register_at_fork(after_in_child=_reinit_after_fork)
