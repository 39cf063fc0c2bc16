"""``GET /sse/events`` from Chromium's own ``EventSource``: events, and resume by ``Last-Event-ID``.

No client code of ours runs here: the browser's EventSource reconnects by itself
after the gateway restarts (``--state-dir``) and sends ``Last-Event-ID``; the
gateway resumes from it, so the page sees every seq exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.browser.conftest import emitter, finish, state_dir, wait_js
from tests.conftest import Gateway, wait_for

LISTEN = """
() => {
  window.got = [];
  window.gaps = [];
  window.opens = 0;
  const source = new EventSource("/sse/events?types=load.*");
  source.onopen = () => { window.opens += 1; };
  source.addEventListener("load.tick", (e) => {
    const event = JSON.parse(e.data);
    window.got.push({ seq: event.seq, i: event.payload.i, lastEventId: e.lastEventId });
  });
  source.addEventListener("gateway.gap", (e) => window.gaps.push(JSON.parse(e.data)));
  window.source = source;
}
"""


def test_event_source_resumes_by_last_event_id_across_a_restart(
    page: Page, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    count = 200
    gw = gateway_factory("--state-dir", state_dir(tmp_path))
    page.goto(f"{gw.url}/healthz")  # any page of the gateway's origin
    page.evaluate(LISTEN)
    wait_js(page, "window.opens === 1", "the EventSource open")
    proc = emitter(gw.ingest, count, rate=50)
    try:
        wait_js(page, "window.got.length >= 50", "events flowing")
        assert gw.stop() == 0  # SIGTERM: the stream ends, EventSource reconnects by itself
        gw.start()
        wait_js(page, f"window.got.length >= {count}", f"{count} events")
        finish(proc)
    finally:
        proc.kill()
    got = page.evaluate("window.got")
    assert [e["seq"] for e in got] == list(range(1, count + 1)), "every seq once, in order"
    assert [e["i"] for e in got] == list(range(count))
    epoch = gw.status()["epoch"]
    assert {e["lastEventId"] for e in got} == {f"{epoch}:{seq}" for seq in range(1, count + 1)}
    assert page.evaluate("window.gaps") == []
    assert page.evaluate("window.opens") >= 2

    # the reconnect was a resume: the restarted gateway saw a Last-Event-ID (since = a seq)
    def connects() -> list[dict[str, Any]]:
        return [json.loads(line) for line in gw.logs().splitlines() if '"client.connected"' in line]

    assert connects()[0]["since"] is None
    wait_for(lambda: any(c["since"] is not None for c in connects()[1:]), 5, "a connection resumed by Last-Event-ID")
