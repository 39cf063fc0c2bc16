"""The crash test: a producer emits 20,000 events at ~2,000/s while gatewayd is ``kill -9``-ed twice.

With ``--state-dir`` the restarted gateway keeps its epoch, ring and producer
positions, the SDK re-sends what the dead gateway never sequenced, and a
client that resumes after every disconnect ends with every event exactly once,
in producer order, under one epoch, with no gap message.  Without it every
start is a new epoch: the client is told (gap ``epoch``) and still ends with
every event at least once, recognisable by its ``id``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import ROOT, Gateway, wait_for
from tests.e2e.test_data_path import recv_json
from tests.e2e.test_resume import emit_n, emitter

TOTAL = 20_000
RATE = 2_000


class ResumingClient(threading.Thread):
    """Reads ``/ws/events``; after any disconnect reconnects with ``since``/``epoch`` (backing off while down)."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(daemon=True)
        self.gateway = gateway
        self.messages: list[dict[str, Any]] = []
        self.hellos: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.last_seq: int | None = None
        self.epoch: str | None = None

    def events(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if not m["type"].startswith("gateway.")]

    def run(self) -> None:
        while not self.stop.is_set():
            query = "" if self.epoch is None else f"?since={self.last_seq}&epoch={self.epoch}"
            try:
                with connect(self.gateway.ws_url + query, max_size=None, open_timeout=2) as ws:
                    while not self.stop.is_set():
                        try:
                            message = json.loads(ws.recv(timeout=0.2))
                        except TimeoutError:
                            continue
                        self._take(message)
            except (OSError, ConnectionClosed, TimeoutError):
                self.stop.wait(0.05)  # backoff between reconnect attempts while the gateway is down

    def _take(self, message: dict[str, Any]) -> None:
        if message["type"] == "gateway.hello":
            self.hellos.append(message)
            self.epoch = message["epoch"]
            if self.last_seq is None or self.last_seq > message["seq"]:
                self.last_seq = message["seq"]
            return
        self.messages.append(message)
        if message["type"] == "gateway.gap" and "to" in message:
            self.last_seq = max(self.last_seq or 0, message["to"])
        elif "seq" in message and message["type"] != "gateway.gap":
            self.last_seq = message["seq"]


def producer(gateway: Gateway) -> subprocess.Popen[str]:
    """A Core-like process emitting TOTAL events at RATE; prints its producer id, then its stats at stdin EOF."""
    script = textwrap.dedent(
        f"""
        import json, time
        from emitter_sdk import Emitter
        em = Emitter({gateway.ingest!r})
        assert em.wait_subscribed(10)
        start = time.monotonic()
        for i in range({TOTAL}):
            em.emit("task.progress", entity=("task", "crash"), payload={{"i": i}})
            if i % 20 == 19:
                time.sleep(max(0, start + (i + 1) / {RATE} - time.monotonic()))
        print(json.dumps({{"producer": em.producer}}), flush=True)
        # Stay up so a gateway that restarts now still gets the re-send; stop on stdin EOF.
        import sys; sys.stdin.read()
        em.close()
        print(json.dumps({{f: getattr(em.stats, f) for f in em.stats.__struct_fields__}}), flush=True)
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def crash_twice(gateway: Gateway) -> tuple[ResumingClient, str, dict[str, Any]]:
    """Run the producer and a resuming client; kill -9 and restart the gateway at 1/4 and 1/2 of the stream."""
    client = ResumingClient(gateway)
    client.start()
    wait_for(lambda: client.hellos, 10, "client connected")
    proc = producer(gateway)
    try:
        for fraction in (4, 2):
            wait_for(lambda f=fraction: len(client.events()) >= TOTAL // f, 60, f"1/{fraction} of the events")
            gateway.kill9()
            gateway.start()
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        producer_id = json.loads(line)["producer"]
        wait_for(
            lambda: len({e["id"] for e in client.events() if e["id"].startswith(producer_id)}) >= TOTAL,
            60,
            "every event at the client",
        )
        stdout, _ = proc.communicate("", timeout=30)
        stats = json.loads(stdout.strip().splitlines()[-1])
    finally:
        if proc.poll() is None:
            proc.kill()
        client.stop.set()
        client.join(5)
    return client, producer_id, stats


def test_kill9_twice_with_state_dir_every_event_exactly_once_one_epoch(gateway_factory, tmp_path: Path) -> None:
    gateway = gateway_factory("--state-dir", str(tmp_path / "state"))
    client, producer_id, stats = crash_twice(gateway)
    assert stats["emitted"] == stats["queued"] == TOTAL and stats["dropped"] == 0
    events = client.events()
    assert [m for m in client.messages if m["type"].startswith("gateway.")] == []  # no gap of any kind
    assert [e["id"] for e in events] == [f"{producer_id}:{i}" for i in range(1, TOTAL + 1)]
    assert [e["seq"] for e in events] == list(range(1, TOTAL + 1))
    assert [e["payload"]["i"] for e in events] == list(range(TOTAL))
    assert len(client.hellos) >= 3 and len({h["epoch"] for h in client.hellos}) == 1
    status = gateway.status()
    assert status["state"]["epoch_restored"] and status["events"]["duplicate"] > 0  # the re-send was deduplicated


def test_kill9_twice_without_state_dir_client_is_told_epoch_and_holds_every_event(gateway_factory) -> None:
    gateway = gateway_factory()
    client, producer_id, stats = crash_twice(gateway)
    assert stats["emitted"] == stats["queued"] == TOTAL
    assert len({h["epoch"] for h in client.hellos}) == 3
    epoch_gaps = [m for m in client.messages if m["type"] == "gateway.gap" and m["reason"] == "epoch"]
    assert len(epoch_gaps) == 2
    ids = [e["id"] for e in client.events()]
    assert set(ids) == {f"{producer_id}:{i}" for i in range(1, TOTAL + 1)}  # at least once
    assert [m for m in client.messages if m.get("reason") in ("upstream", "evicted", "slow_client")] == []


def test_sigterm_restart_with_state_dir_keeps_epoch_and_clients_resume_across_it(gateway_factory, tmp_path) -> None:
    gateway = gateway_factory("--state-dir", str(tmp_path / "state"))
    with emitter(gateway) as em:
        emit_n(gateway, em, 50)
    with connect(gateway.ws_url) as ws:
        hello = recv_json(ws)
    assert gateway.stop() == 0
    assert '"store.closed"' in gateway.logs()
    gateway.start()
    with connect(gateway.ws_url + f"?since=20&epoch={hello['epoch']}") as ws:
        assert recv_json(ws) == {"type": "gateway.hello", "epoch": hello["epoch"], "seq": 50, "oldest": 1}
        assert [recv_json(ws)["seq"] for _ in range(30)] == list(range(21, 51))
    state = gateway.status()["state"]
    assert state["epoch_restored"] and state["restored_entries"] == 50 and state["tail_truncations"] == 0
