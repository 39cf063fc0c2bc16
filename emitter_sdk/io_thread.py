"""The emitter's I/O thread: hands queued events to ZeroMQ, re-sends on (re)subscription.

Invariants:
- Only this thread touches the ZeroMQ sockets (one XPUB per endpoint, *connected*
  to a gateway's ingest: the gateway binds).  Every send is non-blocking: an XPUB
  drops at its high-water mark (that gateway sees the jump in ``pseq`` and reports
  an upstream gap) and, with ``ZMQ_IMMEDIATE``, while its gateway is away.
- Every queued event goes to every endpoint, in queue (= ``pseq``) order.
- The last ``resend_events`` events / ``resend_seconds`` seconds are kept (one
  buffer for all endpoints, bounded by both); when an endpoint's gateway
  (re)subscribes, that buffer is re-sent to that endpoint only, before any newer
  event (``XPUB_MANUAL``: the subscription takes effect when this thread applies it).
- ``emit()`` threads only append to the queue under the emitter's lock and call
  :meth:`IOThread.notify`; they never block on this thread.
- Counters (``sent``, ``resent``, ``resubscriptions``) are written by this thread only.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

import zmq

#: After sending, the thread keeps checking the queue every LINGER_TICK_S for
#: LINGER_S before it sleeps on its wake-up pipe.
LINGER_S = 0.002
LINGER_TICK_S = 0.0002

log = logging.getLogger("emitter_sdk")


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """What the I/O thread needs to know about its sockets and its re-send buffer."""

    endpoints: tuple[str, ...]
    resend_events: int
    resend_seconds: float
    sndhwm: int
    curve_server_key: bytes | None
    curve_keypair: tuple[bytes, bytes] | None


class IOThread:
    """One daemon thread per emitter (per process), started on first use."""

    def __init__(self, options: TransportOptions, queue: deque[bytes], name: str) -> None:
        self.options = options
        self.queue = queue
        self.name = name
        self.sent = 0
        self.resent = 0
        self.resubscriptions = 0
        self.subscribed = threading.Event()  # set once every endpoint has subscribed
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._sleeping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- called from emit() and the API -------------------------------------------------

    def notify(self) -> None:
        """An event was queued: start the thread, or wake it if it sleeps.  Never blocks."""
        if self._thread is None:
            self.start()
        elif self._sleeping:
            self._sleeping = False
            self._wake()

    def start(self) -> None:
        """Start the thread (idempotent)."""
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def stop(self, timeout: float) -> None:
        """Ask the thread to send what is queued and exit; wait up to ``timeout`` s; close the pipe."""
        if self._thread is not None:
            self._stop = True
            self._wake()
            self._thread.join(timeout)
        self.close_pipe()

    def close_pipe(self) -> None:
        """Close the wake-up pipe (also what a forked child does with its parent's)."""
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:  # full pipe: a wake-up is pending anyway; closed: stopping
            pass

    # -- the thread ---------------------------------------------------------------------

    def _open_socket(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
        opts = self.options
        sock = ctx.socket(zmq.XPUB)
        # Manual mode: a (re)connecting gateway receives nothing until this thread
        # has applied its subscription and re-sent the recent buffer, so re-sent
        # events always reach it before newer ones.
        sock.setsockopt(zmq.XPUB_MANUAL, 1)
        # No pipe while disconnected: otherwise events sent during a gateway restart
        # wait in the old pipe and reach the new gateway *before* the re-send, which
        # it would then see as a jump (upstream gap) followed by duplicates.
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, opts.sndhwm)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        if opts.curve_server_key is not None:
            public, secret = opts.curve_keypair or zmq.curve_keypair()
            sock.curve_serverkey = opts.curve_server_key
            sock.curve_publickey = public
            sock.curve_secretkey = secret
        sock.connect(endpoint)
        return sock

    def _run(self) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        socks = [self._open_socket(ctx, endpoint) for endpoint in self.options.endpoints]
        poller = zmq.Poller()
        for sock in socks:
            poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        recent: deque[tuple[float, bytes]] = deque()
        queue = self.queue
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
                            self.subscribed.set()
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
                    self.sent += sent
                    self._trim(recent, now)
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
        self._trim(recent, time.monotonic())
        for _ts, data in recent:
            sock.send(data, zmq.NOBLOCK)
        self.resubscriptions += 1
        self.resent += len(recent)
        return True

    def _trim(self, recent: deque[tuple[float, bytes]], now: float) -> None:
        """Bound the re-send buffer by count and age."""
        while len(recent) > self.options.resend_events:
            recent.popleft()
        oldest = now - self.options.resend_seconds
        while recent and recent[0][0] < oldest:
            recent.popleft()
