"""Tell the service manager (systemd) how the daemon is doing: ``sd_notify`` and the watchdog.

The protocol is one ``AF_UNIX`` datagram of ``KEY=VALUE`` lines sent to the
socket named by ``$NOTIFY_SOCKET`` (a path, or an abstract name written with a
leading ``@``).  That is twenty lines, so they live here instead of a
dependency: ``sdnotify`` is unmaintained and ``systemd-python`` needs
libsystemd headers to build.

Sending never blocks and never raises: the socket is non-blocking and a
datagram the receiver cannot take is dropped (logged once).  Without
``$NOTIFY_SOCKET`` (not under systemd) every call is a no-op.

:func:`supervise` starts two tasks *on the event loop*:

- ``WATCHDOG=1`` every ``$WATCHDOG_USEC / 2``, only while the gateway is
  healthy (ingest bound, serving, not shutting down).  A stalled loop cannot
  run the task, so the pings stop and systemd restarts the service;
- ``STATUS=<one line>`` (clients, events/s, seq) whenever it changes, checked
  every :data:`STATUS_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping

from aiohttp import web

from gateway.http.endpoints import status_snapshot
from gateway.http.parts import HEALTH, HUB, LIFECYCLE, STREAM, healthy
from gateway.process import logs

#: Seconds between checks of the STATUS= line.
STATUS_INTERVAL = 1.0

log = logs.get("gateway.notify")


class Notifier:
    """A connectionless sender to ``$NOTIFY_SOCKET``; disabled when there is none."""

    def __init__(self, address: str | None, watchdog_usec: int = 0) -> None:
        self.address = "\0" + address[1:] if address and address.startswith("@") else address
        #: Half of this is the ping period; 0 = no watchdog requested.
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` like ``sd_watchdog_enabled``."""
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        for_us = not pid or pid == str(os.getpid())
        return cls(environ.get("NOTIFY_SOCKET") or None, int(usec) if usec.isdigit() and for_us else 0)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> None:
        """Send ``KEY=VALUE`` lines as one datagram."""
        if self.address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(assignments).encode(), self.address)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("notify.send_failed", socket=self.address, error=str(exc))

    def reloading(self, reload: Callable[[], None]) -> None:
        """Run ``reload`` between ``RELOADING=1`` and ``READY=1`` (the SIGHUP handler)."""
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            reload()
        finally:
            self.send("READY=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def status_line(app: web.Application) -> str:
    """The one-line summary systemd shows in ``systemctl status``."""
    by_kind = app[HUB].count_by_kind()
    transports = ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items()))
    clients = f"clients {sum(by_kind.values())}" + (f" ({transports})" if transports else "")
    line = f"{clients}, {app[HEALTH].events_per_s():.1f} events/s, seq {app[STREAM].seq}"
    reasons = status_snapshot(app).degraded_reasons  # the one rule (``gateway.core.health``)
    if reasons:
        line = f"DEGRADED ({'; '.join(reasons)}); {line}"
    restart_needed = app[LIFECYCLE].restart_needed
    if restart_needed:
        line += f"; restart needed ({', '.join(restart_needed)})"
    return line


def supervise(notifier: Notifier, app: web.Application) -> list[asyncio.Task[None]]:
    """Start the watchdog and STATUS= tasks (none when not under a service manager)."""
    if not notifier.enabled:
        return []
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(_status_updates(notifier, app))]
    if notifier.watchdog_usec:
        tasks.append(loop.create_task(_watchdog_pings(notifier, app, notifier.watchdog_usec / 2e6)))
    return tasks


async def _watchdog_pings(notifier: Notifier, app: web.Application, period: float) -> None:
    while True:
        if healthy(app):
            notifier.send("WATCHDOG=1")
        await asyncio.sleep(period)


async def _status_updates(notifier: Notifier, app: web.Application) -> None:
    last = ""
    while True:
        await asyncio.sleep(STATUS_INTERVAL)
        line = status_line(app)
        if line != last:
            notifier.send(f"STATUS={line}")
            last = line
