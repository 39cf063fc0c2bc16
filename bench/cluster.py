"""The cluster part of ``make bench`` (``python -m bench.cluster [--quick] [--only …] [--reps N]``), issue 14.

Every part starts its own three ``nats-server`` processes (one JetStream cluster,
streams with replicas 3) on loopback and stops them afterwards; each figure is
printed beside its same-run reference, with the ratio or difference and a verdict.

- **latency** (added by the stream): 100 clients at 1000 ev/s on a single gateway,
  then on a cluster node, same run: p50 ≤ single + 2 ms, p99 ≤ single + 5 ms.
- **ingest** (``bench.cluster_ingest``): one node, the SDK publisher at max (bounded
  backlog): accepted ev/s ≥ 100k with zero loss; then **catch-up**: a client
  resuming 100,000+ events behind on a second node (ring 1,000) reads ≥ 50k ev/s.
- **nodes** (``bench.cluster_nodes``): 1,000 clients on one gateway at 50 ev/s, then
  2,000 split over two nodes: every event in order, p99 ≤ the single gateway's;
  beside it the control, two plain gateways × 1,000 without the stream.
- **quorum** (``bench.cluster_quorum``): ``emit()`` timed in a Core process into a
  node while the stream has its quorum, while two of three servers are stopped
  (~10 s), and after; p99.9 lost ÷ held ≤ 2, every event delivered or reported.

Everything on 127.0.0.1; every process is stopped at the end.  Prints one table and
writes ``bench/results/<UTC time>-cluster.json``.  ``--quick``: short runs (a smoke test).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.run import fmt, render_table, run_fanout, save
from tests.natsservers import NatsCluster, start_servers

PARTS = ("latency", "ingest", "nodes", "quorum")


@contextlib.contextmanager
def nats3(workdir: Path) -> Iterator[NatsCluster]:
    """Three fresh JetStream servers in one cluster; killed and their stores removed afterwards."""
    store = Path(tempfile.mkdtemp(prefix="nats-", dir=workdir))
    servers = start_servers(store, 3)
    try:
        yield servers
    finally:
        servers.close()
        shutil.rmtree(store, ignore_errors=True)


def node_args(servers: NatsCluster, stream: str) -> tuple[str, ...]:
    return ("--cluster", servers.urls, "--cluster-replicas", "3", "--cluster-stream", stream)


def run_latency(workdir: Path, duration: float) -> dict[str, Any]:
    with nats3(workdir) as servers:
        return {
            "single": run_fanout(workdir, 100, 1000, duration),
            "cluster": run_fanout(workdir, 100, 1000, duration, args=node_args(servers, "LATENCY")),
        }


def run_part(part: str, workdir: Path, quick: bool, profile: Path | None) -> dict[str, Any]:
    duration = 2.0 if quick else 10.0
    if part == "latency":
        return run_latency(workdir, duration)
    if part == "ingest":
        from bench import cluster_ingest

        with nats3(workdir) as servers:
            return cluster_ingest.run(workdir, servers, node_args(servers, "INGEST"), duration, profile)
    if part == "nodes":
        from bench import cluster_nodes

        with nats3(workdir) as servers:
            return cluster_nodes.run(workdir, node_args(servers, "NODES"), duration)
    from bench import cluster_quorum

    with nats3(workdir) as servers:
        return cluster_quorum.run(workdir, servers, node_args(servers, "QUORUM"), 2.0 if quick else 5.0)


Add = Any


def latency_rows(add: Add, runs: list[dict[str, Any]]) -> None:
    for q, slack in (("p50", 2.0), ("p99", 5.0)):
        pairs = [(r["single"][f"{q}_ms"], r["cluster"][f"{q}_ms"]) for r in runs]
        each = " / ".join(f"{s:.2f} → {c:.2f}" for s, c in pairs)
        worst = max(c - s for s, c in pairs)
        add(f"1000 ev/s × 100: {q} ms single → node, each rep", each, f"+≤ {slack:g} in every rep", worst <= slack)
    lossless = all(r[k]["received"] == r[k]["expected"] and not r[k]["seq_breaks"] for r in runs for k in r)
    add("1000 ev/s × 100: delivered, in order (both)", "all" if lossless else "NOT all", "all", lossless)


def ingest_rows(add: Add, runs: list[dict[str, Any]]) -> None:
    each = " / ".join(f"{r['ingest']['accepted_eps'] / 1000:.0f}k" for r in runs)
    clean = all(r["ingest"]["lost"] == 0 and r["ingest"]["upstream_gaps"] == 0 for r in runs)
    worst = min(r["ingest"]["accepted_eps"] for r in runs)
    add("R3 ingest: accepted ev/s, each rep (0 lost, 0 gaps)", each, "≥ 100k in every rep", clean and worst >= 1e5)
    add(
        "R3 ingest: events/record, node µs/event, each rep",
        " / ".join(f"{r['ingest']['events_per_record']:.0f}, {r['ingest']['node_us_per_event']:.1f}" for r in runs),
        "–",
        None,
    )
    add(
        "R3 ingest: CPU % node / publisher / 3 servers / other, each rep",
        " / ".join(
            f"{i['node_cpu_pct']:.0f}/{i['publisher_cpu_pct']:.0f}/{i['servers_cpu_pct']:.0f}/{i['other_cpu_pct']:.0f}"
            for i in (r["ingest"] for r in runs)
        ),
        "of one core",
        None,
    )
    cu = [r["catch_up"] for r in runs]
    ok = all(c["eps"] >= 50_000 and not c["seq_breaks"] and c["received"] == c["behind"] for c in cu)
    add(
        "catch-up from the stream: ev/s (events behind), each rep",
        " / ".join(f"{c['eps'] / 1000:.0f}k ({c['behind']})" for c in cu),
        "≥ 50k, contiguous",
        ok,
    )


def nodes_rows(add: Add, runs: list[dict[str, Any]]) -> None:
    pairs = [(r["single"]["p99_ms"], r["two_nodes"]["p99_ms"]) for r in runs]
    add(
        "50 ev/s: p99 ms 1 gateway × 1000 → 2 nodes × 1000, each rep",
        " / ".join(f"{s:.2f} → {t:.2f} ({t / s:.2f}×)" for s, t in pairs),
        "≤ 1× in every rep",
        all(t <= s for s, t in pairs),
    )
    add(
        "50 ev/s: p50 ms 1 gateway → 2 nodes; 1 node × 1000 p50/p99",
        " / ".join(
            f"{r['single']['p50_ms']:.2f} → {r['two_nodes']['p50_ms']:.2f}; "
            f"{r['one_node']['p50_ms']:.2f}/{r['one_node']['p99_ms']:.2f}"
            for r in runs
        ),
        "–",
        None,
    )
    add(
        "control, no stream: p99 ms 2 plain gateways × 1000, each rep",
        " / ".join(
            f"{r['two_plain']['p99_ms']:.2f} ({r['two_plain']['p99_ms'] / r['single']['p99_ms']:.2f}×)" for r in runs
        ),
        "– (the box's bound)",
        None,
    )
    ok = all(r["two_nodes"]["in_order"] and r["two_plain"]["in_order"] for r in runs)
    got = " / ".join(f"{r['two_nodes']['received']}/{r['two_nodes']['expected']}" for r in runs)
    add("2 nodes × 1000: delivered/expected, in order", got, "all, in order", ok)


def quorum_rows(add: Add, runs: list[dict[str, Any]]) -> None:
    for r in runs:
        ph = r["phases"]
        add(
            "emit() p50/p99/p99.9 µs: quorum held | lost | back",
            " | ".join(f"{ph[p]['p50_us']:.1f}/{ph[p]['p99_us']:.1f}/{ph[p]['p99_9_us']:.1f}" for p in ph),
            "–",
            None,
        )
    ratios = [r["phases"]["lost"]["p99_9_us"] / r["phases"]["held"]["p99_9_us"] for r in runs]
    add(
        "emit() p99.9 lost ÷ held, each rep",
        " / ".join(f"{x:.2f}" for x in ratios),
        "≤ 2 (issue 4's rule)",
        max(ratios) <= 2,
    )
    ok = all(r["accounted"] and r["raised"] == 0 for r in runs)
    add(
        "quorum: delivered + reported = queued; degraded s",
        " / ".join(f"{r['delivered']}+{r['missed']}={r['queued']}; {r['degraded_s']:.1f}" for r in runs),
        "every event, 0 raised",
        ok,
    )


def table(results: dict[str, Any]) -> str:
    rows = [("figure", "measured", "target", "verdict")]

    def add(name: str, value: Any, target: str, ok: bool | None, digits: int = 1) -> None:
        rows.append((name, fmt(value, digits), target, "–" if ok is None else ("met" if ok else "NOT met")))

    load = " / ".join(f"{la[0]:.2f}" for la in results["load"])
    add("load average (1 min) before each part", load, "–", None)
    for part, rows_of in (
        ("latency", latency_rows),
        ("ingest", ingest_rows),
        ("nodes", nodes_rows),
        ("quorum", quorum_rows),
    ):
        if results.get(part):
            rows_of(add, results[part])
    return render_table(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs: a smoke test")
    ap.add_argument("--only", nargs="*", choices=PARTS, default=list(PARTS))
    ap.add_argument("--reps", type=int, default=1, help="repetitions of each part, interleaved")
    ap.add_argument("--profile", type=Path, default=None, help="py-spy the ingesting node into this directory")
    a = ap.parse_args()
    if a.profile:
        a.profile.mkdir(parents=True, exist_ok=True)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = time.monotonic()
    results: dict[str, Any] = {"load": [], **{part: [] for part in a.only}}
    with tempfile.TemporaryDirectory(prefix="gateway-bench-cluster-") as tmp:
        for rep in range(1, a.reps + 1):
            for part in a.only:
                results["load"].append(os.getloadavg())
                print(f"cluster {part}, rep {rep}/{a.reps} …", file=sys.stderr, flush=True)
                results[part].append(run_part(part, Path(tmp), a.quick, a.profile))
    results["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["elapsed_s"] = time.monotonic() - started
    save(results, table(results), "-cluster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
