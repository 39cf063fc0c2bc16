"""Chromium's own WebSocket negotiates permessage-deflate and inflates every compressed frame.

The sizes of ``tests/e2e/test_compression.py`` (plain and compressed frames on both sides
of the 125/126 and 64 KiB length boundaries, up to 400 kB) and its batched burst, read by
the browser's native ``WebSocket``; ``ws.extensions`` shows what was negotiated.
"""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page

from tests.browser.conftest import wait_js
from tests.conftest import Gateway
from tests.e2e.test_batched_frames import BURST, assert_whole_burst, burst_while_stopped
from tests.e2e.test_compression import SIZES, blob, emit_sizes

LISTEN = """
(url) => {
  window.got = [];
  window.hello = null;
  window.ws = new WebSocket(url);
  window.ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "gateway.hello") window.hello = msg;
    else window.got.push(msg);
  };
}
"""


def open_page(page: Page, gw: Gateway) -> None:
    page.goto(f"{gw.url}/healthz")  # a page of the gateway's own origin
    page.evaluate(LISTEN, gw.ws_url)
    wait_js(page, "window.hello !== null", "the hello")
    extensions = page.evaluate("window.ws.extensions")
    assert "permessage-deflate" in extensions and "server_no_context_takeover" in extensions


def test_chromium_negotiates_deflate_and_reads_every_size(page: Page, gateway_factory: Callable[..., Gateway]) -> None:
    gw = gateway_factory()
    open_page(page, gw)
    emit_sizes(gw)
    wait_js(page, f"window.got.length >= {len(SIZES)}", f"{len(SIZES)} events")
    got = page.evaluate("window.got.map((e) => [e.seq, e.payload.blob])")
    assert got == [[i + 1, blob(size, i)] for i, size in enumerate(SIZES)]


def test_chromium_reads_a_compressed_burst_written_in_batches(
    page: Page, gateway_factory: Callable[..., Gateway]
) -> None:
    gw = gateway_factory()
    open_page(page, gw)
    burst_while_stopped(gw)
    wait_js(page, f"window.got.length >= {BURST}", f"{BURST} events")
    assert_whole_burst(gw, page.evaluate("window.got"))
