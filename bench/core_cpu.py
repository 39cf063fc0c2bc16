"""Core's CPU: an ``emitter_sdk`` emitter against a bare pyzmq PUB loop, paced, same run.

    python -m bench.core_cpu [--rates 100 1000 5000] [--reps 3] [--seconds 5] [--ab DIR]

For each repetition and rate, two processes send the same events at the same paced
rate to one healthy ``gatewayd``, taking turns: both start and warm up (1 s each),
then the measured window is cut into 1 s segments that alternate between them (order
reversed every other segment; each after a 0.2 s lead-in not measured), so a change
in the machine's load meets both alike:

- ``bare``: a pyzmq PUB socket; per event it builds the msgpack array
  ``[type, ts, source, entity, payload, producer, pseq]`` with msgspec and sends it;
- ``sdk``: ``Emitter.emit()`` with the same type, entity and payload.

Both run the same pacing loop (the events due so far, then ``sleep(0.5 ms)``, as
Core's loop in ``bench/core_cost.py``) and time each send/emit with
``perf_counter_ns``; the bare loop also times, per event, an empty section (two clock
reads) and its stamp + encode alone: the floor of any few µs of Python work right
after a sleep on this machine.  The emit() p99.9 verdict names that floor: where the
bare stamp + encode's own p99.9 is above the target, the target is not met and not
reachable by any emit() on this machine (said so, with the figure).  Process CPU (user +
system, every thread: ZeroMQ's I/O thread and the SDK's) comes from ``getrusage``
over the measured segments only; a process waiting for its turn is idle (blocked on
its stdin; the SDK's thread wakes every 0.1 s).  Context switches per event come
from ``getrusage`` too.  ``--ab DIR`` adds a third process per cell: the
``emitter_sdk`` package found in ``DIR`` (e.g. an extracted older commit:
``git archive REV emitter_sdk | tar -x -C DIR``).

Target (issue 16): SDK CPU ≤ 1.3× bare at every rate in every repetition, with
``emit()`` p99.9 ≤ 50 µs.  Bounded: about ``reps × rates × 2 × (seconds + 2)`` s (× 3 with ``--ab``).
"""

from __future__ import annotations

import argparse
import array
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.core_cpu_report import P99_9_TARGET_US, RATIO_TARGET, table

ROOT = Path(__file__).resolve().parent.parent
WARMUP_S = 1.0
#: The measured window is cut into segments of this length, alternating between the processes.
SEGMENT_S = 1.0
#: Before each measured segment the process paces this long unmeasured (it was idle meanwhile).
LEAD_IN_S = 0.2


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def context_switches() -> int:
    """Voluntary + involuntary context switches of every thread of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_nvcsw + ru.ru_nivcsw


def percentile_us(values: list[int], q: float) -> float:
    """The ``q`` quantile of sorted ns ``values``, in µs."""
    return values[min(len(values) - 1, int(q * len(values)))] / 1000


def use_sdk_from(directory: str) -> None:
    """Import ``emitter_sdk`` from ``directory`` instead of the installed (editable) one."""
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, directory)


def child(kind: str, ingest: str, rate: int, segment_s: float) -> dict[str, Any]:
    """Serve the parent one paced segment per command (stdin); at EOF, CPU and per-call cost of the measured ones."""
    payload = {"progress": 0, "message": "Indexing documents"}
    perf = time.perf_counter_ns
    encodes = array.array("q")  # bare: the stamp + encode alone, the floor of any Python work after a sleep
    empties = array.array("q")  # bare: an empty timed section (two clock reads), paced alike
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
            t0 = perf()
            empties.append(perf() - t0)
            t0 = perf()
            data = encode(["task.progress", clock.now(), "core", ["task", "bench"], payload, producer, n])
            encodes.append(perf() - t0)
            sock.send(data)

        def close() -> None:
            sock.close(linger=1000)
            ctx.term()

    costs = array.array("q")
    cpu = wall = 0.0
    sent = events = switches = 0
    print("ready", flush=True)
    while command := sys.stdin.readline().strip():  # "warm": a segment not measured; "go": a measured one
        measured = command == "go"
        if measured:  # back from idling: a lead-in first, so each segment starts as warm as a steady loop
            sent = pace(send, payload, rate, LEAD_IN_S, sent, None)
        encoded, emptied = len(encodes), len(empties)
        cpu0, csw0, wall0, first = cpu_seconds(), context_switches(), time.monotonic(), sent
        sent = pace(send, payload, rate, segment_s if measured else WARMUP_S, sent, costs if measured else None)
        if measured:
            cpu += cpu_seconds() - cpu0
            wall += time.monotonic() - wall0
            switches += context_switches() - csw0
            events += sent - first
        else:
            del encodes[encoded:], empties[emptied:]
        print("done", flush=True)
    close()
    values = sorted(costs)
    return {
        "kind": kind,
        "rate": rate,
        "events": events,
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_pct": 100 * cpu / wall,
        "csw_per_event": switches / max(1, events),
        "p50_us": percentile_us(values, 0.5),
        "p99_us": percentile_us(values, 0.99),
        "p99_9_us": percentile_us(values, 0.999),
        "max_us": values[-1] / 1000,
        **(floor_percentiles(encodes, empties) if encodes else {}),
    }


def pace(
    send: Callable[[int], None],
    payload: dict[str, Any],
    rate: int,
    seconds: float,
    sent: int,
    costs: array.array[int] | None,
) -> int:
    """Core's loop for ``seconds``: the events due so far, then ``sleep(0.5 ms)``; each call timed into ``costs``."""
    perf, begin, n = time.perf_counter_ns, time.monotonic(), 0
    end = begin + seconds
    while (now := time.monotonic()) < end:
        due = int((now - begin) * rate)
        while n < due:
            payload["progress"] = (sent + n) % 101
            t0 = perf()
            send(sent + n + 1)
            if costs is not None:
                costs.append(perf() - t0)
            n += 1
        time.sleep(0.0005)
    return sent + n


