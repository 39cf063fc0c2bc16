"""Bridge from the peer harness's publisher to the gateway, through ``emitter_sdk``.

The harness publisher binds a ZeroMQ XPUB and sends raw JSON events; systems under
test connect to it.  The gateway does the opposite (it binds ingest; Core's emitters
connect), so this shim plays Core: a SUB connected to the harness's XPUB, and an
:class:`~emitter_sdk.Emitter` connected to the gateway's ingest.  Each JSON event
becomes one ``emit(type, entity=…, payload=…)``; ``ts`` is stamped by the SDK as in
production.  The SUB subscribes only once the gateway has subscribed to the emitter,
so the harness starts publishing only when the whole path is up.

On SIGTERM it prints one JSON line (``"server-stats"``): events bridged, the SDK's
counters and its own CPU seconds (the adapter keeps this process out of the
gateway's CPU figure: it is Core's cost, not the gateway's).
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
from typing import Any

import msgspec
import zmq

from emitter_sdk import Emitter


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sub", required=True, help="the harness publisher's XPUB endpoint (we connect)")
    ap.add_argument("--ingest", required=True, help="the gateway's ingest endpoint (the SDK connects)")
    a = ap.parse_args()
    em = Emitter(a.ingest, max_queue=1_000_000)
    if not em.wait_subscribed(20):
        print("shim: gateway never subscribed", file=sys.stderr)
        return 1
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 100_000)
    sub.connect(a.sub)
    running = True

    def stop(*_: Any) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    decode = msgspec.json.Decoder().decode
    emit = em.emit
    bridged = 0
    while running:
        if not sub.poll(100):
            continue
        while True:
            try:
                raw = sub.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            event = decode(raw)
            ent = event.get("entity")
            emit(
                event["type"],
                entity=None if ent is None else (ent["kind"], ent["id"]),
                payload=event.get("payload") or {},
                source=event.get("source") or "core",
            )
            bridged += 1
    em.flush(2)
    stats = em.stats
    em.close()
    sub.close(0)
    ctx.term()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out = {"event": "server-stats", "bridged": bridged, "sdk": msgspec.to_builtins(stats)}
    out["shim_cpu_s"] = ru.ru_utime + ru.ru_stime
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
