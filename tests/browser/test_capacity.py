"""A browser tells a full gateway from a down one (``client.js`` ``closeCause``, the monitor's status).

Over ``--max-clients`` the gateway completes the upgrade and closes 1013 ``over
capacity (…)``, which Chromium can read; a gateway that is gone gives 1006.
"""

from __future__ import annotations

from websockets.sync.client import connect

from tests.browser.conftest import WAIT_MS
from tests.conftest import Gateway, wait_for
from tests.e2e.test_data_path import recv_json


def test_the_monitor_says_full_then_connects_when_room_frees_then_says_down(page, gateway_factory) -> None:
    gateway: Gateway = gateway_factory("--max-clients", "1")
    with connect(gateway.ws_url) as holder:  # the one slot
        assert recv_json(holder)["type"] == "gateway.hello"
        page.goto(f"{gateway.url}/")  # the page itself is served: only the WebSocket is over capacity
        page.wait_for_selector('#conn[data-cause="full"]', timeout=WAIT_MS)
        assert page.inner_text("#conn-text").startswith("gateway full (over capacity)")
        assert gateway.status()["clients"]["refused"]["max_clients"] >= 1
    page.wait_for_selector('#conn[data-state="open"]', timeout=WAIT_MS)
    wait_for(lambda: gateway.status()["clients"]["count"] == 1, what="the page to hold the one slot")
    gateway.kill9()
    page.wait_for_selector('#conn[data-cause="down"]', timeout=WAIT_MS)
    assert page.inner_text("#conn-text").startswith("gateway unreachable")
    assert not [line for line in page.console_lines if line.startswith("pageerror")]
