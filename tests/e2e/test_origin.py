"""The Origin allowlist against a real gatewayd: foreign browser origins get 403 before the upgrade on
``/ws/events`` and ``/sse/events``, listed and own origins are served, a DNS-rebound name is not "own"
(the Host check), and in headless Chromium a page from another origin cannot read events while a
page from a listed origin can."""

from __future__ import annotations

import http.server
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, Gateway, run_python
from tests.e2e.test_data_path import emit_script, recv_json


def http_status(url: str, headers: dict[str, str]) -> int:
    """Status of a GET with ``headers``; an SSE stream is closed right after its headers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def ws_status(gw: Gateway, origin: str | None) -> int:
    try:
        with connect(gw.ws_url, origin=origin, open_timeout=10) as ws:  # type: ignore[arg-type]
            assert recv_json(ws)["type"] == "gateway.hello"
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_foreign_origin_is_403_on_both_transports_listed_and_own_are_served(gateway_factory) -> None:
    gw = gateway_factory("--allow-origin", "http://app.example", "--allow-origin", "https://other.example:8443")
    own = f"http://127.0.0.1:{gw.port}"
    assert ws_status(gw, "http://evil.example") == 403
    assert ws_status(gw, "http://app.example") == 101
    assert ws_status(gw, "https://other.example:8443") == 101
    assert ws_status(gw, own) == 101
    assert ws_status(gw, None) == 101  # not a browser: judged by auth alone
    sse = gw.url + "/sse/events"
    assert http_status(sse, {"Origin": "http://evil.example"}) == 403
    assert http_status(sse, {"Origin": "http://app.example"}) == 200
    assert http_status(sse, {"Origin": own}) == 200
    # DNS rebinding: evil.example resolving to 127.0.0.1 makes Origin match Host; the Host check
    # (tests/e2e/test_peers.py) refuses the name before the origin is looked at.
    rebound = f"evil.example:{gw.port}"
    for path in ("/ws/events", "/sse/events"):
        assert http_status(gw.url + path, {"Host": rebound, "Origin": f"http://{rebound}"}) == 403
    refused = gw.status()["auth"]["refused"]
    assert (refused["origin"], refused["host"]) == (2, 2)


class _Page(http.server.BaseHTTPRequestHandler):
    """Serves PAGE: it tries to read the gateway's events over WebSocket and SSE."""

    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


PAGE = """<!doctype html><script>
const gw = new URLSearchParams(location.search).get("gw");
window.got = {ws: [], sse: [], wsError: false, sseError: false};
// Offered as client.js does; Chromium fails the handshake unless the gateway answers it.
const ws = new WebSocket(`ws://127.0.0.1:${gw}/ws/events?since=0`, ["bearer.not-needed"]);
ws.onopen = () => { got.protocol = ws.protocol; };
ws.onmessage = (m) => got.ws.push(JSON.parse(m.data).type);
ws.onerror = () => { got.wsError = true; };
const es = new EventSource(`http://127.0.0.1:${gw}/sse/events?since=0`);
for (const t of ["gateway.hello", "task.started"]) es.addEventListener(t, () => got.sse.push(t));
es.onerror = () => { got.sseError = true; es.close(); };
</script>"""


@pytest.fixture
def page_ports() -> Iterator[tuple[int, int]]:
    """PAGE served on two fresh ports of 127.0.0.1: two origins, both other than the gateway's."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(servers[0].server_address[1]), int(servers[1].server_address[1])
    for server in servers:
        server.shutdown()
        server.server_close()


def test_chromium_page_from_another_origin_cannot_read_events(gateway_factory, page_ports) -> None:
    foreign, listed = page_ports
    gw = gateway_factory("--allow-origin", f"http://127.0.0.1:{listed}")
    proc = run_python(emit_script(gw.ingest, 'em.emit("task.started", entity=("task", "a"))\n'))
    assert proc.returncode == 0, proc.stderr
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            # Positive control: the same page from a listed origin reads the event both ways.
            page.goto(f"http://127.0.0.1:{listed}/?gw={gw.port}")
            page.wait_for_function("got.ws.length >= 2 && got.sse.length >= 2", timeout=15_000)
            allowed = page.evaluate("got")
            page.goto(f"http://127.0.0.1:{foreign}/?gw={gw.port}")
            page.wait_for_function("got.wsError && got.sseError", timeout=15_000)
            refused = page.evaluate("got")
        finally:
            browser.close()
    assert allowed["ws"] == allowed["sse"] == ["gateway.hello", "task.started"]
    assert allowed["protocol"] == "bearer.not-needed"
    assert refused == {"ws": [], "sse": [], "wsError": True, "sseError": True}
    assert gw.status()["auth"]["refused"]["origin"] == 2
