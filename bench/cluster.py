"""The cluster part of ``make bench`` (``python -m bench.cluster [--quick]``), issue 14's targets.

- **ingest**: one gateway node on a stream replicated on three ``nats-server``
  processes (replicas 3); the publisher emits as fast as the node accepts (at most
  50,000 events ahead of its ``accepted`` counter, so nothing is dropped anywhere).
  Reported: accepted events/s, and loss (queued − accepted, upstream gaps).
- **added latency**: 100 clients at 1000 ev/s on a single gateway, then on a cluster
  node (R3), same run: the difference in p50 and p99 is what the stream adds.
- **catch-up**: a second node with a small ring (1,000) joins afterwards; a client
  resumes on it from ``since=0``: every event but the last 1,000 is read from the
  stream.  Reported: events/s received by that client, and that they are contiguous.

Everything on 127.0.0.1; every process is stopped at the end.  Prints one table and
writes ``bench/results/<UTC time>-cluster.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.run import RESULTS, ROOT, cpu_s, fmt, gateway, publish, render_table, run_fanout
from tests.natsservers import start_servers


async def _catch_up(ws_url: str, epoch: str, target: int) -> dict[str, Any]:
    """Resume from since=0 and read until seq ``target``; events/s from the first event to the last."""
    received = breaks = 0
    last = 0
    first_at = None
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{ws_url}?since=0&epoch={epoch}", max_msg_size=0) as ws,
    ):
        async for msg in ws:
            data = json.loads(msg.data)
            if data["type"].startswith("gateway."):
                continue
            if first_at is None:
                first_at = time.perf_counter()
            received += 1
            breaks += data["seq"] != last + 1
            last = data["seq"]
            if last >= target:
                break
    elapsed = time.perf_counter() - (first_at or time.perf_counter())
    return {"received": received, "seq_breaks": breaks, "elapsed_s": elapsed, "eps": received / max(elapsed, 1e-9)}


def run_cluster(workdir: Path, duration: float) -> dict[str, Any]:
    nats_dir = Path(tempfile.mkdtemp(prefix="nats-", dir=workdir))
    servers = start_servers(nats_dir, 3)
    args = ("--cluster", servers.urls, "--cluster-replicas", "3")
    try:
        latency = {
            "single": run_fanout(workdir, 100, 1000, duration),
            "cluster": run_fanout(workdir, 100, 1000, duration, args=(*args, "--cluster-stream", "LATENCY")),
        }
        with gateway(workdir, *args) as node:
            cpu0 = cpu_s(node.proc.pid)
            pub = publish(node.ingest, 0, duration, status=node.url + "/status", inflight=50_000)
            deadline = time.monotonic() + 60
            while node.status()["events"]["accepted"] < pub["queued"] and time.monotonic() < deadline:
                time.sleep(0.05)
            status = node.status()
            cpu1 = cpu_s(node.proc.pid)
            with gateway(workdir, *args, "--ring-size", "1000") as late:
                catch_up = asyncio.run(_catch_up(late.ws_url, status["epoch"], status["seq"]))
    finally:
        servers.close()
    accepted = status["events"]["accepted"]
    cluster = status["cluster"]
    return {
        "ingest": {
            "replicas": 3,
            "queued": pub["queued"],
            "sdk_dropped": pub["dropped"],
            "accepted": accepted,
            "accepted_eps": accepted / pub["elapsed_s"],
            "upstream_gaps": status["upstream_gaps"]["count"],
            "records": cluster["records_published"],
            "events_per_record": accepted / max(1, cluster["records_published"]),
            "server_cpu_us_per_event": 1e6 * (cpu1 - cpu0) / max(1, accepted),
        },
        "catch_up": {"behind": status["seq"], **catch_up},
        "latency": latency,
    }


def table(results: dict[str, Any]) -> str:
    ing, cu, lat = results["ingest"], results["catch_up"], results["latency"]
    rows = [("figure", "measured", "target", "verdict")]

    def add(name: str, value: Any, target: str, ok: bool, digits: int = 1) -> None:
        rows.append((name, fmt(value, digits), target, "met" if ok else "NOT met"))

    clean = ing["accepted"] == ing["queued"] and ing["upstream_gaps"] == 0
    add(
        "cluster R3 ingest: accepted ev/s",
        ing["accepted_eps"],
        "≥ 100k, 0 loss",
        clean and ing["accepted_eps"] >= 1e5,
        0,
    )
    add("cluster catch-up from the stream: ev/s", cu["eps"], "≥ 50k", cu["eps"] >= 50_000 and not cu["seq_breaks"], 0)
    single, node = lat["single"], lat["cluster"]
    for q, slack in (("p50", 2.0), ("p99", 5.0)):
        added = node[f"{q}_ms"] - single[f"{q}_ms"]
        add(
            f"1000 ev/s × 100: {q} ms single → node",
            f"{single[q + '_ms']:.2f} → {node[q + '_ms']:.2f}",
            f"+≤ {slack:g}",
            added <= slack,
        )
    return render_table(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 s runs: a smoke test")
    a = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = time.monotonic()
    print("cluster: added latency, ingest R3, catch-up …", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-cluster-") as tmp:
        results = run_cluster(Path(tmp), 2.0 if a.quick else 10.0)
    results["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["elapsed_s"] = time.monotonic() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-cluster.json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))
    print(f"\nfull results: {out.relative_to(ROOT)}  ({results['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
