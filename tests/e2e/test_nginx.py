"""The deploy kit's nginx site in front of a real gatewayd: WebSocket and SSE end to end over TLS.

Debian's nginx runs ``deploy/nginx/event-gateway.conf`` inside a generated
wrapper config; only the listen ports, the upstream port and the certificate
paths are rewritten (each rewrite must match the site exactly once, so the test
follows the file).  A self-signed certificate is made with openssl.  Events
emitted into the gateway reach a ``wss://`` client and an ``https://`` SSE
stream through the proxy while the streams stay open (the SSE location must not
buffer), plain HTTP redirects to TLS, and /metrics is served to loopback only.  With the
shipped ``trusted_proxy``, each client behind nginx has its own failed-auth budget, handshakes
are rate-limited per client, and the access log holds no query string.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from emitter_sdk import Emitter
from tests.conftest import Gateway
from tests.nginxsite import Nginx


@pytest.fixture
def nginx(gateway: Gateway, tmp_path: Path) -> Iterator[Nginx]:
    proxy = Nginx(tmp_path, gateway.port)
    yield proxy
    proxy.stop()


def emit_one(gw: Gateway, event_type: str, i: int) -> None:
    with Emitter(gw.ingest) as em:
        assert em.wait_subscribed(10)
        em.emit(event_type, entity=("task", "nginx"), payload={"i": i})
        assert em.flush(10)


def read_sse_event(resp: http.client.HTTPResponse) -> dict[str, str]:
    fields: dict[str, str] = {}
    while True:
        line = resp.fp.readline().decode().rstrip("\n")
        if not line:
            if "data" in fields:
                return fields
            continue
        if not line.startswith(":"):
            name, _, val = line.partition(": ")
            fields[name] = val


def test_websocket_and_sse_stream_through_the_tls_site(gateway: Gateway, nginx: Nginx) -> None:
    with connect(f"wss://localhost:{nginx.https_port}/ws/events?types=task.*", ssl=nginx.tls()) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "gateway.hello"

        sse = http.client.HTTPSConnection("localhost", nginx.https_port, context=nginx.tls(), timeout=10)
        sse.request("GET", "/sse/events?types=task.*", headers={"Accept": "text/event-stream"})
        resp = sse.getresponse()
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        assert read_sse_event(resp)["event"] == "gateway.hello"

        for i in range(3):  # each event must arrive while both streams stay open
            emit_one(gateway, "task.progress", i)
            event = json.loads(ws.recv(timeout=10))
            assert (event["type"], event["payload"]) == ("task.progress", {"i": i})
            sse_event = read_sse_event(resp)
            assert sse_event["event"] == "task.progress" and json.loads(sse_event["data"])["payload"] == {"i": i}
            assert sse_event["id"] == f"{hello['epoch']}:{event['seq']}"
        sse.close()

    plain = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=10)
    plain.request("GET", "/ws/events", headers={"Host": "events.example.com"})
    redirect = plain.getresponse()
    assert redirect.status == 301 and redirect.headers["Location"] == "https://events.example.com/ws/events"

    metrics = http.client.HTTPSConnection("localhost", nginx.https_port, context=nginx.tls(), timeout=10)
    metrics.request("GET", "/metrics")
    scraped = metrics.getresponse()
    assert scraped.status == 200 and b"event_gateway_events_accepted_total 3.0" in scraped.read()


def sse_through(proxy: Nginx, source: str, token: str) -> int:
    """Status of an SSE request through nginx from the loopback address ``source`` (a client of its own)."""
    conn = http.client.HTTPSConnection(
        "localhost", proxy.https_port, context=proxy.tls(), timeout=10, source_address=(source, 0)
    )
    try:
        conn.request("GET", f"/sse/events?token={token}")
        return conn.getresponse().status
    finally:
        conn.close()


def test_behind_the_site_each_client_has_its_own_failed_auth_budget(gateway_factory, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("good-token-0123456789\n")
    tokens.chmod(0o600)
    gw = gateway_factory(
        *("--auth", "token", "--tokens-file", str(tokens)),
        *("--trusted-proxy", "127.0.0.1/32", "--trusted-proxy", "::1/128"),  # as deploy/gateway.toml
    )
    (tmp_path / "nginx").mkdir()
    proxy = Nginx(tmp_path / "nginx", gw.port)
    try:
        statuses = [sse_through(proxy, "127.0.0.2", "wrong-token") for _ in range(11)]
        assert statuses == [401] * 10 + [429], statuses  # the gateway's budget, for 127.0.0.2 only
        assert sse_through(proxy, "127.0.0.3", "good-token-0123456789") == 200
        assert sse_through(proxy, "127.0.0.2", "good-token-0123456789") == 429
        # the site's own limit on handshakes: a burst far past 20 from one client meets nginx's 429
        # (the token is valid, so the gateway itself would answer each with 200)
        assert 429 in {sse_through(proxy, "127.0.0.4", "good-token-0123456789") for _ in range(60)}
        logged = proxy.access_log.read_text()
        assert "/sse/events" in logged and "token" not in logged and "127.0.0.3" in logged
    finally:
        proxy.stop()
