"""The ingest socket: a ZeroMQ SUB bound at ``--ingest``; emitters connect their XPUB.

Reading is edge-triggered on the socket's FD from the event loop (no thread,
no await per message): each wake-up drains up to ``BATCH`` messages and hands
them to :meth:`Stream.ingest` as one batch, so a burst costs one fan-out per
batch, not one per event.  When more is waiting as a drain ends (a backlog), the
next drain follows at once (``call_soon``, so HTTP clients are served between
batches).  A wake-up from idle starts a drain at once if the previous drain started
at least :data:`COALESCE_S` ago (an event after a quiet spell is not delayed).
Sooner, the events are *held* (received, not yet processed) until the window
since the previous drain ends or as many have arrived as a window collects at
the rate the previous drain saw (at least 2), whichever comes first.  So at a
steady rate the events of one window reach each client in one write (one
``send`` per client per window instead of per event: at 1,000 ev/s about half
the sends), and the batch closes on the arrival that completes it rather than
on the window's timer, which ticks in whole milliseconds (a held event no longer
waits past its companion's arrival).  The window bounds what an event waits
here: the p99 price of those saved sends (docs/benchmarks.md).  While a drain
is due, reading ``ZMQ_EVENTS`` (or receiving until none is left) re-arms
ZeroMQ's edge-triggered FD so the loop sleeps instead of spinning on it.  ZeroMQ bounds
what waits in the socket (``RCVHWM``) and the size of a message (``MAXMSGSIZE``;
larger ones are dropped by ZeroMQ before they reach us).  Nothing here raises
into the loop: a failure while processing a batch is logged and counted.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import structlog
import zmq

from gateway.core.throttle import LogThrottle
from gateway.engine.stream import Stream
from gateway.ports.bindings import BindingStore
from gateway.ports.curve import CurveServer

BATCH = 1024
#: Least spacing of drain starts (s) unless a held batch completes sooner: the most an
#: event waits for others to share its writes.
COALESCE_S = 0.002
REJECT_LOG_INTERVAL = 5.0

log = structlog.get_logger("gateway.ingest")


class IngestBindError(RuntimeError):
    """The ingest endpoint cannot be bound; the message is one line for the operator."""


class Ingest:
    def __init__(
        self,
        endpoint: str,
        stream: Stream,
        *,
        max_event_bytes: int,
        rcvhwm: int = 100_000,
        curve: CurveServer | None = None,
        bindings: BindingStore | None = None,
        coalesce_s: float = COALESCE_S,
    ) -> None:
        self.endpoint = endpoint
        self.curve = curve
        #: Where the producer-id → CURVE key bindings are saved (CURVE with --state-dir).
        self.bindings = bindings
        self.stream = stream
        self.max_event_bytes = max_event_bytes
        self.rcvhwm = rcvhwm
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock: zmq.Socket[bytes] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.internal_errors = 0
        self.batches = 0
        #: The window (s): :data:`COALESCE_S` unless a test needs another.
        self.coalesce_s = coalesce_s
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._last_drain = 0.0  # time.monotonic() at the start of the previous drain that found events
        #: Received inside the window, not processed yet (at most BATCH), with their CURVE senders.
        self._held: list[tuple[bytes, ...]] = []
        self._held_keys: list[str] | None = [] if curve is not None else None
        #: How many held events close a batch: what a window collects at the last drain's rate (≥ 2).
        self._expected = 2
        self._reject_log = LogThrottle(REJECT_LOG_INTERVAL)
        self._rejects_since_log = 0
        self._reject_flush_scheduled = False

    @property
    def bound(self) -> bool:
        return self.sock is not None and not self.sock.closed

    def configure_socket(self, sock: zmq.Socket[bytes]) -> None:
        """Options applied before bind, CURVE and its ZAP handler included."""
        if self.curve is not None:
            self.curve.configure(self.ctx, sock)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.setsockopt(zmq.RCVHWM, self.rcvhwm)
        # Headroom for msgpack framing around the largest accepted event.
        sock.setsockopt(zmq.MAXMSGSIZE, self.max_event_bytes + 4096)
        sock.setsockopt(zmq.LINGER, 0)

    def bind(self) -> None:
        sock = self.ctx.socket(zmq.SUB)
        self.configure_socket(sock)
        try:
            sock.bind(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            if self.curve is not None:
                self.curve.stop()
            raise IngestBindError(f"cannot bind ingest {self.endpoint}: {exc.strerror}") from None
        if self.endpoint.startswith("ipc://"):
            os.chmod(self.endpoint[len("ipc://") :], 0o660)
        self.sock = sock

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.sock is not None
        self.loop = loop
        loop.add_reader(self.sock.fileno(), self._on_readable)
        self._schedule()

    def _schedule(self, backlog: bool = False) -> None:
        loop = self.loop
        if self._scheduled or loop is None:
            return
        self._scheduled = True
        wait = 0.0 if backlog else self._last_drain + self.coalesce_s - time.monotonic()
        if wait <= 0:
            loop.call_soon(self._drain)
            return
        self._timer = loop.call_later(wait, self._drain)
        self._hold()

    def _on_readable(self) -> None:
        if not self._scheduled:
            self._schedule()
        elif self._timer is not None:  # inside the window: hold what arrived
            self._hold()
        elif self.sock is not None and not self.sock.closed:
            self.sock.getsockopt(zmq.EVENTS)  # a drain is due: re-arm the FD instead of spinning on it

    def _hold(self) -> None:
        """Receive into the held batch; drain it now if that completes it (else the window's timer will)."""
        self._receive(self._held, self._held_keys)
        if len(self._held) >= self._expected and self._timer is not None:
            self._timer.cancel()
            self._drain()

    def _receive(self, batch: list[tuple[bytes, ...]], keys: list[str] | None) -> None:
        """Append waiting messages to ``batch`` until it holds ``BATCH`` or none is left (which re-arms the FD)."""
        sock = self.sock
        if sock is None or sock.closed:
            return
        # Frames, not recv_multipart: reading the ``more`` flag off a Frame costs a
        # fraction of recv_multipart's per-message getsockopt(RCVMORE).
        recv = sock.recv
        try:
            for _ in range(BATCH - len(batch)):
                frame = recv(zmq.NOBLOCK, copy=False)
                if keys is not None:  # with CURVE, the sender: the Z85 key its ZAP handshake authenticated
                    keys.append(str(frame.get("User-Id")))
                if frame.more:  # the rest of a multi-part message (rejected by the codec)
                    parts = [frame.bytes]
                    while frame.more:
                        frame = recv(zmq.NOBLOCK, copy=False)
                        parts.append(frame.bytes)
                    batch.append(tuple(parts))
                else:  # a 1-tuple: recycled by CPython, it does not count towards a collection as a list would
                    batch.append((frame.bytes,))
        except zmq.Again:
            pass
        except zmq.ZMQError as exc:
            log.error("ingest.recv_failed", error=str(exc))

    def _drain(self) -> None:
        self._scheduled = False
        self._timer = None
        now = time.monotonic()
        sock = self.sock
        if sock is None or sock.closed:
            return
        batch, keys = self._held, self._held_keys
        self._held = []
        self._held_keys = [] if keys is not None else None
        self._receive(batch, keys)
        if batch:  # the window runs from the start of the previous drain that found events
            since, self._last_drain = now - self._last_drain, now
            # What a window collects at the rate since the previous drain (a backlog: BATCH).
            self._expected = min(BATCH, max(2, int(len(batch) * self.coalesce_s / since))) if since > 0 else BATCH
            self.batches += 1
            try:
                reasons = self.stream.ingest(batch, keys)
            except Exception:
                self.internal_errors += 1
                log.exception("ingest.batch_failed", size=len(batch))
                reasons = []
            if reasons:
                self._log_rejects(len(reasons))
            if self.bindings is not None and self.loop is not None:
                self.bindings.changed(self.loop)
        if len(batch) == BATCH or (int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN):
            self._schedule(backlog=True)  # more arrived while draining: a backlog, no window

    def _log_rejects(self, n: int) -> None:
        """At most one ``ingest.rejected`` line per ``REJECT_LOG_INTERVAL``; none is left unlogged.

        Rejections inside an interval are summed into one line at its end, so the
        ``count`` fields of all the lines add up to every rejection.
        """
        self._rejects_since_log += n
        wait = self._reject_log.due_in("rejected", time.monotonic())
        if wait <= 0:
            self._flush_rejects()
        elif not self._reject_flush_scheduled and self.loop is not None:
            self._reject_flush_scheduled = True
            self.loop.call_later(wait, self._flush_rejects)

    def _flush_rejects(self) -> None:
        self._reject_flush_scheduled = False
        if not self._rejects_since_log:
            return
        log.warning(
            "ingest.rejected",
            count=self._rejects_since_log,
            by_reason={k: v for k, v in self.stream.rejected.items() if v},
        )
        self._reject_log.mark("rejected", time.monotonic())
        self._rejects_since_log = 0

    def close(self) -> None:
        if self.sock is not None and not self.sock.closed:
            if self.loop is not None:
                try:
                    self.loop.remove_reader(self.sock.fileno())
                except (ValueError, zmq.ZMQError):
                    pass
            self.sock.close(0)
        if self.curve is not None:
            self.curve.stop()
        if self.bindings is not None:
            self.bindings.close()
        self.ctx.term()

    def statistics(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"endpoint": self.endpoint, "bound": self.bound, "batches": self.batches}
        if self.curve is not None:
            stats["curve"] = self.curve.statistics()
            keys = self.stream.producer_keys
            if keys is not None:
                stats["curve"]["producer_ids_bound"] = len(keys)
        return stats
