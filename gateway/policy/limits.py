"""What one client may cost and who may connect: the limits, as pure decisions plus thin hooks.

Pure parts (no sockets, time passed in, unit-tested without I/O):

- :class:`TokenBucket`: the inbound message rate of one client (``--client-msg-rate``
  messages per second, bursts up to twice that).  Every inbound frame costs one token,
  data or control (a flood of protocol pings is a flood too).
- :func:`refusal`: whether one more client may join, given how many there are in
  total (``--max-clients``) and from its remote address (``--max-clients-per-ip``,
  0 = no per-address limit; behind a reverse proxy every client has the proxy's
  address).

Hooks for the transports (WebSocket, SSE), each counted in ``/status``
(``clients.refused`` by reason):

- :func:`check_admission` before a response that is not a WebSocket upgrade (SSE, a
  plain GET): HTTP 503 with ``Retry-After``;
- :func:`refuse_after_upgrade` right after a WebSocket upgrade, before joining the hub,
  with no await in between: the client is closed with 1013 ``over capacity (<limit>)``,
  which a browser can read (a refused upgrade's 503 reaches it as a bare 1006), and the
  limits hold exactly, not approximately;
- :func:`set_keepalive`: TCP keepalive probes on an accepted socket so a peer that
  vanished without a FIN or RST is found by the kernel even when protocol pings are off.
"""

from __future__ import annotations

import socket
from typing import Any

from aiohttp import web

from gateway.engine.fanout import Hub

#: Keepalive probes sent (one per ``interval``) before the kernel declares the peer dead.
KEEPALIVE_PROBES = 3
KEEPALIVE_INTERVAL = 10


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; starts full.

    :meth:`take` costs O(1) and never blocks: it answers whether a message may
    be accepted at time ``now`` (any monotonic clock, in seconds).
    """

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are enough; refill first by the time elapsed."""
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


def message_bucket(rate: int, now: float) -> TokenBucket:
    """The per-client inbound bucket: ``rate``/s (``--client-msg-rate``), bursts of twice that."""
    return TokenBucket(rate, 2 * rate, now)


def refusal(total: int, from_peer: int, max_clients: int, max_per_peer: int) -> str | None:
    """Why one more client is refused (a ``clients.refused`` key), or None to admit it."""
    if total >= max_clients:
        return "max_clients"
    if max_per_peer and from_peer >= max_per_peer:
        return "max_clients_per_ip"
    return None


class Admission:
    """Client capacity against the hub's counts, and the counters of refusals and limit closes."""

    def __init__(self, hub: Hub, max_clients: int, max_clients_per_ip: int) -> None:
        self.hub = hub
        self.max_clients = max_clients
        self.max_clients_per_ip = max_clients_per_ip
        #: Subscriptions refused before or right after the upgrade, by reason (``clients.refused``).
        self.refused: dict[str, int] = {"max_clients": 0, "max_clients_per_ip": 0, "bad_request": 0}
        #: Clients the gateway closed for breaking a limit or going silent (``clients.closed_by_limit``).
        self.closed_by_limit: dict[str, int] = {"rate_limited": 0, "frame_too_big": 0, "dead_peer": 0}

    def refusal_now(self, peer: str) -> str | None:
        """Why one more client from ``peer`` is refused now (counted), or None."""
        hub = self.hub
        reason = refusal(len(hub.subscribers), hub.per_peer.get(peer, 0), self.max_clients, self.max_clients_per_ip)
        if reason is not None:
            self.refused[reason] = self.refused.get(reason, 0) + 1
        return reason


def check_admission(admission: Admission, peer: str) -> None:
    """Before the upgrade: raise HTTP 503 (counted) when a client limit is reached."""
    reason = admission.refusal_now(peer)
    if reason is not None:
        raise web.HTTPServiceUnavailable(text=f"over capacity ({reason})\n", headers={"Retry-After": "5"})


def refuse_after_upgrade(admission: Admission, peer: str) -> str | None:
    """Right before joining the hub: the reason to close with 1013 (counted), or None."""
    return admission.refusal_now(peer)


def set_keepalive(transport: Any, idle: float) -> None:
    """TCP keepalive on the transport's socket: first probe after ``idle`` s (0 = OS default)."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if idle > 0 and hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, int(idle)))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)
    except OSError:  # the peer is already gone; the transport reports it
        pass
