"""What one client may cost and who may connect: the limits, as pure decisions plus thin hooks.

Pure parts (no sockets, time passed in, unit-tested without I/O):

- :func:`message_bucket`: the inbound message rate of one client (``--client-msg-rate``
  messages per second, bursts up to twice that).  Every inbound frame costs one token,
  data or control (a flood of protocol pings is a flood too).
- :class:`FailureLimiter`: failed authentication attempts per address (a token
  bucket each; memory bounded), so a guesser is slowed down (429) before its
  credential is even looked at.
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

import ipaddress
import socket
from typing import Any

from aiohttp import web

from gateway.core.bucket import TokenBucket
from gateway.engine.fanout import Hub

#: Keepalive probes sent (one per ``interval``) before the kernel declares the peer dead.
KEEPALIVE_PROBES = 3
KEEPALIVE_INTERVAL = 10


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
        #: The same refusals by transport (``clients.refused_by_transport``).
        self.refused_by_transport: dict[str, int] = {"ws": 0, "sse": 0}
        #: Clients the gateway closed for breaking a limit or going silent (``clients.closed_by_limit``).
        self.closed_by_limit: dict[str, int] = {"rate_limited": 0, "frame_too_big": 0, "dead_peer": 0}

    def refusal_now(self, peer: str, transport: str) -> str | None:
        """Why one more ``transport`` client from ``peer`` is refused now (counted), or None."""
        hub = self.hub
        reason = refusal(len(hub.subscribers), hub.per_peer.get(peer, 0), self.max_clients, self.max_clients_per_ip)
        if reason is not None:
            self.count_refusal(reason, transport)
        return reason

    def count_refusal(self, reason: str, transport: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        self.refused_by_transport[transport] = self.refused_by_transport.get(transport, 0) + 1


def check_admission(admission: Admission, peer: str, transport: str) -> None:
    """Before the upgrade: raise HTTP 503 (counted) when a client limit is reached."""
    reason = admission.refusal_now(peer, transport)
    if reason is not None:
        raise web.HTTPServiceUnavailable(text=f"over capacity ({reason})\n", headers={"Retry-After": "5"})


def refuse_after_upgrade(admission: Admission, peer: str, transport: str) -> str | None:
    """Right before joining the hub: the reason to close with 1013 (counted), or None."""
    return admission.refusal_now(peer, transport)


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


#: Failed attempts an address may make in a burst, then one more per ``FAILURE_REFILL_S``.
FAILURE_BURST = 10
FAILURE_REFILL_S = 6.0


class FailureLimiter:
    """A token bucket of failed attempts per address; memory bounded by ``max_addresses``.

    An address may fail ``burst`` times, then once per ``refill_s``; past that
    it is *blocked* until the bucket refills.  IPv6 peers are counted per /64
    (one host usually owns a whole /64).  When the table is full the least
    recently failed address is forgotten.
    """

    def __init__(self, burst: int = FAILURE_BURST, refill_s: float = FAILURE_REFILL_S, max_addresses: int = 10_000):
        self.burst = burst
        self.refill_s = refill_s
        self.max_addresses = max_addresses
        #: Least recently failed first.
        self._buckets: dict[str, TokenBucket] = {}

    @staticmethod
    def key(address: str) -> str:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address
        if ip.version == 6 and ip.ipv4_mapped is None:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)

    def retry_after(self, address: str, now: float) -> float:
        """0 if ``address`` may try now, else seconds until it may."""
        bucket = self._buckets.get(self.key(address))
        return 0.0 if bucket is None else bucket.wait(now)

    def fail(self, address: str, now: float) -> bool:
        """Record one failure (every one counts, even while blocked); True if it exhausted the bucket."""
        key = self.key(address)
        bucket = self._buckets.pop(key, None) or TokenBucket(1.0 / self.refill_s, self.burst, now)
        if len(self._buckets) >= self.max_addresses:
            del self._buckets[next(iter(self._buckets))]
        self._buckets[key] = bucket
        left = bucket.charge(now)
        return left < 1.0 <= left + 1.0

    def blocked(self, now: float) -> int:
        """Addresses refused right now (their bucket holds less than one attempt); O(remembered)."""
        return sum(1 for bucket in self._buckets.values() if bucket.wait(now) > 0)

    def __len__(self) -> int:
        return len(self._buckets)
