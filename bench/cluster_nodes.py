"""Twice the clients at the same latency (``bench/cluster.py``'s ``nodes`` part).

Three runs of ``duration`` seconds at 50 ev/s, same run, each with the load client
``bench/client/load.js`` (one Node process per 1,000 clients) and the Core publisher
``bench/publisher.py``:

1. **single**: one plain ``gatewayd``, 1,000 clients — the reference;
2. **one node**: one cluster node, 1,000 clients (what the stream adds, for reading);
3. **two nodes**: two cluster nodes, 1,000 clients on each, the publisher's
   ``Emitter`` given both ingest endpoints (each event to both nodes; the stream
   keeps it once, as deployed: ``docs/cluster.md``);
4. **two plain gateways** (the control): the same as 3 without the stream — two
   single gateways, 1,000 clients each, both fed by one ``Emitter``.  What this
   box does to twice the deliveries on its two shared cores, cluster or not.

Reported per run: delivered/expected, sequence breaks and gap messages (must be 0),
p50/p99/p99.9 of ``emit()`` → client receive.  Two load clients cannot merge their
histograms, so the two-node percentiles are the worse node's: an upper bound of the
2,000 clients' (each node's p99 leaves ≤ 1 % of its clients' samples above it).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from bench.run import LoadClient, all_cpu, cpu_s, gateway, publish, run_fanout

CLIENTS = 1000
RATE = 50.0


def two_nodes(workdir: Path, args: tuple[str, ...], duration: float) -> dict[str, Any]:
    """1,000 clients on each of two gateways started with ``args``; the publisher emits into both."""
    with contextlib.ExitStack() as stack:
        nodes = [stack.enter_context(gateway(workdir, *args)) for _ in range(2)]
        clients = []
        for node in nodes:
            client = LoadClient(node.ws_url, CLIENTS)
            stack.callback(client.close)
            clients.append(client)
        for node, client in zip(nodes, clients, strict=True):
            ready = client.line()
            if ready["opened"] != CLIENTS:
                raise RuntimeError(f"only {ready['opened']} of {CLIENTS} clients connected")
            node.wait_clients(CLIENTS)
        pids = [n.proc.pid for n in nodes]
        ours = {*pids, *(c.proc.pid for c in clients), os.getpid()}
        cpu0, all0 = [cpu_s(p) for p in pids], all_cpu()
        pub = publish(",".join(n.ingest for n in nodes), RATE, duration)
        for client in clients:
            client.send(f"end {pub['queued']}")
        res = [client.line() for client in clients]
        cpu1, all1 = [cpu_s(p) for p in pids], all_cpu()
        gaps = sum(n.status()["upstream_gaps"]["count"] for n in nodes)
    window = max(1e-9, (max(r["last_recv_us"] for r in res) - pub["start_us"]) / 1e6)
    other = sum(v - all0.get(p, 0.0) for p, v in all1.items() if p not in ours)
    received = sum(r["received"] for r in res)
    expected = pub["queued"] * CLIENTS * 2
    breaks = sum(r["seq_breaks"] + r["gap_messages"] for r in res)

    def worst(q: str) -> float:
        return float(max(r["lat_us"][q] for r in res)) / 1000

    return {
        "queued": pub["queued"],
        "expected": expected,
        "received": received,
        "seq_breaks_and_gaps": breaks,
        "upstream_gaps": gaps,
        "in_order": received == expected and breaks == 0 and gaps == 0,
        "p50_ms": worst("p50"),
        "p99_ms": worst("p99"),
        "p999_ms": worst("p999"),
        "per_node_p99_ms": [r["lat_us"]["p99"] / 1000 for r in res],
        "node_cpu_pct": [100 * (b - a) / window for a, b in zip(cpu0, cpu1, strict=True)],
        "client_cpu_s": [r["cpu_s"] for r in res],
        "other_cpu_pct": 100 * other / window,
    }


def run(workdir: Path, args: tuple[str, ...], duration: float) -> dict[str, Any]:
    return {
        "single": run_fanout(workdir, CLIENTS, RATE, duration),
        "one_node": run_fanout(workdir, CLIENTS, RATE, duration, args=args),
        "two_nodes": two_nodes(workdir, args, duration),
        "two_plain": two_nodes(workdir, (), duration),
    }
