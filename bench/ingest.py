"""Ingest against its ceiling: ``gatewayd`` and a bare pyzmq loop, fed the same way in the same run.

    python -m bench.ingest feed --connect tcp://127.0.0.1:P --count N   # the flood (a Core)
    python -m bench.ingest bare --bind tcp://127.0.0.1:P --count N      # the reference

The feeder pre-encodes ``N`` wire messages (one producer, ``pseq`` 1..N, the bench
payload), connects an XPUB to the receiver's bound SUB, waits for its subscription and
sends them as fast as ZeroMQ takes them (``XPUB_NODROP``, no send HWM: nothing is
dropped, the receiver's speed sets the pace).  The reference is what Python can
receive at all: a SUB draining with ``recv(NOBLOCK)`` and decoding each message with
msgspec into the wire Struct, nothing else.  The gateway does that plus validation,
producer accounting, sequencing, JSON and frame encoding, the ring (and the state log
with ``--state-dir``).

Rate = ``N`` / (feeder's first send → receiver has all ``N``): the bare loop reports
the moment it decoded the last message, the gateway's ``accepted`` counter is polled
every 10 ms.  Both clocks are ``CLOCK_MONOTONIC``.  Loopback only; every run is bounded
by ``N`` and a deadline.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import zmq

from emitter_sdk.wire import DECODER, ENCODER, Entity, WireEvent

ROOT = Path(__file__).resolve().parent.parent


def messages(count: int) -> list[bytes]:
    ts = "2026-11-28T07:00:00.000Z"
    entity = Entity("task", "t1")
    return [
        ENCODER.encode(
            WireEvent("task.progress", ts, "core", entity, {"progress": 42, "message": "Indexing documents"}, "feed", i)
        )
        for i in range(1, count + 1)
    ]


def feed(endpoint: str, count: int) -> dict[str, Any]:
    msgs = messages(count)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.XPUB_NODROP, 1)
    sock.connect(endpoint)
    if not sock.poll(20_000):
        return {"error": "receiver never subscribed"}
    sock.recv()  # the subscription
    start = time.monotonic()
    send = sock.send
    for m in msgs:
        send(m)
    sent = time.monotonic()
    sock.close(linger=30_000)
    ctx.term()
    return {"start": start, "sent": sent}


def bare(endpoint: str, count: int) -> dict[str, Any]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.setsockopt(zmq.RCVHWM, 100_000)
    sock.bind(endpoint)
    print(json.dumps({"ready": True}), flush=True)
    recv, decode, again = sock.recv, DECODER.decode, zmq.Again
    n = 0
    deadline = time.monotonic() + 120
    while n < count and time.monotonic() < deadline:
        try:
            data = recv(zmq.NOBLOCK)
        except again:
            sock.poll(100)
            continue
        decode(data)
        n += 1
    done = time.monotonic()
    sock.close(0)
    ctx.term()
    return {"received": n, "done": done}


def _run_feeder(endpoint: str, count: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "bench.ingest", "feed", "--connect", endpoint, "--count", str(count)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)


def _result(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if "error" in data:
        raise RuntimeError(data["error"])
    return data


def measure_bare(endpoint: str, count: int) -> dict[str, Any]:
    """The reference loop in its own process, fed by the feeder."""
    cmd = [sys.executable, "-m", "bench.ingest", "bare", "--bind", endpoint, "--count", str(count)]
    ref = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert ref.stdout is not None
        ref.stdout.readline()  # bound
        feeder = _run_feeder(endpoint, count)
        fed = _result(feeder, 180)
        got = _result(ref, 180)
    finally:
        for p in (ref,):
            if p.poll() is None:
                p.kill()
                p.wait()
    return {"received": got["received"], "eps": got["received"] / (got["done"] - fed["start"])}


def measure_gateway(status_url: str, endpoint: str, count: int) -> dict[str, Any]:
    """A running gateway (no clients) fed by the feeder; ``accepted`` polled on one keep-alive connection."""
    parts = urllib.parse.urlsplit(status_url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=5)

    def accepted() -> int:
        conn.request("GET", parts.path)
        return int(json.loads(conn.getresponse().read())["events"]["accepted"])

    base = accepted()
    feeder = _run_feeder(endpoint, count)
    deadline = time.monotonic() + 180
    n = base
    while n - base < count and time.monotonic() < deadline and feeder.poll() in (None, 0):
        time.sleep(0.01)
        n = accepted()
    done = time.monotonic()
    fed = _result(feeder, 60)
    conn.close()
    return {"accepted": n - base, "eps": (n - base) / (done - fed["start"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("role", choices=("feed", "bare"))
    ap.add_argument("--connect")
    ap.add_argument("--bind")
    ap.add_argument("--count", type=int, default=300_000)
    a = ap.parse_args(argv)
    result = feed(a.connect, a.count) if a.role == "feed" else bare(a.bind, a.count)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
