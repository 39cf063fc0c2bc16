"""Core isolation: what one ``emit()`` costs inside a Core process, whatever the gateway does.

    python -m bench.core_cost [--rate 5000] [--phase-seconds 8] [--cpu-reps 3] [--cpu-seconds 5]

A Core process (this module with ``--core``) emits ``--rate`` events/s through
``emitter_sdk`` and times every ``emit()`` call with ``perf_counter_ns``, while
this process drives the gateway through four phases of ``--phase-seconds`` each:

1. ``healthy``   — gatewayd running;
2. ``stalled``   — gatewayd SIGSTOPped (its sockets open, nothing read);
3. ``killed``    — gatewayd SIGKILLed (connection refused), then started again until healthy;
4. ``restarted`` — a new gatewayd on the same endpoints (the SDK re-sends its buffer).

Per phase: emit() p50 / p99 / p99.9 / max in µs, calls, and how many raised (must
be 0).  The target (issue 4): p99.9 in every phase within 2× of ``healthy``.

Then Core's CPU (issue 16, :mod:`bench.core_cpu`): process CPU of an SDK emitter
against a bare pyzmq PUB loop at 100, 1,000 and 5,000 ev/s paced, ``--cpu-reps``
repetitions of ``--cpu-seconds`` each, every figure beside the bare loop's, the ratio
and a verdict per rate (≤ 1.3× in every repetition, emit() p99.9 ≤ 50 µs).

Prints the tables and one JSON line, writes ``bench/results/core_cost-<UTC>.json`` and
returns the same dict from :func:`main` (``bench/run.py`` calls it).  Bounded: about
``4 × phase-seconds + 10`` s plus ``6 × cpu-reps × (cpu-seconds + 2)`` s (≤ 3 min with
the defaults).
"""

from __future__ import annotations

import argparse
import array
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
PHASES = ("healthy", "stalled", "killed", "restarted")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the Core process ---------------------------------------------------------------------


def core(ingest: str, rate: int, out: str) -> None:
    """Emit ``rate`` events/s until stdin closes; write (start ns, cost ns) pairs to ``out``."""
    from emitter_sdk import Emitter

    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    starts, costs = array.array("q"), array.array("q")
    raised = 0
    payload = {"progress": 0, "message": "Indexing documents"}
    clock, now_ns = time.perf_counter_ns, time.monotonic_ns
    with Emitter(ingest) as em:
        if not em.wait_subscribed(10):
            raise SystemExit("core: the gateway never subscribed")
        print("ready", flush=True)
        begin, sent = time.monotonic(), 0
        while not stop.is_set():
            due = int((time.monotonic() - begin) * rate)
            while sent < due:
                payload["progress"] = sent % 101
                at = now_ns()
                t0 = clock()
                try:
                    em.emit("task.progress", entity=("task", "bench"), payload=payload)
                except Exception:  # noqa: BLE001 - counting is the point: emit() must never raise
                    raised += 1
                costs.append(clock() - t0)
                starts.append(at)
                sent += 1
            time.sleep(0.0005)
        stats = em.stats
    with open(out, "wb") as fh:
        starts.tofile(fh)
        costs.tofile(fh)
    print(json.dumps({"raised": raised, "emitted": stats.emitted, "dropped": stats.dropped}), flush=True)


# -- the driver ---------------------------------------------------------------------------


