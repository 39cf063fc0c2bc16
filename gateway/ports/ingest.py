"""The ingest socket: a ZeroMQ SUB bound at ``--ingest``; emitters connect their XPUB.

Reading is edge-triggered on the socket's FD from the event loop (no thread,
no await per message): each wake-up drains up to ``BATCH`` messages and hands
them to :meth:`Stream.ingest` as one batch, so a burst costs one fan-out per
batch, not one per event.  When more is waiting as a drain ends (a backlog), the
next drain follows at once (``call_soon``, so HTTP clients are served between
batches).  A wake-up from idle starts a drain at most once per
:data:`COALESCE_S`: an event that arrives sooner after the previous drain waits
for the rest of that window, so at a steady rate the events of one window reach
each client in one write (one ``send`` per client per window instead of per
event: at 1,000 ev/s about half the sends); an event after a quiet spell is
drained at once.  The window is what an event may wait here, so it is the
p99 price of those saved sends (docs/benchmarks.md: 3 ms cost 1 ms more p99 than
2 ms for 0.54 instead of 0.70 × Nchan's CPU per delivery; the loop's timers
tick in whole milliseconds, so 1 ms is no window at all).  While a drain is due, reading ``ZMQ_EVENTS`` re-arms ZeroMQ's
edge-triggered FD so the loop sleeps instead of spinning on it.  ZeroMQ bounds
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
#: Least spacing of drain starts (s): the most an event waits for others to share its writes.
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
        self._scheduled = False
        self._last_drain = 0.0
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
        if not self._scheduled and loop is not None:
            self._scheduled = True
            wait = 0.0 if backlog else self._last_drain + COALESCE_S - loop.time()
            if wait > 0:
                loop.call_later(wait, self._drain)
            else:
                loop.call_soon(self._drain)

    def _on_readable(self) -> None:
        sock = self.sock
        if self._scheduled and sock is not None and not sock.closed:
            sock.getsockopt(zmq.EVENTS)  # a drain is due: re-arm the FD instead of spinning on it
            return
        self._schedule()

    def _drain(self) -> None:
        self._scheduled = False
        if self.loop is not None:
            self._last_drain = self.loop.time()
        sock = self.sock
        if sock is None or sock.closed:
            return
        batch: list[tuple[bytes, ...]] = []
        #: With CURVE, each message's sender (the Z85 client key its ZAP handshake authenticated).
        keys: list[str] | None = [] if self.curve is not None else None
        # Frames, not recv_multipart: reading the ``more`` flag off a Frame costs a
        # fraction of recv_multipart's per-message getsockopt(RCVMORE).
        recv = sock.recv
        try:
            for _ in range(BATCH):
                frame = recv(zmq.NOBLOCK, copy=False)
                if keys is not None:
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
        if batch:
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
