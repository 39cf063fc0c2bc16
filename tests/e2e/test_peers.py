"""Host check and trusted proxies against a real gatewayd, over real HTTP.

DNS rebinding: a request naming a host that is not an IP literal, ``localhost`` or an
``--allow-host`` name gets 403 on every route, with every ``--auth`` mode; a request with no
``Host`` (HTTP/1.0 allows it) gets 400 before anything reads ``request.host``.  Behind a
``--trusted-proxy``, the failed-auth budget is kept per forwarded client, not per proxy.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import Gateway

ROUTES = ["/", "/sse/events", "/ws/events", "/status", "/metrics", "/client.js"]
UPGRADE = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
UPGRADE += "Sec-WebSocket-Version: 13\r\n"


def raw_status(gw: Gateway, head: str) -> int:
    """The status code of one raw request (``head`` without the final blank line); the socket is then closed."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed before a status line: {data!r}"
            data += chunk
    return int(data.split(b" ", 2)[1])


def get(gw: Gateway, path: str, host: str | None, extra: str = "") -> int:
    upgrade = UPGRADE if path == "/ws/events" else ""
    host_line = f"Host: {host}\r\n" if host is not None else ""
    return raw_status(gw, f"GET {path} HTTP/1.1\r\n{host_line}{upgrade}{extra}Connection: close\r\n")


def token_gateway(gateway_factory, tmp_path: Path, *args: str) -> Gateway:
    tokens = tmp_path / "tokens"
    tokens.write_text("good-token\n")
    tokens.chmod(0o600)
    return gateway_factory("--auth", "token", "--tokens-file", str(tokens), *args)


@pytest.mark.parametrize("auth", ["none", "token"])
def test_rebound_host_is_403_on_every_route(gateway_factory, tmp_path: Path, auth: str) -> None:
    gw = gateway_factory() if auth == "none" else token_gateway(gateway_factory, tmp_path)
    bearer = "Authorization: Bearer good-token\r\n" if auth == "token" else ""
    for path in ROUTES:
        assert get(gw, path, f"evil.example:{gw.port}", bearer) == 403, path
        assert get(gw, path, f"127.0.0.1:{gw.port}", bearer) in (101, 200), path
        assert get(gw, path, f"localhost:{gw.port}", bearer) in (101, 200), path
    assert gw.status()["auth"]["refused"]["host"] == len(ROUTES)


def test_allow_host_names_and_globs_are_served(gateway_factory) -> None:
    gw = gateway_factory("--allow-host", "events.example.com", "--allow-host", "*.lan.example")
    for host in ("events.example.com", "events.example.com:443", "gw.lan.example:8765"):
        assert get(gw, "/sse/events", host) == 200, host
        assert get(gw, "/ws/events", host) == 101, host
    for host in ("lan.example", "evil.example", "events.example.com.evil.example"):
        assert get(gw, "/sse/events", host) == 403, host


def test_request_without_host_is_400_before_anything_reads_it(gateway_factory) -> None:
    gw = gateway_factory()
    for path in ROUTES:
        assert raw_status(gw, f"GET {path} HTTP/1.0\r\n") == 400, path
    assert gw.status()["auth"]["refused"]["no_host"] == len(ROUTES)
    # two Host headers: refused by aiohttp's parser already, or by the check
    assert raw_status(gw, f"GET /status HTTP/1.0\r\nHost: a\r\nHost: 127.0.0.1:{gw.port}\r\n") == 400


def sse_status(gw: Gateway, token: str, forwarded_for: str | None) -> int:
    xff = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
    return get(gw, f"/sse/events?token={token}", f"127.0.0.1:{gw.port}", xff)


def test_behind_a_trusted_proxy_the_failed_auth_budget_is_per_forwarded_client(gateway_factory, tmp_path) -> None:
    gw = token_gateway(gateway_factory, tmp_path, "--trusted-proxy", "127.0.0.0/8")
    while sse_status(gw, "wrong", "1.2.3.4, 198.51.100.7") != 429:  # the forged left part is not the client
        assert gw.status()["auth"]["refused"]["unauthorized"] <= 10
    assert sse_status(gw, "good-token", "198.51.100.7") == 429
    assert sse_status(gw, "good-token", "1.2.3.4, 198.51.100.8") == 200  # another user behind the same proxy
    assert sse_status(gw, "good-token", None) == 200  # the proxy itself
    assert '"peer":"198.51.100.8"' in gw.logs().replace(" ", "")  # client.connected names the client
    assert gw.status()["auth"]["limited_addresses"] == 1


def test_forwarded_for_from_an_untrusted_peer_is_ignored(gateway_factory, tmp_path) -> None:
    gw = token_gateway(gateway_factory, tmp_path)
    for i in range(10):  # a different forged address each time: still one budget, the peer's
        assert sse_status(gw, "wrong", f"198.51.100.{i}") == 401
    assert sse_status(gw, "good-token", "198.51.100.99") == 429


def test_status_and_metrics_need_a_credential_beyond_loopback_with_auth_on(gateway_factory, tmp_path) -> None:
    gw = token_gateway(gateway_factory, tmp_path, "--trusted-proxy", "127.0.0.1")
    host = f"127.0.0.1:{gw.port}"
    remote = "X-Forwarded-For: 198.51.100.1\r\n"  # a client on the network, behind the trusted proxy
    for path in ("/status", "/metrics"):
        assert get(gw, path, host) == 200  # loopback
        assert get(gw, path, host, remote) == 401
        assert get(gw, path, host, remote + "Authorization: Bearer wrong\r\n") == 401
        assert get(gw, path, host, remote + "Authorization: Bearer good-token\r\n") == 200
        assert get(gw, f"{path}?token=good-token", host, remote) == 200
    assert get(gw, "/healthz", host, remote) == 200  # liveness stays open
    open_gw = gateway_factory("--trusted-proxy", "127.0.0.1")  # --auth none: nothing to present
    assert get(open_gw, "/status", f"127.0.0.1:{open_gw.port}", remote) == 200