class Gatewayd:
    """``gatewayd`` on fixed loopback endpoints, so a restart is the same gateway to the SDK."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.ingest = f"tcp://127.0.0.1:{free_port()}"
        self.log = (workdir / "gatewayd.log").open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENT_GATEWAY_")}
        cmd = [str(BIN / "gatewayd"), "--listen", f"127.0.0.1:{self.port}", "--ingest", self.ingest]
        self.proc = subprocess.Popen([*cmd, "--log-level", "warning"], stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + 20
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gatewayd did not become healthy")
            time.sleep(0.02)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] / 1000


def by_phase(
    starts: array.array[int], costs: array.array[int], spans: dict[str, tuple[int, int]]
) -> dict[str, dict[str, Any]]:
    """Per named span ``lo <= start < hi`` (ns): the calls it holds and their cost percentiles in µs."""
    out: dict[str, dict[str, Any]] = {}
    for name, (lo, hi) in spans.items():
        values = sorted(c for s, c in zip(starts, costs, strict=True) if lo <= s < hi)
        out[name] = {
            "calls": len(values),
            "p50_us": percentile(values, 0.50),
            "p99_us": percentile(values, 0.99),
            "p99_9_us": percentile(values, 0.999),
            "max_us": (values[-1] / 1000) if values else float("nan"),
        }
    return out


class CoreProcess:
    """A Core process (this module's ``--core``) emitting into ``ingest`` at ``rate``, started warm.

    ``with CoreProcess(ingest, rate, out) as core:`` returns once it said ``ready`` and ran
    one unmeasured second; :meth:`finish` ends it and returns its summary line; leaving the
    block kills it if it is still running.  :meth:`samples` reads ``out`` afterwards.
    """

    def __init__(self, ingest: str, rate: int, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.core_cost", "--core", ingest, "--rate", str(rate), "--out", str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def __enter__(self) -> CoreProcess:
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.__exit__()
            raise RuntimeError("the Core process did not start")
        time.sleep(1.0)  # warm-up, not measured
        return self

    def finish(self) -> dict[str, Any]:
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        summary: dict[str, Any] = json.loads(self.proc.stdout.read().strip().splitlines()[-1])
        self.proc.wait(30)
        return summary

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def samples(self) -> tuple[array.array[int], array.array[int]]:
        """Each ``emit()``'s start and cost (ns), as the Core process wrote them."""
        raw = self.out.read_bytes()
        starts, costs = array.array("q"), array.array("q")
        half = len(raw) // 2
        starts.frombytes(raw[:half])
        costs.frombytes(raw[half:])
        return starts, costs


def drive(rate: int, phase_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="core-cost-") as tmp:
        workdir = Path(tmp)
        samples = workdir / "samples.bin"
        gw = Gatewayd(workdir)
        gw.start()
        try:
            with CoreProcess(gw.ingest, rate, samples) as core:
                bounds = [time.monotonic_ns()]
                time.sleep(phase_seconds)
                gw.signal(signal.SIGSTOP)
                bounds.append(time.monotonic_ns())
                time.sleep(phase_seconds)
                gw.signal(signal.SIGCONT)  # a stopped process dies of SIGKILL too, but say what we mean
                gw.kill()
                bounds.append(time.monotonic_ns())
                time.sleep(phase_seconds)
                gw.start()
                bounds.append(time.monotonic_ns())
                time.sleep(phase_seconds)
                bounds.append(time.monotonic_ns())
                summary = core.finish()
        finally:
            gw.stop()
        starts, costs = core.samples()
    phases = by_phase(starts, costs, {name: (bounds[i], bounds[i + 1]) for i, name in enumerate(PHASES)})
    base = phases["healthy"]["p99_9_us"]
    worst = max(p["p99_9_us"] for p in phases.values())
    return {
        "rate": rate,
        "phase_seconds": phase_seconds,
        "phases": phases,
        "raised": summary["raised"],
        "emitted": summary["emitted"],
        "dropped": summary["dropped"],
        "worst_p99_9_over_healthy": round(worst / base, 2) if base else None,
        "target_met": bool(base) and summary["raised"] == 0 and worst <= 2 * base,
    }


def table(result: dict[str, Any]) -> str:
    rows = [f"{'phase':<10} {'calls':>7} {'p50 µs':>8} {'p99 µs':>8} {'p99.9 µs':>9} {'max µs':>9}"]
    for name, p in result["phases"].items():
        figures = f"{p['p50_us']:>8.1f} {p['p99_us']:>8.1f} {p['p99_9_us']:>9.1f} {p['max_us']:>9.1f}"
        rows.append(f"{name:<10} {p['calls']:>7} {figures}")
    rows.append(
        f"emit() raised {result['raised']} times; worst p99.9 = {result['worst_p99_9_over_healthy']}× healthy "
        f"(target ≤ 2×: {'met' if result['target_met'] else 'NOT met'})"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.core_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=5000, help="events/s emitted by the Core process")
    parser.add_argument("--phase-seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--cpu-reps", type=int, default=3, help="repetitions of the CPU comparison (0: skip)")
    parser.add_argument("--cpu-seconds", type=float, default=5.0, help="measured window of each CPU run")
    parser.add_argument("--core", metavar="INGEST", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.core:
        core(args.core, args.rate, args.out)
        return {}
    result = drive(args.rate, args.phase_seconds)
    print(table(result))
    if args.cpu_reps:
        from bench import core_cpu

        result["cpu"] = core_cpu.main(["--reps", str(args.cpu_reps), "--seconds", str(args.cpu_seconds)])
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"core_cost-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
