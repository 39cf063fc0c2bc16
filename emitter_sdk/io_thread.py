"""The emitter's I/O thread: hands queued events to ZeroMQ, re-sends on (re)subscription.

Invariants:
- Only this thread touches the ZeroMQ sockets (one XPUB per endpoint, *connected*
  to a gateway's ingest: the gateway binds).  Every send is non-blocking: an XPUB
  drops at its high-water mark (that gateway sees the jump in ``pseq`` and reports
  an upstream gap) and, with ``ZMQ_IMMEDIATE``, while its gateway is away.
- Every queued event goes to every endpoint, in queue (= ``pseq``) order.
- The last ``resend_events`` events / ``resend_seconds`` seconds are kept (one
  buffer for all endpoints, bounded by both: the messages and their send times in two
  deques of the same ``maxlen``, appended together, so that keeping an event allocates
  no object the cyclic garbage collector counts — a tuple per event made the buffer's
  filling trigger a young collection every ~700 events, 34–125 µs measured, run by
  whichever thread allocated next, usually inside ``emit()``); when an endpoint's gateway
  (re)subscribes, that buffer is re-sent to that endpoint only, before any newer
  event (``XPUB_MANUAL``: the subscription takes effect when this thread applies it).
  A (re)subscription is noticed at the next wake-up, at most :data:`CHECK_S` later.
- Counters (``sent``, ``resent``, ``resubscriptions``) are written by this thread only.

Wake-up and batching (no polling ticks): the thread sends everything queued, then
- if events are coming fast (this send less than :data:`BUSY_S` after the previous
  one), waits :data:`BATCH_S` and sends what arrived meanwhile: one timed wake-up per
  window however many events, and ``emit()`` makes no system call at all;
- otherwise, under the emitter's lock and only if the queue is empty, marks itself
  ``idle`` and blocks on a lock used as a binary semaphore (waking every
  :data:`CHECK_S` to look for subscriptions).  ``emit()``, under the same lock,
  appends and takes the ``idle`` mark; only the ``emit()`` that took it calls
  :meth:`IOThread.wake`: one futex wake-up per empty → non-empty transition, made
  while holding the GIL (a pipe write would release the GIL and could hand it to
  this thread in the middle of ``emit()``).  No wake-up can be lost: the mark is
  set only when the queue is empty, and read and cleared only under the lock.
So an event waits at most :data:`BATCH_S` in the queue while events keep coming and
not at all after a pause, ``emit()`` never waits for this thread, and an idle
emitter costs :data:`CHECK_S`-spaced wake-ups only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import zmq

#: How often the thread looks for (re)subscriptions and trims the re-send buffer by age.
CHECK_S = 0.1
#: While busy, the thread sends at most every BATCH_S, without being woken: the
#: batching window, and the most an event waits in the queue while events keep coming.
BATCH_S = 0.001
#: Busy means: this send came less than BUSY_S after the previous one (≥ 500 ev/s).
BUSY_S = 0.002
#: pyzmq's send without the Python-level wrapper of ``zmq.Socket.send`` (which only adds
#: DRAFT routing-id/group handling): 0.26 µs instead of 0.74 µs per message, measured.
_SEND = zmq.backend.Socket.send

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

    def __init__(self, options: TransportOptions, queue: deque[bytes], lock: threading.Lock, name: str) -> None:
        self.options = options
        self.queue = queue
        self.lock = lock
        self.name = name
        #: True while the thread waits with nothing queued; taken (set False) by the
        #: ``emit()`` that must wake it.  Read and written under ``lock`` only.
        self.idle = True
        self.sent = 0
        self.resent = 0
        self.resubscriptions = 0
        self.subscribed = threading.Event()  # set once every endpoint has subscribed
        self._wakeup = threading.Lock()  # a binary semaphore: released = a wake-up is pending
        self._wakeup.acquire()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = False

    def wake(self) -> None:
        """Start the thread, or wake it.  Never blocks; never releases the GIL."""
        if self._thread is None:
            self.start()
            return
        try:
            self._wakeup.release()
        except RuntimeError:  # released already: a wake-up is pending
            pass

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
        """Ask the thread to send what is queued and exit; wait up to ``timeout`` s."""
        if self._thread is not None:
            self._stop = True
            self.wake()
            self._thread.join(timeout)

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
        recent: deque[bytes] = deque(maxlen=self.options.resend_events)
        times: deque[float] = deque(maxlen=self.options.resend_events)  # when each of ``recent`` was sent
        queue, lock, wakeup = self.queue, self.lock, self._wakeup
        subscribed: set[zmq.Socket[bytes]] = set()
        next_check = last_sent = 0.0
        try:
            while True:
                now = time.monotonic()
                if now >= next_check:  # at most every CHECK_S, however busy
                    next_check = now + CHECK_S
                    self._trim(recent, times, now)
                    for sock in socks:
                        if int(sock.get(zmq.EVENTS)) & zmq.POLLIN and self._on_subscriptions(sock, recent, times):
                            subscribed.add(sock)
                            if len(subscribed) == len(socks):
                                self.subscribed.set()
                busy = False
                if queue:
                    self._send_queued(socks, recent, times, now)
                    busy, last_sent = now - last_sent < BUSY_S, now
                with lock:
                    if self._stop and not queue:
                        return
                    if not busy:
                        if queue:
                            continue
                        self.idle = True
                # Busy (two sends within BUSY_S): look again after BATCH_S without being
                # woken, so emit() makes no system call meanwhile; else wait until
                # emit() wakes us (or CHECK_S passes).
                wakeup.acquire(timeout=BATCH_S if busy else CHECK_S)
        except zmq.ZMQError as exc:
            log.warning("emitter_sdk.io_thread_stopped error=%r", str(exc))
        finally:
            for sock in socks:
                sock.close(linger=200 if sock in subscribed else 0)
            ctx.term()

    def _send_queued(
        self, socks: list[zmq.Socket[bytes]], recent: deque[bytes], times: deque[float], now: float
    ) -> None:
        """Send everything queued to every endpoint and keep it in ``recent`` (``now`` in ``times``)."""
        queue, keep, stamp, send, sent = self.queue, recent.append, times.append, _SEND, 0
        if len(socks) == 1:
            sock = socks[0]
            while queue:
                data = queue.popleft()
                send(sock, data, zmq.NOBLOCK)
                keep(data)
                stamp(now)
                sent += 1
        else:
            while queue:
                data = queue.popleft()
                for sock in socks:
                    send(sock, data, zmq.NOBLOCK)
                keep(data)
                stamp(now)
                sent += 1
        self.sent += sent

    def _on_subscriptions(self, sock: zmq.Socket[bytes], recent: deque[bytes], times: deque[float]) -> bool:
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
        self._trim(recent, times, time.monotonic())
        for data in recent:
            sock.send(data, zmq.NOBLOCK)
        self.resubscriptions += 1
        self.resent += len(recent)
        return True

    def _trim(self, recent: deque[bytes], times: deque[float], now: float) -> None:
        """Bound the re-send buffer by age (its ``maxlen`` bounds the count)."""
        oldest = now - self.options.resend_seconds
        while times and times[0] < oldest:
            times.popleft()
            recent.popleft()
