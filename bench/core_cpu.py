"""Core's CPU: an ``emitter_sdk`` emitter against a bare pyzmq PUB loop, paced, same run.

    python -m bench.core_cpu [--rates 100 1000 5000] [--reps 3] [--seconds 5] [--ab DIR]

For each repetition and rate, two fresh processes send the same events at the same
paced rate to one healthy ``gatewayd`` (one after the other, order alternating
between repetitions):

- ``bare``: a pyzmq PUB socket; per event it builds the msgpack array
  ``[type, ts, source, entity, payload, producer, pseq]`` with msgspec and sends it;
- ``sdk``: ``Emitter.emit()`` with the same type, entity and payload.

Both run the same pacing loop (the events due so far, then ``sleep(0.5 ms)``, as
Core's loop in ``bench/core_cost.py``) and time each send/emit with
``perf_counter_ns``.  Process CPU (user + system, every thread: ZeroMQ's I/O thread
and the SDK's) comes from ``getrusage`` over the paced window only, after a 1 s
warm-up.  ``--ab DIR`` adds a third run per cell: the ``emitter_sdk`` package found in
``DIR`` (e.g. an extracted older commit: ``git archive REV emitter_sdk | tar -x -C DIR``).

Target (issue 16): SDK CPU ≤ 1.3× bare at every rate in every repetition, with
``emit()`` p99.9 ≤ 50 µs.  Bounded: about ``reps × rates × 2 × (seconds + 2)`` s.
"""

from __future__ import annotations

import argparse
import array
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RATIO_TARGET = 1.3
P99_9_TARGET_US = 50.0
WARMUP_S = 1.0


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def use_sdk_from(directory: str) -> None:
    """Import ``emitter_sdk`` from ``directory`` instead of the installed (editable) one."""
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, directory)