def floor_percentiles(encodes: array.array[int], empties: array.array[int]) -> dict[str, float]:
    """The bare loop's floor figures: its stamp + encode alone and an empty section, p99 / p99.9 in µs."""
    values, empty = sorted(encodes), sorted(empties)
    return {
        "encode_p99_us": percentile_us(values, 0.99),
        "encode_p99_9_us": percentile_us(values, 0.999),
        "empty_p99_us": percentile_us(empty, 0.99),
        "empty_p99_9_us": percentile_us(empty, 0.999),
    }


def start_child(kind: str, ingest: str, rate: int, sdk_path: str | None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "bench.core_cpu", "--child", kind, "--ingest", ingest, "--rates", str(rate)]
    if sdk_path:
        cmd += ["--sdk-path", sdk_path]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if proc.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
        raise SystemExit(f"{kind}: the child did not start")
    return proc


def tell(proc: subprocess.Popen[str], command: str) -> None:
    """Have a child run one segment; returns when it is done (the other children idle meanwhile)."""
    proc.stdin.write(command + "\n")  # type: ignore[union-attr]
    proc.stdin.flush()  # type: ignore[union-attr]
    if proc.stdout.readline().strip() != "done":  # type: ignore[union-attr]
        raise SystemExit(f"child {proc.args!r} died")


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=60)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def interleaved(ingest: str, rate: int, seconds: float, rep: int, ab: str | None) -> dict[str, dict[str, Any]]:
    """One cell: every kind's process started, warmed up, then measured in alternating segments."""
    kinds = ["bare", "sdk", *(["ab"] if ab else [])]
    procs = {k: start_child("sdk" if k == "ab" else k, ingest, rate, ab if k == "ab" else None) for k in kinds}
    try:
        for kind in kinds:
            tell(procs[kind], "warm")
        for segment in range(max(1, round(seconds / SEGMENT_S))):
            for kind in kinds if (segment + rep) % 2 == 0 else kinds[::-1]:
                tell(procs[kind], "go")
        return {kind: finish(proc) for kind, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def compare(ingest: str, rates: list[int], reps: int, seconds: float, ab: str | None = None) -> dict[str, Any]:
    """Every (rep, rate): bare and SDK runs, the ratio, and a verdict per rate over all reps."""
    rows = []
    for rep in range(reps):
        for rate in rates:
            load1 = round(os.getloadavg()[0], 2)  # the machine's load as this cell starts
            runs = interleaved(ingest, rate, seconds, rep, ab)
            bare, sdk = runs["bare"], runs["sdk"]
            row = {
                "rep": rep + 1,
                "rate": rate,
                "load1": load1,
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
    return {"seconds": seconds, "segment_s": SEGMENT_S, "rows": rows, "target_met": verdicts}


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
        print(json.dumps(child(args.child, args.ingest, args.rates[0], SEGMENT_S)), flush=True)
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
