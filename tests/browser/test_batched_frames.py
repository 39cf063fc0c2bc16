"""Chromium's own WebSocket reads batched frames: many frames in one write, 16- and 64-bit lengths.

The same burst as ``tests/e2e/test_batched_frames.py`` (the gateway stopped while an
emitter queues it, so it is drained and written in batches), read by the browser's
native ``WebSocket`` instead of the ``websockets`` library.
"""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page

from tests.browser.conftest import wait_js
from tests.conftest import Gateway
from tests.e2e.test_batched_frames import BURST, assert_whole_burst, burst_while_stopped

LISTEN = """
(url) => {
  window.got = [];
  window.hello = null;
  const ws = new WebSocket(url);
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "gateway.hello") window.hello = msg;
    else window.got.push(msg);
  };
}
"""


def test_chromium_websocket_reads_a_burst_written_in_batches(
    page: Page, gateway_factory: Callable[..., Gateway]
) -> None:
    gw = gateway_factory()
    page.goto(f"{gw.url}/healthz")  # a page of the gateway's own origin
    page.evaluate(LISTEN, gw.ws_url)
    wait_js(page, "window.hello !== null", "the hello")
    burst_while_stopped(gw)
    wait_js(page, f"window.got.length >= {BURST}", f"{BURST} events")
    assert_whole_burst(gw, page.evaluate("window.got"))
