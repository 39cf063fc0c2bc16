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
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from emitter_sdk import Emitter
from tests.conftest import ROOT, Gateway, free_port, wait_for

SITE = ROOT / "deploy" / "nginx" / "event-gateway.conf"


def rewrite(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} is not in the site exactly once"
    return text.replace(old, new)


class Nginx:
    def __init__(self, base: Path, gateway_port: int) -> None:
        self.base = base
        self.https_port = free_port()
        self.http_port = free_port()
        self.cert = base / "cert.pem"
        key = base / "key.pem"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
                *("-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
                *("-keyout", str(key), "-out", str(self.cert)),
            ],
            check=True,
            capture_output=True,
        )
        site = SITE.read_text()
        site = rewrite(site, "server 127.0.0.1:8765;", f"server 127.0.0.1:{gateway_port};")
        site = rewrite(site, "    listen 80;\n", f"    listen 127.0.0.1:{self.http_port};\n")
        site = rewrite(site, "    listen [::]:80;\n", "")
        site = rewrite(site, "    listen 443 ssl;\n", f"    listen 127.0.0.1:{self.https_port} ssl;\n")
        site = rewrite(site, "    listen [::]:443 ssl;\n", "")
        site = rewrite(site, "/etc/ssl/certs/event-gateway.pem", str(self.cert))
        site = rewrite(site, "/etc/ssl/private/event-gateway.key", str(key))
        self.access_log = base / "site-access.log"
        site = rewrite(site, "/var/log/nginx/event-gateway.access.log", str(self.access_log))
        (base / "site.conf").write_text(site)
        temp = "\n".join(
            f"    {kind}_temp_path {base}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (base / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"daemon off;\nworker_processes 1;\npid {base}/nginx.pid;\nerror_log {base}/error.log info;\n"
            + "events { worker_connections 128; }\n"
            + f"http {{\n    access_log {base}/access.log;\n{temp}\n    include {base}/site.conf;\n}}\n"
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        assert os.path.exists(nginx), "nginx missing: `make test` installs Debian's nginx package"
        self.command = [nginx, "-p", str(base), "-e", str(base / "error.log"), "-c", str(base / "nginx.conf")]
        checked = subprocess.run([*self.command, "-t"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.accepting, 15, "nginx listening")

    def accepting(self) -> bool:
        assert self.proc.poll() is None, (self.base / "error.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", self.https_port), timeout=1).close()
            return True
        except OSError:
            return False

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


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
