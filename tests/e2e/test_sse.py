"""``GET /sse/events`` on the wire, read with aiohttp's client (no browser).

The stream's shape (headers, ``retry:``, ``id: <epoch>:<seq>``, named events), the
filters, resume by ``Last-Event-ID`` (header and ``?lastEventId=``) with its gaps,
comment heartbeats, client accounting, and the end of the stream on SIGTERM.  The
chunked framing the gateway writes by hand is checked by aiohttp's parser.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tests.conftest import Gateway, run_cli, wait_for


class SseStream:
    """Reads SSE messages (``{"id", "event", "data", "retry"}``) and comments (``{"comment"}``)."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.resp.content.readline()
                if not raw:
                    raise EOFError("stream ended")
                line = raw.decode().rstrip("\n")
                if line.startswith(":"):
                    return {"comment": line[1:].strip()}
                if not line:
                    if fields:
                        if "data" in fields:
                            fields["data"] = json.loads(fields["data"])
                        return fields
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value

    async def events(self, n: int) -> list[dict[str, Any]]:
        """The next ``n`` messages that are not comments or ``retry:`` hints."""
        out: list[dict[str, Any]] = []
        while len(out) < n:
            msg = await self.next()
            if "event" in msg:
                out.append(msg)
        return out


@asynccontextmanager
async def sse(gw: Gateway, query: str = "", headers: dict[str, str] | None = None) -> AsyncIterator[SseStream]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gw.url}/sse/events{query}", headers=headers or {}) as resp,
    ):
        assert resp.status == 200, await resp.text()
        yield SseStream(resp)


def demo(gw: Gateway) -> None:
    result = run_cli("gatewayctl", "demo", "--url", gw.url, "--ingest", gw.ingest, "--delay", "0")
    assert result.returncode == 0, result.stderr


def seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [m["data"]["seq"] for m in messages]


async def test_stream_shape_retry_hello_and_events_with_epoch_seq_ids(gateway: Gateway) -> None:
    async with sse(gateway) as stream:
        resp = stream.resp
        assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert resp.headers["Cache-Control"] == "no-cache"
        retry = await stream.next()
        assert set(retry) == {"retry"} and 1000 <= int(retry["retry"]) < 2000
        hello = await stream.next()
        epoch = hello["data"]["epoch"]
        assert hello == {
            "id": f"{epoch}:0",
            "event": "gateway.hello",
            "data": {"type": "gateway.hello", "epoch": epoch, "seq": 0, "oldest": None},
        }
        demo(gateway)
        events = await stream.events(11)
    assert seqs(events) == list(range(1, 12))
    assert [e["id"] for e in events] == [f"{epoch}:{n}" for n in range(1, 12)]
    assert all(e["event"] == e["data"]["type"] for e in events)
    assert events[7]["data"]["entity"] == {"kind": "provider", "id": "ollama"}
    assert set(events[0]["data"]) == {"type", "ts", "source", "entity", "payload", "seq", "id"}


async def test_filters_and_last_event_id_resume_replay_exactly_the_rest(gateway: Gateway) -> None:
    demo(gateway)
    epoch = gateway.status()["epoch"]
    async with sse(gateway, "?types=task.*", {"Last-Event-ID": f"{epoch}:3"}) as stream:
        hello = (await stream.events(1))[0]
        assert "id" not in hello, "a hello before a replay must not move the client's Last-Event-ID"
        replay = await stream.events(4)
        assert seqs(replay) == [4, 5, 6, 7]  # the task events after seq 3
        assert [e["event"] for e in replay] == ["task.progress"] * 3 + ["task.completed"]
        demo(gateway)
        live = await stream.events(7)
        assert seqs(live) == list(range(12, 19))
    async with sse(gateway, f"?lastEventId={epoch}:20") as stream:
        assert seqs((await stream.events(3))[1:]) == [21, 22]
    async with sse(gateway, "?since=0", {"Last-Event-ID": f"{epoch}:21"}) as stream:  # the header wins
        assert seqs((await stream.events(2))[1:]) == [22]


async def test_resume_older_than_the_ring_or_from_another_epoch_sends_gaps_with_ids(
    gateway_factory: Callable[..., Gateway],
) -> None:
    gw = gateway_factory("--ring-size", "5")
    demo(gw)
    epoch = gw.status()["epoch"]
    async with sse(gw, "", {"Last-Event-ID": f"{epoch}:2"}) as stream:
        _, gap, *events = await stream.events(7)
    assert gap == {
        "id": f"{epoch}:6",
        "event": "gateway.gap",
        "data": {"type": "gateway.gap", "reason": "evicted", "from": 3, "to": 6},
    }
    assert seqs(events) == [7, 8, 9, 10, 11]
    async with sse(gw, "", {"Last-Event-ID": "0123abcd:99"}) as stream:
        _, gap, *events = await stream.events(7)
    assert gap["id"] == f"{epoch}:6"
    assert gap["data"] == {"type": "gateway.gap", "reason": "epoch", "from": 1, "to": 6}
    assert seqs(events) == [7, 8, 9, 10, 11]


async def test_malformed_last_event_id_or_filter_is_400(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as session:
        for query, headers in [("", {"Last-Event-ID": "no-seq"}), ("?lastEventId=e:x", {}), ("?types=BAD TYPE", {})]:
            async with session.get(f"{gateway.url}/sse/events{query}", headers=headers) as resp:
                assert resp.status == 400, (query, headers)


async def test_heartbeats_and_sse_clients_counted_while_connected(gateway_factory: Callable[..., Gateway]) -> None:
    gw = gateway_factory("--sse-heartbeat", "0.2")
    async with sse(gw) as stream:
        await stream.events(1)
        assert await stream.next(timeout=5) == {"comment": "hb"}
        assert gw.status()["clients"]["by_transport"] == {"sse": 1}
    wait_for(lambda: gw.status()["clients"]["count"] == 0, 5, "the SSE client to be forgotten")


async def test_sigterm_ends_the_stream_after_what_was_sent(gateway: Gateway) -> None:
    async with sse(gateway) as stream:
        await stream.events(1)
        demo(gateway)
        await stream.events(11)
        assert gateway.proc is not None
        gateway.proc.send_signal(signal.SIGTERM)
        try:
            msg = await stream.next(timeout=5)
            raise AssertionError(f"expected the end of the stream, got {msg}")
        except EOFError:
            pass
        assert gateway.proc.wait(5) == 0
