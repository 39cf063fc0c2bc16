"""Which ``Host`` a request may name and which address it comes from (``--allow-host``, ``--trusted-proxy``).

Pure decisions on plain values (no sockets, no aiohttp), unit-tested without I/O:

- :func:`host_verdict`: DNS rebinding defence.  A request must name exactly one
  ``Host``; it is allowed when that host (port ignored) is an IP literal, ``localhost``
  or matches one of the ``--allow-host`` names (``*.example.com`` globs match any
  sub-domain, not the bare domain).  No ``Host`` → 400, several → 400, any other
  name → 403.  Nothing here resolves a name.
- :func:`client_address`: the address used for per-address limits, the failed-auth
  budget and logs.  Only when the TCP peer is inside a ``--trusted-proxy`` network is
  ``X-Forwarded-For`` read, right to left, skipping addresses that are themselves
  trusted; the first untrusted one is the client.  A malformed entry stops the walk
  (the last trusted hop is then the client), so a forged header can only name an
  address to the left of what the proxies appended, never replace it.

The hook (:func:`middleware`) runs before every handler, before anything reads
``request.host`` (aiohttp before 3.14 resolved the machine's FQDN, blocking the
loop, for a request without ``Host``), and hands on a request whose ``remote`` is
the client address.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Most ``X-Forwarded-For`` entries looked at: a chain of proxies is short, a forged header may not be.
MAX_FORWARDED_HOPS = 32


class PolicyError(ValueError):
    """A bad ``--allow-host`` or ``--trusted-proxy`` value; ``field`` names the option."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(why)
        self.field = field


def host_name(host: str) -> str:
    """``Example.COM:8765`` → ``example.com``; ``[::1]:80`` → ``::1``; a trailing dot is dropped."""
    host = host.strip()
    if host.startswith("["):
        return host[1 : host.find("]")].lower() if "]" in host else host.lower()
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".").lower()


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def parse_allowed_hosts(names: Iterable[str]) -> tuple[str, ...]:
    """Validate ``--allow-host`` values: a name or ``*.`` + a name; lower-cased."""
    out = []
    for raw in names:
        name = raw.strip().rstrip(".").lower()
        bare = name.removeprefix("*.")
        labels = bare.split(".")
        if not bare or "*" in bare or not all(_label_ok(label) for label in labels):
            raise PolicyError("allow_host", f"expected a host name or *.domain, got {raw[:80]!r}")
        out.append(name)
    return tuple(out)


def _label_ok(label: str) -> bool:
    return 0 < len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label) and label.isascii()


def host_allowed(name: str, allowed: Sequence[str]) -> bool:
    """An IP literal, ``localhost`` or a listed name / glob (``name`` as :func:`host_name` gives it)."""
    if name == "localhost" or is_ip_literal(name):
        return True
    return any(
        name == pattern or (pattern.startswith("*.") and fnmatch.fnmatchcase(name, pattern)) for pattern in allowed
    )


def host_verdict(hosts: Sequence[str], allowed: Sequence[str]) -> tuple[int, str] | None:
    """None to serve the request, else (HTTP status, reason) from its ``Host`` header values."""
    if len(hosts) != 1 or not hosts[0].strip():
        return 400, "a request must carry exactly one Host header"
    if not host_allowed(host_name(hosts[0]), allowed):
        return 403, "host not allowed"
    return None


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """Validate ``--trusted-proxy`` values (``10.0.0.0/8``, ``::1``; host bits are masked)."""
    out = []
    for cidr in cidrs:
        try:
            out.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise PolicyError("trusted_proxy", f"expected an address or CIDR network, got {cidr[:80]!r}") from None
    return tuple(out)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6] or [v6]:port
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str | None:
    """The client's address: ``peer``, or from ``X-Forwarded-For`` when ``peer`` is a trusted proxy."""
    if not trusted or peer is None:
        return peer
    current = peer
    ip = _address(peer)
    hops = [part for value in forwarded_for for part in value.split(",") if part.strip()][-MAX_FORWARDED_HOPS:]
    while ip is not None and _trusted(ip, trusted) and hops:
        ip = _address(hops.pop())
        if ip is None:
            break
        current = str(ip)
    return current


def is_loopback(address: str | None) -> bool:
    ip = _address(address) if address else None
    return ip is not None and ip.is_loopback


@dataclass(frozen=True)
class PeerPolicy:
    """The parsed ``--allow-host`` names and ``--trusted-proxy`` networks (swapped whole on SIGHUP)."""

    allowed_hosts: tuple[str, ...] = ()
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, allow_host: Iterable[str], trusted_proxy: Iterable[str]) -> PeerPolicy:
        return cls(parse_allowed_hosts(allow_host), parse_networks(trusted_proxy))


def middleware(policy: Callable[[], PeerPolicy], refused: Callable[[str, str | None], None]) -> Middleware:
    """The hook: 400/403 by :func:`host_verdict` (``refused("host", peer)`` counts it), then a
    request whose ``remote`` is :func:`client_address`.  ``policy`` returns the current rules."""

    @web.middleware
    async def check_peer(request: web.Request, handler: Handler) -> web.StreamResponse:
        rules = policy()
        remote = client_address(request.remote, request.headers.getall("X-Forwarded-For", ()), rules.trusted_proxies)
        verdict = host_verdict(request.headers.getall("Host", ()), rules.allowed_hosts)
        if verdict is not None:
            refused("no_host" if verdict[0] == 400 else "host", remote)
            return web.Response(status=verdict[0], text=f"{verdict[1]}\n")
        if remote != request.remote and remote is not None:
            request = request.clone(remote=remote)
        return await handler(request)

    return check_peer
