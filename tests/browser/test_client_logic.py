"""Unit tests of ``client.js`` run inside Chromium: backoff, resume cursor, dedup, URL, reconnect.

No gateway: the module is served to the page by Playwright from the package's
``static`` directory, and the reconnect tests hand the client a scripted fake
WebSocket, so every step is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, Route

from tests.conftest import ROOT

CLIENT_JS = (ROOT / "gateway" / "http" / "static" / "client.js").read_bytes()
ORIGIN = "http://client.test"


@pytest.fixture
def lib(page: Page) -> Iterator[Page]:
    """A blank page with ``window.lib`` = the client module."""

    def serve(route: Route) -> None:
        if route.request.url.endswith("/client.js"):
            route.fulfill(body=CLIENT_JS, content_type="text/javascript; charset=utf-8")
        else:
            route.fulfill(body="<!doctype html><title>client.js tests</title>", content_type="text/html")

    page.route(f"{ORIGIN}/**", serve)
    page.goto(f"{ORIGIN}/")
    page.evaluate("async () => { window.lib = await import('/client.js'); }")
    yield page


def js(page: Page, body: str) -> Any:
    """Run ``body`` (a function body using ``lib``) in the page and return its result."""
    return page.evaluate(f"async () => {{ const lib = window.lib; {body} }}")


def test_backoff_grows_exponentially_to_the_cap_with_bounded_jitter(lib: Page) -> None:
    ceilings = js(lib, "return [0, 1, 2, 3, 6, 7, 50, 5000].map(a => lib.backoffDelay(a, {}, () => 0));")
    assert ceilings == [500, 1000, 2000, 4000, 30000, 30000, 30000, 30000]
    floors = js(lib, "return [0, 1, 2, 10].map(a => lib.backoffDelay(a, {}, () => 1));")
    assert floors == [250, 500, 1000, 15000]
    samples = js(lib, "return Array.from({length: 2000}, () => lib.backoffDelay(4));")
    assert all(4000 <= s <= 8000 for s in samples)
    assert len(set(samples)) > 100, "jitter spreads reconnects"
    custom = js(lib, "return lib.backoffDelay(3, {initial: 100, factor: 3, max: 1000, jitter: 0}, Math.random);")
    assert custom == 1000


def test_cursor_starts_at_the_head_and_advances_with_events(lib: Page) -> None:
    out = js(
        lib,
        """
        const c = new lib.ResumeCursor();
        const params0 = c.resumeParams();
        const kinds = [
          c.accept({type: "gateway.hello", epoch: "e1", seq: 41, oldest: 1}),
          c.accept({type: "task.progress", seq: 42, id: "p:1"}),
          c.accept({type: "task.progress", seq: 43, id: "p:2"}),
          c.accept({type: "task.progress", seq: 43, id: "p:2"}),
          c.accept({type: "task.progress", seq: 40, id: "p:0"}),
          c.accept({type: "pong", ts: "t"}),
          c.accept({type: "gateway.error", error: "x"}),
        ];
        return {params0, kinds, params: c.resumeParams()};
        """,
    )
    assert out["params0"] == {}
    assert out["kinds"] == ["hello", "event", "event", "duplicate", "duplicate", "pong", "control"]
    assert out["params"] == {"since": 43, "epoch": "e1"}


def test_cursor_resume_gaps_and_epoch_change(lib: Page) -> None:
    out = js(
        lib,
        """
        const c = new lib.ResumeCursor({since: 10, epoch: "e1"});
        const steps = [];
        const step = (msg) => steps.push([c.accept(msg), c.seq, c.epoch]);
        step({type: "gateway.hello", epoch: "e1", seq: 30, oldest: 20});   // same epoch: keep since=10
        step({type: "gateway.gap", reason: "evicted", from: 11, to: 19});  // cursor jumps past the hole
        step({type: "x.y", seq: 20, id: "p:20"});
        step({type: "gateway.gap", reason: "upstream", producer: "p", missed: 2, seq: 21});  // no seq change
        step({type: "gateway.gap", reason: "slow_client", from: 21, to: 25});
        step({type: "gateway.hello", epoch: "e2", seq: 3, oldest: 1});    // restarted without state: whole ring
        step({type: "gateway.gap", reason: "epoch", from: 1, to: 0});
        step({type: "x.y", seq: 1, id: "p:20"});                           // re-sent: same id
        step({type: "x.y", seq: 2, id: "q:1"});
        return steps;
        """,
    )
    assert out == [
        ["hello", 10, "e1"],
        ["gap", 19, "e1"],
        ["event", 20, "e1"],
        ["gap", 20, "e1"],
        ["gap", 25, "e1"],
        ["hello", 0, "e2"],
        ["gap", 0, "e2"],
        ["duplicate", 1, "e2"],
        ["event", 2, "e2"],
    ]


def test_cursor_follows_a_head_that_went_back_and_bounds_its_id_memory(lib: Page) -> None:
    out = js(
        lib,
        """
        const c = new lib.ResumeCursor({since: 50, epoch: "e1", idMemory: 3});
        const hello = c.accept({type: "gateway.hello", epoch: "e1", seq: 45, oldest: 1});
        const after = c.seq;
        const fresh = c.accept({type: "x.y", seq: 46, id: "a:1"});
        for (const [i, id] of ["a:2", "a:3", "a:4"].entries()) c.accept({type: "x.y", seq: 47 + i, id});
        const c2 = new lib.ResumeCursor({idMemory: 3});
        c2.accept({type: "gateway.hello", epoch: "e9", seq: 0, oldest: null});
        const again = c2.accept({type: "x.y", seq: 1, id: "a:1"});
        return {hello, after, fresh, remembered: c._ids.size, forgotOldest: !c._ids.has("a:1"), again};
        """,
    )
    assert out == {
        "hello": "hello",
        "after": 45,
        "fresh": "event",
        "remembered": 3,
        "forgotOldest": True,
        "again": "event",
    }


def test_build_url_maps_http_to_ws_and_sets_only_given_params(lib: Page) -> None:
    out = js(
        lib,
        """
        return [
          lib.buildUrl("/ws/events", {types: ["task.*", "provider.status_changed"], entity: [], since: 7,
                                       epoch: "ab"}, "http://h:8765/monitor/"),
          lib.buildUrl("ws/events", {types: "", since: null}, "https://gw.example/prefix/"),
          lib.buildUrl("ws://h:1/ws/events?types=a.b", {types: null}, undefined),
          lib.parseList(" task.* , ,provider:x "),
        ];
        """,
    )
    assert out == [
        "ws://h:8765/ws/events?types=task.*%2Cprovider.status_changed&since=7&epoch=ab",
        "wss://gw.example/prefix/ws/events",
        "ws://h:1/ws/events",
        ["task.*", "provider:x"],
    ]


FAKE_SOCKET = """
  window.sockets = [];
  class FakeSocket {
    constructor(url, protocols) {
      this.url = url; this.protocols = protocols; this.readyState = 0; this.sent = [];
      window.sockets.push(this);
    }
    open(hello) { this.readyState = 1; this.serve(hello); }
    serve(msg) { this.onmessage({data: JSON.stringify(msg)}); }
    send(data) { this.sent.push(JSON.parse(data)); }
    close(code) { this.readyState = 3; }
    drop(code) { this.readyState = 3; this.onclose({code, reason: ""}); }
  }
  const states = [], events = [], gaps = [];
  const tick = (ms) => new Promise((r) => setTimeout(r, ms));