def child(kind: str, ingest: str, rate: int, seconds: float) -> dict[str, Any]:
    """Send ``rate`` events/s for warm-up + ``seconds``; CPU and per-call cost over the measured window."""
    payload = {"progress": 0, "message": "Indexing documents"}
    if kind == "sdk":
        from emitter_sdk import Emitter

        em = Emitter(ingest)
        if not em.wait_subscribed(10):
            raise SystemExit("sdk: the gateway never subscribed")

        def send(n: int) -> None:
            em.emit("task.progress", entity=("task", "bench"), payload=payload)

        def close() -> None:
            em.close()
    else:
        import secrets

        import zmq

        from emitter_sdk.wire import ENCODER, TimestampClock

        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sock = ctx.socket(zmq.PUB)
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.connect(ingest)
        clock, producer, encode = TimestampClock(), secrets.token_hex(4), ENCODER.encode

        def send(n: int) -> None:
            sock.send(encode(["task.progress", clock.now(), "core", ["task", "bench"], payload, producer, n]))

        def close() -> None:
            sock.close(linger=1000)
            ctx.term()

    costs = array.array("q")
    perf = time.perf_counter_ns
    begin, sent = time.monotonic(), 0
    measure_from, end = begin + WARMUP_S, begin + WARMUP_S + seconds
    cpu0 = wall0 = None
    while True:
        now = time.monotonic()
        if cpu0 is None and now >= measure_from:
            cpu0, wall0, first = cpu_seconds(), now, sent
        if now >= end:
            break
        due = int((now - begin) * rate)
        while sent < due:
            payload["progress"] = sent % 101
            t0 = perf()
            send(sent + 1)
            if cpu0 is not None:
                costs.append(perf() - t0)
            sent += 1
        time.sleep(0.0005)
    cpu = cpu_seconds() - cpu0  # type: ignore[operator]
    wall = time.monotonic() - wall0  # type: ignore[operator]
    close()
    values = sorted(costs)
    return {
        "kind": kind,
        "rate": rate,
        "events": sent - first,
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_pct": 100 * cpu / wall,
        "p50_us": values[len(values) // 2] / 1000,
        "p99_9_us": values[min(len(values) - 1, int(0.999 * len(values)))] / 1000,
        "max_us": values[-1] / 1000,
    }


def run_child(kind: str, ingest: str, rate: int, seconds: float, sdk_path: str | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.core_cpu", "--child", kind, "--ingest", ingest]
    if sdk_path:
        cmd += ["--sdk-path", sdk_path]
    out = subprocess.run(
        [*cmd, "--rates", str(rate), "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=seconds + 60,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def compare(ingest: str, rates: list[int], reps: int, seconds: float, ab: str | None = None) -> dict[str, Any]:
    """Every (rep, rate): bare and SDK runs, the ratio, and a verdict per rate over all reps."""
    rows = []
    for rep in range(reps):
        for rate in rates:
            order = ["bare", "sdk", *(["ab"] if ab else [])]
            if rep % 2:
                order.reverse()
            runs = {
                kind: run_child("sdk" if kind == "ab" else kind, ingest, rate, seconds, ab if kind == "ab" else None)
                for kind in order
            }
            bare, sdk = runs["bare"], runs["sdk"]
            row = {
                "rep": rep + 1,
                "rate": rate,
                "bare": bare,
                "sdk": sdk,
                "ratio": round(sdk["cpu_s"] / bare["cpu_s"], 2),
            }
            if ab:
                row["ab"] = runs["ab"]
                row["ab_ratio"] = round(runs["ab"]["cpu_s"] / bare["cpu_s"], 2)
            rows.append(row)
    verdicts = {}
    for rate in rates:
        mine = [r for r in rows if r["rate"] == rate]
        verdicts[str(rate)] = all(r["ratio"] <= RATIO_TARGET and r["sdk"]["p99_9_us"] <= P99_9_TARGET_US for r in mine)
    return {"seconds": seconds, "rows": rows, "target_met": verdicts}


def ab_figures(row: dict[str, Any]) -> str:
    ab = row["ab"]
    return f"   A/B SDK {ab['cpu_pct']:.2f} % ({row['ab_ratio']:.2f}×) p99.9 {ab['p99_9_us']:.1f}"


def table(result: dict[str, Any]) -> str:
    head = (
        f"{'rate':>6} {'rep':>3} {'bare CPU %':>10} {'SDK CPU %':>9} {'ratio':>6}"
        f" {'emit p50 µs':>11} {'p99.9 µs':>8} {'send p50 µs':>11} {'p99.9 µs':>8}"
    )
    lines = [head]
    for r in result["rows"]:
        bare, sdk = r["bare"], r["sdk"]
        lines.append(
            f"{r['rate']:>6} {r['rep']:>3} {bare['cpu_pct']:>10.2f} {sdk['cpu_pct']:>9.2f} {r['ratio']:>6.2f}"
            f" {sdk['p50_us']:>11.2f} {sdk['p99_9_us']:>8.1f} {bare['p50_us']:>11.2f} {bare['p99_9_us']:>8.1f}"
            + (ab_figures(r) if "ab" in r else "")
        )
    for rate, ok in result["target_met"].items():
        ratios = " / ".join(f"{r['ratio']:.2f}" for r in result["rows"] if str(r["rate"]) == rate)
        verdict = "met" if ok else "NOT met"
        lines.append(f"{rate} ev/s: SDK/bare CPU {ratios} (target ≤ {RATIO_TARGET}×, p99.9 ≤ 50 µs): {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.core_cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window of each run")
    parser.add_argument("--ingest", help="an existing gateway's ingest (else one is started)")
    parser.add_argument("--ab", metavar="DIR", help="also measure the emitter_sdk package in DIR")
    parser.add_argument("--child", choices=("bare", "sdk"), help=argparse.SUPPRESS)
    parser.add_argument("--sdk-path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.sdk_path:
            use_sdk_from(args.sdk_path)
        print(json.dumps(child(args.child, args.ingest, args.rates[0], args.seconds)), flush=True)
        return {}
    if args.ingest:
        result = compare(args.ingest, args.rates, args.reps, args.seconds, args.ab)
    else:
        import tempfile

        from bench.core_cost import Gatewayd

        with tempfile.TemporaryDirectory(prefix="core-cpu-") as tmp:
            gw = Gatewayd(Path(tmp))
            gw.start()
            try:
                result = compare(gw.ingest, args.rates, args.reps, args.seconds, args.ab)
            finally:
                gw.stop()
    print(table(result))
    return result


if __name__ == "__main__":
    main()
