"""The ingest socket: a ZeroMQ SUB bound at ``--ingest``; emitters connect their XPUB.

Reading is edge-triggered on the socket's FD from the event loop (no thread,
no await per message): each wake-up drains up to ``BATCH`` messages and hands
them to :meth:`Stream.ingest` as one batch, so a burst costs one fan-out per
batch, not one per event; if more are waiting it reschedules itself with
``call_soon`` so HTTP clients are served between batches.  ZeroMQ bounds what
waits in the socket (``RCVHWM``) and the size of a message (``MAXMSGSIZE``;
larger ones are dropped by ZeroMQ before they reach us).  Nothing here raises
into the loop: a failure while processing a batch is logged and counted.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import zmq

from gateway import logs
from gateway.stream import Stream

BATCH = 1024
REJECT_LOG_INTERVAL = 5.0

log = logs.get("gateway.ingest")


class IngestBindError(RuntimeError):
    """The ingest endpoint cannot be bound; the message is one line for the operator."""


class Ingest:
    def __init__(self, endpoint: str, stream: Stream, *, max_event_bytes: int, rcvhwm: int = 100_000) -> None:
        self.endpoint = endpoint
        self.stream = stream
        self.max_event_bytes = max_event_bytes
        self.rcvhwm = rcvhwm
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock: zmq.Socket[bytes] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.internal_errors = 0
        self.batches = 0
        self._scheduled = False
        self._last_reject_log = 0.0
        self._rejects_since_log = 0

    @property
    def bound(self) -> bool:
        return self.sock is not None and not self.sock.closed

    def configure_socket(self, sock: zmq.Socket[bytes]) -> None:
        """Options applied before bind (subclass or extend for CURVE/ZAP)."""
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
            raise IngestBindError(f"cannot bind ingest {self.endpoint}: {exc.strerror}") from None
        if self.endpoint.startswith("ipc://"):
            os.chmod(self.endpoint[len("ipc://") :], 0o660)
        self.sock = sock

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.sock is not None
        self.loop = loop
        loop.add_reader(self.sock.fileno(), self._on_readable)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled and self.loop is not None:
            self._scheduled = True
            self.loop.call_soon(self._drain)

    def _on_readable(self) -> None:
        self._schedule()

    def _drain(self) -> None:
        self._scheduled = False
        sock = self.sock
        if sock is None or sock.closed:
            return
        batch: list[list[bytes]] = []
        recv = sock.recv_multipart
        try:
            for _ in range(BATCH):
                batch.append(recv(zmq.NOBLOCK))
        except zmq.Again:
            pass
        except zmq.ZMQError as exc:
            log.error("ingest.recv_failed", error=str(exc))
        if batch:
            self.batches += 1
            try:
                reasons = self.stream.ingest(batch)
            except Exception:
                self.internal_errors += 1
                log.exception("ingest.batch_failed", size=len(batch))
                reasons = []
            if reasons:
                self._log_rejects(len(reasons))
        if len(batch) == BATCH or (int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN):
            self._schedule()

    def _log_rejects(self, n: int) -> None:
        self._rejects_since_log += n
        now = time.monotonic()
        if now - self._last_reject_log >= REJECT_LOG_INTERVAL:
            log.warning(
                "ingest.rejected",
                count=self._rejects_since_log,
                by_reason={k: v for k, v in self.stream.rejected.items() if v},
            )
            self._last_reject_log = now
            self._rejects_since_log = 0

    def close(self) -> None:
        if self.sock is not None and not self.sock.closed:
            if self.loop is not None:
                try:
                    self.loop.remove_reader(self.sock.fileno())
                except (ValueError, zmq.ZMQError):
                    pass
            self.sock.close(0)
        self.ctx.term()

    def statistics(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "bound": self.bound, "batches": self.batches}
