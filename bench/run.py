"""``make bench``: the project's own benchmark suite, standalone, loopback only, ≤ 10 min.

Each scenario starts a fresh ``gatewayd`` on free ports and measures it with the
project's own tools: ``bench/client/load.js`` (N raw-socket WebSocket clients in one
Node process) and ``bench/publisher.py`` (a Core process publishing through
``emitter_sdk``).  Figures (targets from issue 8; Nchan's from ``docs/benchmarks.md``):

- **fan-out**: N=100 and N=1000 clients, max rate (bounded backlog: the publisher
  stays ≤ ``inflight`` events ahead of the slowest client) and fixed rate (1000 ev/s
  × 100, 50 ev/s × 1000): deliveries/s, server CPU µs/delivery (utime+stime of the
  gateway from ``/proc/<pid>/stat`` between "clients ready" and "client done"),
  latency ``emit()`` → client receive p50/p99, sequence breaks and gaps (must be 0);
- **ingest**: no clients, a flood of pre-encoded wire messages (``bench/ingest.py``),
  3 interleaved repetitions of: the bare pyzmq ``recv(NOBLOCK)`` + msgspec decode loop
  (the same-run reference), ``gatewayd``, ``gatewayd --state-dir``; each gateway figure
  is printed beside that repetition's reference with the ratio (targets 0.35 / 0.3);
- **Core cost**: ``emit()`` p50/p99.9 from ``bench/core_cost.py`` (gateway healthy, stalled),
  and Core's CPU beside a bare pyzmq PUB loop at 100/1,000/5,000 ev/s (``bench/core_cpu.py``);
- **memory**: gateway RSS per idle WebSocket client with 10,000 clients.

Prints one table and writes everything to ``bench/results/<UTC time>.json``, with PNG
charts of the fan-out figures against the reference run beside it (``bench/charts.py``).
``--quick`` shortens every run (a smoke test of the suite, not a measurement).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.charts import REFERENCE, write_charts

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLIENT = ROOT / "bench" / "client" / "load.js"
RESULTS = ROOT / "bench" / "results"
TICK = os.sysconf("SC_CLK_TCK")

#: Nchan 1.3.6 on this machine, same kind of load (``../shared/bench``); see docs/benchmarks.md.
NCHAN = {"cpu_us_100": 2.3, "cpu_us_1000": 2.6, "p99_ms_1000x100": 5.7, "p99_ms_50x1000": 14.0}

FANOUT: tuple[tuple[int, float], ...] = (  # (clients, events/s; 0 = max)
    (100, 0),
    (1000, 0),
    (100, 1000),
    (1000, 50),
)


def nchan_available() -> bool:
    from bench import nchan

    return nchan.available()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def all_cpu() -> dict[int, float]:
    out: dict[int, float] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                out[int(d)] = cpu_s(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


class Gateway:
    """One ``gatewayd`` subprocess on free loopback ports."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.port = free_port()
        self.ingest = f"tcp://127.0.0.1:{free_port()}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/events"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENT_GATEWAY_")}
        cmd = [str(BIN / "gatewayd"), "--listen", f"127.0.0.1:{self.port}", "--ingest", self.ingest]
        cmd += ["--log-format", "json", "--log-level", "warning", *args]
        self.log = (workdir / f"gatewayd-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + 20
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gatewayd did not become healthy: {cmd}")
            time.sleep(0.05)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/status", timeout=5) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data

    def wait_clients(self, n: int, timeout: float = 30) -> None:
        """Until ``/status`` counts exactly ``n`` clients (joined, or gone)."""
        deadline = time.monotonic() + timeout
        while self.status()["clients"]["count"] != n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"gatewayd never counted {n} clients")
            time.sleep(0.05)

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def publish(self, rate: float, duration: float, **flow: str | int) -> dict[str, Any]:
        return publish(self.ingest, rate, duration, **flow)

    def counters(self) -> dict[str, Any]:
        status = self.status()
        return {
            "upstream_gaps": status["upstream_gaps"]["count"],
            "slow_disconnects": status["slow_client_disconnects"],
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def gateway(workdir: Path, *args: str) -> Iterator[Gateway]:
    gw = Gateway(workdir, *args)
    try:
        yield gw
    finally:
        gw.stop()


class LoadClient:
    """The Node load client; JSON lines on its stdout."""

    def __init__(self, url: str, n: int, progress: Path | None = None, deflate: bool = False) -> None:
        cmd = ["node", str(CLIENT), "--url", url, "--n", str(n), "--deflate", "1" if deflate else "0"]
        if progress is not None:
            cmd += ["--progress", str(progress)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = self.proc.stdout.readline()
        if not raw:
            raise RuntimeError("load client exited")
        data: dict[str, Any] = json.loads(raw)
        return data

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def publish(ingest: str, rate: float, duration: float, **flow: str | int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.publisher", "--ingest", ingest, "--rate", str(rate)]
    cmd += ["--duration", str(duration)]
    for key, value in flow.items():
        cmd += [f"--{key}", str(value)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=duration + 60)
    try:
        data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"publisher failed: {out.stdout} {out.stderr[-2000:]}") from None
    if "error" in data:
        raise RuntimeError(f"publisher: {data['error']}")
    return data


def profiler(pid: int, out: Path | None, duration: float) -> subprocess.Popen[bytes] | None:
    """py-spy (if installed next to this Python) sampling ``pid`` into collapsed stacks."""
    spy = BIN / "py-spy"
    if out is None or not spy.exists():
        return None
    cmd = [str(spy), "record", "--pid", str(pid), "--rate", "250", "--nonblocking", "--format", "raw"]
    cmd += ["--output", str(out), "--duration", str(int(duration) + 1)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_fanout(
    workdir: Path,
    n: int,
    rate: float,
    duration: float,
    profile: Path | None = None,
    *,
    deflate: bool = False,
    compression: str = "on",
    system: str = "gateway",
    args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One fan-out run against ``gatewayd`` or (``system="nchan"``, fixed rates) Nchan.

    ``deflate``: the clients offer permessage-deflate (``compression``: the gateway's answer);
    ``args``: more ``gatewayd`` options (a cluster node: ``bench/cluster.py``).
    """
    progress = workdir / f"progress-{n}-{rate}.bin"
    progress.write_bytes(b"\0" * 8)
    with contextlib.ExitStack() as stack:
        if system == "nchan":
            from bench import nchan

            server: Any = stack.enter_context(nchan.nchan(workdir, free_port()))
        else:
            server = stack.enter_context(gateway(workdir, "--compression", compression, *args))
        client = LoadClient(server.ws_url, n, progress, deflate)
        stack.callback(client.close)
        ready = client.line()
        if ready["opened"] != n:
            raise RuntimeError(f"only {ready['opened']} of {n} clients connected")
        server.wait_clients(n)
        pids = server.pids()
        load = os.getloadavg()[0]
        ours = {*pids, client.proc.pid, os.getpid(), -1}
        cpu0, ccpu0, all0 = sum(map(cpu_s, pids)), cpu_s(client.proc.pid), all_cpu()
        flow: dict[str, str | int] = {}
        if not rate:
            flow = {"progress": str(progress), "inflight": max(50, min(1000, 100_000 // n))}
        spy = profiler(pids[0], profile and profile / f"fanout-{system}-n{n}-r{rate:g}.txt", duration)
        pub = server.publish(rate, duration, **flow)
        if spy is not None:
            spy.wait()
        client.send(f"end {pub['queued']}")
        res = client.line()
        cpu1, ccpu1, all1 = sum(map(cpu_s, pids)), cpu_s(client.proc.pid), all_cpu()
        counters = server.counters()
    window = max(1e-9, (max(res["last_recv_us"], pub["start_us"]) - pub["start_us"]) / 1e6)
    other = sum(v - all0.get(p, 0.0) for p, v in all1.items() if p not in ours)
    delivered = res["received"]
    lat = res["lat_us"]
    return {
        "system": system,
        "n": n,
        "rate": rate,
        "queued": pub["queued"],
        "publisher_eps": pub["eps"],
        "expected": pub["queued"] * n,
        "received": delivered,
        "seq_breaks": res["seq_breaks"],
        "gap_messages": res["gap_messages"],
        **counters,
        "deliveries_ps": delivered / window,
        "window_s": window,
        "server_cpu_s": cpu1 - cpu0,
        "server_cpu_pct": 100 * (cpu1 - cpu0) / window,
        "server_cpu_us_per_delivery": 1e6 * (cpu1 - cpu0) / max(1, delivered),
        "client_cpu_pct": 100 * (ccpu1 - ccpu0) / window,
        "publisher_cpu_s": pub["cpu_s"],
        "other_cpu_pct": 100 * other / window,
        "loadavg_1m": load,
        "p50_ms": lat["p50"] / 1000 if lat["p50"] is not None else None,
        "p99_ms": lat["p99"] / 1000 if lat["p99"] is not None else None,
        "p999_ms": lat["p999"] / 1000 if lat["p999"] is not None else None,
        "max_ms": lat["max"] / 1000,
        "client_reason": res["reason"],
        "wire_bytes": res["wire_bytes"],
        "deflate": deflate,
        "compression": compression,
    }


def run_ingest(workdir: Path, reps: int, count: int, profile: Path | None = None) -> list[dict[str, Any]]:
    """``reps`` interleaved repetitions of: bare reference, gateway, gateway with ``--state-dir``."""
    from bench import ingest

    rows = []
    for rep in range(1, reps + 1):
        print(f"ingest rep {rep}/{reps} …", file=sys.stderr, flush=True)
        row: dict[str, Any] = {"rep": rep, "load": os.getloadavg()[0]}
        row["bare"] = ingest.measure_bare(f"tcp://127.0.0.1:{free_port()}", count)
        for name, args in (("gateway", ()), ("state_dir", ("--state-dir", str(workdir / f"state-{rep}")))):
            with gateway(workdir, *args) as gw:
                spy = profiler(gw.proc.pid, profile and profile / f"ingest-{name}-{rep}.txt", 5)
                cpu0 = cpu_s(gw.proc.pid)
                got = ingest.measure_gateway(gw.url + "/status", gw.ingest, count)
                got["server_cpu_us_per_event"] = 1e6 * (cpu_s(gw.proc.pid) - cpu0) / max(1, got["accepted"])
                got["upstream_gaps"] = gw.status()["upstream_gaps"]["count"]
                if spy is not None:
                    spy.wait()
            got["ratio"] = got["eps"] / row["bare"]["eps"]
            row[name] = got
        rows.append(row)
    return rows


def run_compression(workdir: Path, reps: int, duration: float) -> dict[str, Any]:
    """Wire bytes with/without permessage-deflate; CPU per delivery at 50 ev/s × 1000, on vs off, interleaved."""
    from bench import compression

    with gateway(workdir) as gw:
        wire = compression.measure(gw.port, gw.ingest)
    cpu = []
    for rep in range(1, reps + 1):
        pair = {}
        for comp in ("off", "on"):
            print(f"compression {comp}, 50 ev/s × 1000, rep {rep}/{reps} …", file=sys.stderr, flush=True)
            pair[comp] = run_fanout(workdir, 1000, 50, duration, deflate=True, compression=comp)
        cpu.append(pair)
    return {"wire": wire, "cpu": cpu}


def run_memory(workdir: Path, n: int) -> dict[str, Any]:
    with gateway(workdir, "--max-clients", str(2 * n)) as gw:
        # Warm the allocator and the code paths with a few clients first.
        warm = LoadClient(gw.ws_url, 10)
        warm.line()
        warm.send("stop")
        warm.line()
        warm.close()
        gw.wait_clients(0)
        base = rss_kib(gw.proc.pid)
        client = LoadClient(gw.ws_url, n)
        try:
            ready = client.line()
            gw.wait_clients(ready["opened"])
            loaded = rss_kib(gw.proc.pid)
            clients = gw.status()["clients"]["count"]
            client.send("stop")
            client.line()
        finally:
            client.close()
    return {
        "clients": clients,
        "opened": ready["opened"],
        "connect_s": ready["connect_ms"] / 1000,
        "rss_base_mib": base / 1024,
        "rss_loaded_mib": loaded / 1024,
        "kib_per_client": (loaded - base) / max(1, clients),
    }


def run_core_cost(quick: bool) -> dict[str, Any]:
    """``bench/core_cost.py``: ``emit()`` timed inside a Core process, gateway healthy → stalled → …"""
    from bench import core_cost

    args = ["--phase-seconds", "2", "--cpu-reps", "1", "--cpu-seconds", "2"] if quick else ["--phase-seconds", "8"]
    result: dict[str, Any] = core_cost.main(args)
    return result


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if abs(value) >= 10_000:
            return f"{value / 1000:.{digits}f}k"
        return f"{value:.{digits}f}"
    return str(value)


def render_table(rows: list[tuple[str, str, str, str]]) -> str:
    """The verdict table: columns padded to their widest cell, a rule under the header row."""
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def fixed_rows(add: Any, tag: str, runs: list[dict[str, Any]]) -> None:
    """A fixed-rate cell: each rep's gateway figure beside the same rep's Nchan, ratios and verdicts."""
    ours = [r for r in runs if r["system"] == "gateway"]
    peer = [r for r in runs if r["system"] == "nchan"]
    noise = " / ".join(f"{r['other_cpu_pct']:.0f} ({r.get('loadavg_1m', float('nan')):.1f})" for r in runs)
    add(f"{tag}: other CPU % (load average), every run", noise, "–", None)
    if len(peer) != len(ours):
        for r in ours:
            add(
                f"{tag}: CPU µs/delivery, p99 ms",
                f"{r['server_cpu_us_per_delivery']:.2f}, {r['p99_ms']:.2f}",
                "Nchan not installed",
                None,
            )
        return
    cpu = [(g["server_cpu_us_per_delivery"], p["server_cpu_us_per_delivery"]) for g, p in zip(ours, peer, strict=True)]
    p99 = [(g["p99_ms"], p["p99_ms"]) for g, p in zip(ours, peer, strict=True)]
    add(
        f"{tag}: CPU µs/delivery ÷ Nchan, each rep",
        " / ".join(f"{g:.2f}÷{p:.2f} = {g / p:.2f}" for g, p in cpu),
        "≤ in every rep",
        all(g <= p for g, p in cpu),
    )
    ratios = sorted(g / p for g, p in cpu)
    add(f"{tag}: CPU per delivery ÷ Nchan (median)", ratios[len(ratios) // 2], "≤ 1", ratios[len(ratios) // 2] <= 1, 2)
    add(
        f"{tag}: p99 ms ÷ Nchan, each rep",
        " / ".join(f"{g:.1f}÷{p:.1f} = {g / p:.2f}" for g, p in p99),
        "≤ in every rep",
        all(g <= p for g, p in p99),
    )
    mine = sorted(g for g, _ in p99)
    worst = mine[-1] / mine[len(mine) // 2]
    add(f"{tag}: worst rep's p99 ÷ median rep's", worst, "≤ 1.5", worst <= 1.5, 2)


def table(results: dict[str, Any]) -> str:
    rows = [("figure", "measured", "target", "verdict")]

    def add(name: str, value: Any, target: str, ok: bool | None, digits: int = 1) -> None:
        rows.append((name, fmt(value, digits), target, "–" if ok is None else ("met" if ok else "NOT met")))

    fixed: dict[tuple[int, float], list[dict[str, Any]]] = {}
    for f in results.get("fanout", []):
        tag = f"N={f['n']} " + ("max" if not f["rate"] else f"{f['rate']:g} ev/s")
        if f["system"] == "gateway":
            lossless = f["received"] == f["expected"] and not f["seq_breaks"] and not f["gap_messages"]
            add(f"{tag}: delivered/expected", f"{f['received']}/{f['expected']}", "all, in order", lossless)
        if f["rate"]:
            fixed.setdefault((f["n"], f["rate"]), []).append(f)
            continue
        ref = NCHAN[f"cpu_us_{f['n']}"]
        cpu = f["server_cpu_us_per_delivery"]
        add(f"{tag}: deliveries/s", f["deliveries_ps"], "–", None, 0)
        add(f"{tag}: server CPU µs/delivery", cpu, f"≤ Nchan {ref} (docs)", cpu <= ref, 2)
        add(f"{tag}: other CPU % (noise)", f["other_cpu_pct"], "–", None, 0)
    for (n, rate), runs in fixed.items():
        fixed_rows(add, f"N={n} {rate:g} ev/s", runs)
    ingest_rows = results.get("ingest", [])
    for name, goal in (("gateway", 0.35), ("state_dir", 0.3)):
        if not ingest_rows:
            break
        tag = "ingest" + (" --state-dir" if name == "state_dir" else "")
        ratios = sorted(r[name]["ratio"] for r in ingest_rows)
        clean = all(r[name]["upstream_gaps"] == 0 and r[name]["accepted"] == r["bare"]["received"] for r in ingest_rows)
        reps = " / ".join(
            f"{r[name]['eps'] / 1000:.0f}k÷{r['bare']['eps'] / 1000:.0f}k={r[name]['ratio']:.2f}" for r in ingest_rows
        )
        add(f"{tag}: ev/s ÷ bare loop = ratio, each rep", reps, f"≥ {goal}", None)
        add(
            f"{tag}: ratio to bare loop (median)",
            ratios[len(ratios) // 2],
            f"≥ {goal}, 0 gaps",
            clean and ratios[len(ratios) // 2] >= goal,
            2,
        )
    if ingest_rows:
        loads = " / ".join(f"{r['load']:.2f}" for r in ingest_rows if "load" in r)
        add("ingest: load average (1 min) at each rep's start", loads, "quiet (< 1)", None)
    comp = results.get("compression")
    if comp:
        for name in ("demo", "bench"):
            w = comp["wire"][name]
            add(
                f"wire bytes, {name} stream ({w['events']} ev): deflate ÷ plain",
                f"{w['deflate_bytes']}÷{w['plain_bytes']} = {w['ratio']:.2f}",
                "same run",
                comp["wire"]["negotiated"] and w["ratio"] < 1,
            )
        pairs = comp["cpu"]
        ratios = sorted(p["on"]["server_cpu_us_per_delivery"] / p["off"]["server_cpu_us_per_delivery"] for p in pairs)
        each = " / ".join(
            f"{p['on']['server_cpu_us_per_delivery']:.2f}÷{p['off']['server_cpu_us_per_delivery']:.2f}" for p in pairs
        )
        add("50 ev/s × 1000, compression on ÷ off: CPU µs/delivery, each rep", each, "same run", None)
        lossless = all(p[c]["received"] == p[c]["expected"] for p in pairs for c in ("on", "off"))
        add(
            "50 ev/s × 1000, compression on ÷ off (median)",
            ratios[len(ratios) // 2],
            "≤ 1.3",
            lossless and ratios[len(ratios) // 2] <= 1.3,
            2,
        )
    core = results.get("core_cost")
    if core:
        for phase in ("healthy", "stalled"):
            p = core["phases"][phase]
            add(f"emit() p50 µs, gateway {phase}", p["p50_us"], "≤ 2", p["p50_us"] <= 2, 2)
            add(f"emit() p99.9 µs, gateway {phase}", p["p99_9_us"], "≤ 50", p["p99_9_us"] <= 50, 2)
        for rate, ok in core.get("cpu", {}).get("target_met", {}).items():
            each = "/".join(f"{r['ratio']:.2f}" for r in core["cpu"]["rows"] if str(r["rate"]) == rate)
            add(f"Core CPU, SDK/bare PUB loop, {rate} ev/s (each rep)", each, "≤ 1.3×, p99.9 ≤ 50 µs", ok)
    mem = results.get("memory")
    if mem:
        add(
            f"memory: KiB per idle client ({mem['clients']})",
            mem["kib_per_client"],
            "≤ 16",
            mem["kib_per_client"] <= 16,
        )
    return render_table(rows)


def save(results: dict[str, Any], shown: str, suffix: str = "") -> Path:
    """Write ``results`` to ``bench/results/<UTC time><suffix>.json``, print ``shown`` and where it went."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + suffix + ".json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(shown)
    print(f"\nfull results: {out.relative_to(ROOT)}  ({results['elapsed_s']:.0f} s)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 s runs, 1000 idle clients: a smoke test")
    ap.add_argument("--only", nargs="*", default=["fanout", "ingest", "compression", "core", "memory"])
    ap.add_argument("--fanout", nargs="*", default=None, metavar="N:RATE", help="fan-out scenarios (default: all)")
    ap.add_argument("--profile", type=Path, default=None, help="py-spy the gateway into this directory")
    a = ap.parse_args()
    if shutil.which("node") is None:
        print("make bench needs node (>= 18) on PATH", file=sys.stderr)
        return 2
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    duration = 2.0 if a.quick else 10.0
    results: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname()), "python": sys.version.split()[0]},
        "duration_s": duration,
    }
    started = time.monotonic()
    if a.profile:
        a.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        workdir = Path(tmp)
        if "fanout" in a.only:
            results["fanout"] = []
            scenarios = FANOUT
            if a.fanout:
                scenarios = tuple((int(x.split(":")[0]), float(x.split(":")[1])) for x in a.fanout)
            systems = ("gateway", "nchan") if nchan_available() else ("gateway",)
            for n, rate in scenarios:
                # Fixed rates: interleaved repetitions beside Nchan where installed; max rate: once.
                for rep in range(1, (1 if a.quick else 3) + 1 if rate else 2):
                    for system in systems if rate else ("gateway",):
                        print(f"fan-out {system} N={n} rate={rate or 'max'} rep {rep} …", file=sys.stderr, flush=True)
                        results["fanout"].append(run_fanout(workdir, n, rate, duration, a.profile, system=system))
        if "ingest" in a.only:
            results["ingest"] = run_ingest(workdir, 1 if a.quick else 3, 50_000 if a.quick else 300_000, a.profile)
        if "compression" in a.only:
            results["compression"] = run_compression(workdir, 1 if a.quick else 3, duration)
        if "core" in a.only:
            print("core cost …", file=sys.stderr, flush=True)
            results["core_cost"] = run_core_cost(a.quick)
        if "memory" in a.only:
            n = min(1000 if a.quick else 10_000, hard - 200)  # the limit is per process (client, gateway)
            print(f"memory with {n} idle clients …", file=sys.stderr, flush=True)
            results["memory"] = run_memory(workdir, n)
    results["elapsed_s"] = time.monotonic() - started
    out = save(results, table(results))
    for chart in write_charts(results, json.loads(REFERENCE.read_text()), out.with_suffix("")):
        print(f"chart: {chart.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