"""


def test_client_reconnects_with_backoff_and_resumes_without_duplicates(lib: Page) -> None:
    out = js(
        lib,
        FAKE_SOCKET
        + """
        const client = new lib.EventGatewayClient("ws://gw/ws/events", {
          types: "task.*", token: "s3cret", WebSocket: FakeSocket,
          backoff: {initial: 20, max: 40, jitter: 0},
          onEvent: (e) => events.push(e.seq), onGap: (g) => gaps.push(g.reason),
          onState: (s, d) => states.push(d.delay === undefined ? s : `${s}:${d.delay}`),
        });
        const first = sockets[0];
        first.open({type: "gateway.hello", epoch: "e1", seq: 5, oldest: 1});
        first.serve({type: "task.a", seq: 6, id: "p:6"});
        first.serve({type: "task.a", seq: 7, id: "p:7"});
        first.drop(1006);
        await tick(5);
        const noRetryYet = sockets.length;
        await tick(40);
        sockets[1].drop(1006);                      // refused again: longer wait
        await tick(30);
        const stillWaiting = sockets.length;
        await tick(40);
        const third = sockets[2];
        third.open({type: "gateway.hello", epoch: "e1", seq: 9, oldest: 1});
        third.serve({type: "task.a", seq: 7, id: "p:7"});   // replayed overlap is dropped
        third.serve({type: "task.a", seq: 8, id: "p:8"});
        third.serve({type: "gateway.gap", reason: "slow_client", from: 9, to: 9});
        client.close();
        return {urls: sockets.map(s => s.url), protocols: first.protocols, noRetryYet, stillWaiting,
                events, gaps, states, stats: client.stats};
        """,
    )
    assert out["urls"] == [
        "ws://gw/ws/events?types=task.*",
        "ws://gw/ws/events?types=task.*&since=7&epoch=e1",
        "ws://gw/ws/events?types=task.*&since=7&epoch=e1",
    ]
    assert out["protocols"] == ["bearer.s3cret"], "the token travels as a subprotocol, not in the URL"
    assert (out["noRetryYet"], out["stillWaiting"]) == (1, 2)
    assert out["events"] == [6, 7, 8]
    assert out["gaps"] == ["slow_client"]
    assert out["states"] == [
        "connecting",
        "open",
        "reconnecting:20",
        "connecting",
        "reconnecting:40",
        "connecting",
        "open",
        "closed",
    ]
    assert out["stats"] == {"events": 3, "duplicates": 1, "gaps": 1, "connects": 2, "resumes": 1}


def test_ping_measures_the_round_trip_and_fails_when_the_socket_goes(lib: Page) -> None:
    out = js(
        lib,
        FAKE_SOCKET
        + """
        const client = new lib.EventGatewayClient("ws://gw/ws/events", {WebSocket: FakeSocket,
                                                                        backoff: {initial: 10000}});
        const notYet = await client.ping().then(() => "resolved", (e) => e.message);
        const ws = sockets[0];
        ws.open({type: "gateway.hello", epoch: "e", seq: 0, oldest: null});
        const pending = client.ping();
        await tick(15);
        ws.serve({type: "pong", ts: "2026-01-01T00:00:00.000Z"});
        const rtt = await pending;
        const lost = client.ping();
        ws.drop(1006);
        const lostResult = await lost.then(() => "resolved", (e) => e.message);
        client.close();
        return {notYet, sent: ws.sent, rtt, lostResult};
        """,
    )
    assert out["notYet"] == "not connected"
    assert out["sent"] == [{"type": "ping"}, {"type": "ping"}]
    assert 10 <= out["rtt"] < 5000
    assert out["lostResult"] == "connection closed"


def test_module_also_sets_globals_for_plain_scripts(lib: Page) -> None:
    assert js(lib, "return globalThis.EventGatewayClient === lib.EventGatewayClient && !!EventGateway.backoffDelay;")


def test_close_cause_tells_a_full_gateway_from_a_down_one(lib: Page) -> None:
    causes = js(
        lib,
        """
        return [
          [1013, "over capacity (max_clients)"], [1013, "over capacity (max_clients_per_ip)"],
          [1013, "too slow to keep up"], [1006, ""], [1001, "going away"], [1008, "token expired"],
          [4000, "no pong"], [1000, ""],
        ].map(([code, reason]) => lib.closeCause(code, reason));
        """,
    )
    assert causes == ["full", "full", "slow", "down", "restarting", "refused", "down", "closed"]


def test_failover_tries_every_node_in_turn_before_backing_off_further(lib: Page) -> None:
    out = js(
        lib,
        """
        const urls = ["ws://a/ws/events", "ws://b/ws/events", "ws://c/ws/events"];
        const steps = [];
        let current = 0;
        for (let attempt = 0; attempt < 7; attempt++) {
          const next = lib.failoverUrl(urls, current, attempt);
          steps.push([next.index, next.step]);
          current = next.index;
        }
        return { steps, single: lib.failoverUrl(["ws://a/"], 0, 3) };
        """,
    )
    assert out["steps"] == [[1, 0], [2, 0], [0, 0], [1, 1], [2, 1], [0, 1], [1, 2]]  # a round per step
    assert out["single"] == {"index": 0, "step": 3}
