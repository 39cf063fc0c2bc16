"""``emit()`` while the stream loses its quorum (``bench/cluster.py``'s ``quorum`` part).

A Core process (``bench.core_cost --core``: ``emitter_sdk`` at ``RATE`` events/s,
every ``emit()`` timed with ``perf_counter_ns``) emits into one cluster node while
this process drives three phases:

1. ``held``: the three servers up (``phase`` seconds);
2. ``lost``: two of the three stopped (SIGTERM) for ``LOST`` seconds — no quorum, the
   node degraded (``/healthz`` 503), its writer holding what it ingests;
3. ``back``: both started again; until the node is healthy, then ``phase`` seconds.

Per phase: ``emit()`` p50/p99/p99.9/max µs.  Target: p99.9 lost ÷ held ≤ 2 (the rule
issue 4 set for a stalled or dead gateway).  Afterwards every queued event must
reach a client connected from the start, or be reported to it in an upstream gap:
delivered + missed = queued, seqs contiguous, ``emit()`` never raised.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from bench.core_cost import CoreProcess, by_phase
from bench.run import Gateway, gateway
from tests.natsservers import NatsCluster

RATE = 5000
LOST = 10.0


class Recorder(threading.Thread):
    """One WebSocket client from ``since=0``: events, upstream-missed counts, seq contiguity.

    Closed by the gateway (a slow-client policy, say), it resumes from its last seq as any
    client would; every close code is kept, and any gap other than ``upstream``.
    """

    def __init__(self, ws_url: str) -> None:
        super().__init__(daemon=True)
        self.url = ws_url
        self.events = self.missed = self.breaks = self.last = 0
        self.epoch = ""
        self.other_gaps: list[dict[str, Any]] = []
        self.closes: list[int | None] = []
        self.halt = threading.Event()
        self.start()

    def run(self) -> None:
        asyncio.run(self._read())

    async def _read(self) -> None:
        async with aiohttp.ClientSession() as session:
            while not self.halt.is_set():
                resume = f"?since={self.last}" + (f"&epoch={self.epoch}" if self.epoch else "")
                async with session.ws_connect(self.url + resume, max_msg_size=0) as ws:
                    await self._follow(ws)
                    if not self.halt.is_set():
                        self.closes.append(ws.close_code)

    async def _follow(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not self.halt.is_set():
            try:
                msg = await ws.receive(timeout=0.2)
            except TimeoutError:
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            data = json.loads(msg.data)
            kind = data["type"]
            if kind == "gateway.hello":
                self.epoch = data.get("epoch", self.epoch)
            elif kind == "gateway.gap" and data.get("reason") == "upstream":
                self.missed += data["missed"]
            elif kind == "gateway.gap":
                self.other_gaps.append(data)
            elif not kind.startswith("gateway."):
                self.events += 1
                self.breaks += data["seq"] != self.last + 1
                self.last = data["seq"]


def healthy(node: Gateway) -> bool:
    try:
        with urllib.request.urlopen(node.url + "/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def run(workdir: Path, servers: NatsCluster, args: tuple[str, ...], phase: float) -> dict[str, Any]:
    samples = workdir / "quorum-samples.bin"
    lost_for = LOST if phase >= 5 else 3.0
    with gateway(workdir, *args) as node:
        recorder = Recorder(node.ws_url)
        with CoreProcess(node.ingest, RATE, samples) as core:
            t0 = time.monotonic_ns()
            time.sleep(phase)
            t1 = time.monotonic_ns()
            for server in servers.servers[1:]:
                server.stop()
            degraded = 0.0
            while time.monotonic_ns() < t1 + lost_for * 1e9:
                tick = time.monotonic()
                time.sleep(0.1)
                degraded += (time.monotonic() - tick) * (not healthy(node))
            t2 = time.monotonic_ns()
            for server in servers.servers[1:]:
                server.start()
            deadline = time.monotonic() + 60
            while not healthy(node) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(phase)
            t3 = time.monotonic_ns()
            summary = core.finish()
        queued = summary["emitted"] - summary["dropped"]
        deadline = time.monotonic() + 60
        while recorder.events + recorder.missed < queued and time.monotonic() < deadline:
            time.sleep(0.05)
        recorder.halt.set()
        recorder.join(5)
        status = node.status()
        cluster = status["cluster"]
    starts, costs = core.samples()
    return {
        "rate": RATE,
        "lost_s": lost_for,
        "phases": by_phase(starts, costs, {"held": (t0, t1), "lost": (t1, t2), "back": (t2, t3)}),
        "degraded_s": degraded,
        "raised": summary["raised"],
        "queued": queued,
        "sdk_dropped": summary["dropped"],
        "delivered": recorder.events,
        "missed": recorder.missed,
        "seq_breaks": recorder.breaks,
        "other_gaps": recorder.other_gaps,
        "client_closes": recorder.closes,
        "slow_client_disconnects": status["slow_client_disconnects"],
        "accounted": recorder.events + recorder.missed == queued and not recorder.breaks and not recorder.other_gaps,
        "publish_errors": cluster["publish_errors"],
        "pending_dropped": cluster["pending_dropped"],
        "node_cluster_status": cluster,
    }
