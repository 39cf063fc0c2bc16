"""Cluster ingest and catch-up (``bench/cluster.py``'s ``ingest`` part).

- **ingest**: one gateway node on a replicas-3 stream; the SDK publisher emits as fast
  as the node accepts (at most 50,000 events ahead of its ``accepted`` counter, so
  nothing is dropped anywhere).  Reported: accepted events/s, loss (queued −
  accepted), upstream gaps, events per record, and the CPU of the node, the
  publisher, the three servers and everything else on the machine (% of one core;
  "other" is the noise), all over the window from the
  publisher's first event until the node accepted its last.
- **catch-up**: a second node with a 1,000-event ring joins afterwards; a client
  resumes on it ``CATCH_UP`` events behind the head, so all but the last 1,000 are
  read from the stream.  Reported: events/s from its first event to its last, and
  that they are contiguous.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.run import all_cpu, cpu_s, gateway, profiler, publish
from tests.natsservers import NatsCluster

#: How far behind the head the catching-up client resumes (issue 14: 100,000).
CATCH_UP = 100_000


async def catch_up(ws_url: str, epoch: str, since: int, target: int) -> dict[str, Any]:
    """Resume from ``since`` and read until seq ``target``; events/s from the first event to the last."""
    received = breaks = 0
    last = since
    first_at = None
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{ws_url}?since={since}&epoch={epoch}", max_msg_size=0) as ws,
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
    return {
        "behind": target - since,
        "received": received,
        "seq_breaks": breaks,
        "elapsed_s": elapsed,
        "eps": received / max(elapsed, 1e-9),
    }


def run(
    workdir: Path, servers: NatsCluster, args: tuple[str, ...], duration: float, profile: Path | None
) -> dict[str, Any]:
    pids = [s.proc.pid for s in servers.servers if s.proc is not None]
    with gateway(workdir, *args) as node:
        cpu0, scpu0, all0 = cpu_s(node.proc.pid), sum(map(cpu_s, pids)), all_cpu()
        spy = profiler(node.proc.pid, profile and profile / "cluster-ingest.txt", duration)
        pub = publish(node.ingest, 0, duration, status=node.url + "/status", inflight=50_000)
        returned = time.monotonic()
        while node.status()["events"]["accepted"] < pub["queued"] and time.monotonic() < returned + 60:
            time.sleep(0.01)
        # The window: the publisher's emit loop, plus everything after it until the node
        # accepted the last event (its flush and exit included: a slight underestimate).
        window = pub["elapsed_s"] + time.monotonic() - returned
        cpu1, scpu1, all1 = cpu_s(node.proc.pid), sum(map(cpu_s, pids)), all_cpu()
        ours = {*pids, node.proc.pid, os.getpid()}
        other = sum(v - all0.get(p, 0.0) for p, v in all1.items() if p not in ours)
        status = node.status()
        if spy is not None:
            spy.wait()
        with gateway(workdir, *args, "--ring-size", "1000") as late:
            head = status["seq"]
            caught = asyncio.run(catch_up(late.ws_url, status["epoch"], max(0, head - CATCH_UP), head))
    accepted = status["events"]["accepted"]
    cluster = status["cluster"]
    return {
        "ingest": {
            "queued": pub["queued"],
            "sdk_dropped": pub["dropped"],
            "accepted": accepted,
            "lost": pub["queued"] - accepted + pub["dropped"],
            "accepted_eps": accepted / window,
            "upstream_gaps": status["upstream_gaps"]["count"],
            "records": cluster["records_published"],
            "events_per_record": accepted / max(1, cluster["records_published"]),
            "node_us_per_event": 1e6 * (cpu1 - cpu0) / max(1, accepted),
            "node_cpu_pct": 100 * (cpu1 - cpu0) / window,
            "publisher_cpu_pct": 100 * pub["cpu_s"] / window,
            "servers_cpu_pct": 100 * (scpu1 - scpu0) / window,
            "other_cpu_pct": 100 * other / window,
        },
        "catch_up": caught,
    }
