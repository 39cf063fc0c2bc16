"""``client.js`` in Chromium, given both nodes of a cluster: a node killed at 1,000 ev/s, every seq once.

The page is served by node A; its client gets both nodes' WebSocket URLs (B allows A's
origin).  A is ``kill -9``-ed while a producer sends every event to both nodes' ingest;
the client fails over to B and resumes with ``since``/``epoch``: every seq exactly once,
no gap.
"""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import wait_js
from tests.cluster.conftest import NodeFactory, nats1, node_factory
from tests.cluster.support import PacedSender
from tests.conftest import free_port, wait_for
from tests.natsservers import NatsCluster

__all__ = ["nats1", "node_factory"]  # the cluster fixtures, used here

LISTEN = """
async ([urls]) => {
  const { EventGatewayClient } = await import("/client.js");
  window.got = [];
  window.gaps = [];
  window.hellos = 0;
  window.client = new EventGatewayClient(urls, {
    onEvent: (e) => window.got.push(e.seq),
    onGap: (g) => window.gaps.push(g),
    onState: (state) => { if (state === "open") window.hellos += 1; },
  });
}
"""


def test_client_js_fails_over_to_the_other_node_and_resumes_every_seq_once(
    page: Page, nats1: NatsCluster, node_factory: NodeFactory
) -> None:
    port_a, port_b = free_port(), free_port()
    a = node_factory(nats1, "--allow-origin", f"http://127.0.0.1:{port_b}", port=port_a)
    b = node_factory(nats1, "--allow-origin", f"http://127.0.0.1:{port_a}", port=port_b)
    page.goto(f"{a.url}/healthz")  # a page of node A's origin
    page.evaluate(LISTEN, [[a.ws_url, b.ws_url]])
    wait_js(page, "window.hellos === 1", "the client open on node A")
    sender = PacedSender([a.ingest, b.ingest], rate=1000)
    wait_js(page, "window.got.length >= 1000", "events flowing through node A")
    a.kill9()
    wait_js(page, "window.hellos === 2", "the client resumed on node B")
    wait_js(page, "window.got.length >= 2500", "events through node B")
    sent = sender.finish()
    wait_for(lambda: b.status()["seq"] == sent, 20, "every event sequenced")
    wait_js(page, f"window.got[window.got.length - 1] === {sent}", "the client at the last seq")
    got = page.evaluate("window.got")
    assert got == list(range(got[0], sent + 1)), "every seq exactly once, in order"
    assert got[0] == 1
    assert page.evaluate("window.gaps") == []
    assert page.evaluate("window.client.url") == b.ws_url
