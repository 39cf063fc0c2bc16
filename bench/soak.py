"""``make soak``: a long run that makes slow leaks show (≤ 30 min, loopback only).

One ``gatewayd`` (default options, ``--state-dir`` off), one emitter process
(``bench/soak_emitter.py``: a steady rate with a burst every minute), and
``--clients`` virtual clients in this process, each a loop of WebSocket sessions
that at random filter (none, ``types=``, ``entity=``), resume with
``since``/``epoch`` from their own cursor, read for a while, stall (stop
reading, so the gateway may close them 1013), drop (abort the socket) or close
politely.  A SIGHUP every ``--sighup-every`` seconds.  One more client, the
witness, reads everything and records each seq's type and entity.

Every minute: gateway RSS, open fds, the worst event-loop lag the gateway
reported in that minute (``/status`` ``health.loop_lag_recent_max_s``, sampled
every 5 s), clients connected, events accepted, sessions ended and invariant
violations found in them.  At the end, for every client: the seqs it was sent
plus its range gaps cover every seq matching its filter from its first start to
its last cursor, with no seq twice and none outside its filter; and for the
emitter: emitted = delivered to the witness + upstream missed + rejected +
dropped by the SDK.

Writes ``bench/results/soak-<UTC>.json`` and ``…-soak.png`` (RSS, fds and loop
lag per minute, drawn on a canvas in Debian's Chromium like ``bench/charts.py``)
and prints the Markdown table for docs/benchmarks.md.

    python -m bench.soak [--minutes 20] [--clients 1000] [--rate 100] [--env K=V ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.run import RESULTS, ROOT, Gateway, rss_kib
from bench.soak_chart import write_chart

ENTITIES = 50
STALL_CLOSE = 1013


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Log:
    """What one virtual client was sent over all its sessions."""

    query: str
    kind: str  # "all", "types", "entity"
    arg: str
    start: int | None = None  # the head when it first joined: it accounts for seqs after this
    cursor: int = 0
    epoch: str | None = None
    seqs: list[int] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    sessions: int = 0
    closes: dict[str, int] = field(default_factory=dict)
    order_errors: int = 0

    def matches(self, kind_type: tuple[str, str | None]) -> bool:
        event_type, entity = kind_type
        if self.kind == "types":
            return event_type == self.arg
        if self.kind == "entity":
            return entity == self.arg
        return True


def new_log(rng: random.Random, i: int) -> Log:
    roll = rng.random()
    if roll < 0.1:
        return Log("", "all", "")
    if roll < 0.55:
        return Log("types=task.completed", "types", "task.completed")
    eid = f"task:t{i % ENTITIES}"
    return Log(f"entity={eid}", "entity", eid)


def take(log: Log, msg: dict[str, Any]) -> None:
    """Account for one message from the gateway."""
    kind = msg.get("type", "")
    if kind == "gateway.hello":
        if log.start is None:
            log.start = log.cursor = msg["seq"]
        log.epoch = msg["epoch"]
    elif kind == "gateway.gap":
        if "to" in msg:
            if msg["from"] <= log.cursor:
                log.order_errors += 1
            log.gaps.append((msg["from"], msg["to"]))
            log.cursor = max(log.cursor, msg["to"])
    elif "seq" in msg and not kind.startswith("gateway."):
        if msg["seq"] <= log.cursor:
            log.order_errors += 1
        log.seqs.append(msg["seq"])
        log.cursor = msg["seq"]


async def session(http: aiohttp.ClientSession, url: str, log: Log, rng: random.Random, stop_at: float) -> None:
    query = "&".join(q for q in (log.query, f"since={log.cursor}&epoch={log.epoch}" if log.epoch else "") if q)
    behaviour = rng.choices(["read", "stall", "drop", "polite"], weights=[4, 1, 2, 3])[0]
    length = rng.uniform(30, 90) if behaviour == "stall" else rng.expovariate(1 / 20)
    length = min(length, stop_at - time.monotonic())
    async with http.ws_connect(f"{url}?{query}", max_msg_size=0, heartbeat=None, autoping=True) as ws:
        log.sessions += 1
        deadline = time.monotonic() + max(0.5, length)
        stalled = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if behaviour == "stall" and not stalled and left < length / 2:
                stalled = True
                await asyncio.sleep(min(left, rng.uniform(5, 60)))  # reads nothing meanwhile: maybe closed 1013
                continue
            try:  # not receive(timeout=): aiohttp restarts that timeout at every ping it answers
                async with asyncio.timeout(left):
                    msg = await ws.receive()
            except TimeoutError:
                break
            if msg.type == aiohttp.WSMsgType.TEXT:
                take(log, json.loads(msg.data))
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                code = str(ws.close_code)
                log.closes[code] = log.closes.get(code, 0) + 1
                return
            elif msg.type == aiohttp.WSMsgType.ERROR:
                log.closes["error"] = log.closes.get("error", 0) + 1
                return
        # Drain what arrived up to now so the cursor is exact, then leave as chosen.
        while True:
            try:
                async with asyncio.timeout(0.2):
                    msg = await ws.receive()
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            take(log, json.loads(msg.data))
        if behaviour == "drop":
            conn = ws._conn  # noqa: SLF001  # the only way to vanish without a close frame
            if conn is not None and conn.transport is not None:
                conn.transport.abort()
            log.closes["dropped"] = log.closes.get("dropped", 0) + 1
        else:
            await ws.close()
            log.closes["polite"] = log.closes.get("polite", 0) + 1


async def client(http: aiohttp.ClientSession, url: str, log: Log, seed: int, stop_at: float) -> None:
    rng = random.Random(seed)
    await asyncio.sleep(rng.uniform(0, 10))  # spread the first handshakes
    while time.monotonic() < stop_at:
        try:  # bounded whatever a session awaits: the run ends on time
            await asyncio.wait_for(session(http, url, log, rng, stop_at), max(1.0, stop_at - time.monotonic()) + 20)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            name = f"error:{type(exc).__name__}"
            log.closes[name] = log.closes.get(name, 0) + 1
        await asyncio.sleep(rng.uniform(0.1, 3.0))


async def witness(http: aiohttp.ClientSession, url: str, seen: dict[int, tuple[str, str | None]], log: Log) -> None:
    """Reads every event from seq 1 on (resuming if ever closed); records what each seq was."""
    while True:
        query = f"since={log.cursor}" + (f"&epoch={log.epoch}" if log.epoch else "")
        try:
            async with http.ws_connect(f"{url}?{query}", max_msg_size=0) as ws:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    data = json.loads(msg.data)
                    take(log, data)
                    if "seq" in data and not data["type"].startswith("gateway."):
                        ent = data["entity"]
                        seen[data["seq"]] = (data["type"], None if ent is None else f"{ent['kind']}:{ent['id']}")
        except (aiohttp.ClientError, OSError):
            pass
        log.sessions += 1
        await asyncio.sleep(0.5)


def check(log: Log, seen: dict[int, tuple[str, str | None]]) -> dict[str, int]:
    """The SPEC invariant for one client over its whole life; counts of what is wrong (all 0 when it holds)."""
    if log.start is None:
        return {"never_joined": 1}
    delivered = set(log.seqs)
    covered: set[int] = set()
    for first, last in log.gaps:
        covered.update(range(first, last + 1))
    missing = unknown = outside = 0
    for seq in range(log.start + 1, log.cursor + 1):
        if seq not in seen:
            unknown += 1
            continue
        match = log.matches(seen[seq])
        if seq in delivered and not match:
            outside += 1
        if match and seq not in delivered and seq not in covered:
            missing += 1
    return {
        "missing": missing,
        "duplicates": len(log.seqs) - len(delivered),
        "outside_filter": outside,
        "order": log.order_errors,
        "unknown_to_witness": unknown,
    }


async def sample_loop(gw: Gateway, minutes: int, samples: list[dict[str, Any]], logs: list[Log]) -> None:
    started = time.monotonic()
    lag = 0.0
    for minute in range(1, minutes + 1):
        while time.monotonic() < started + minute * 60:
            await asyncio.sleep(5)
            try:
                status = await asyncio.to_thread(gw.status)
                lag = max(lag, status["health"]["loop_lag_recent_max_s"])
            except OSError:
                pass
        status = await asyncio.to_thread(gw.status)
        row = {
            "minute": minute,
            "rss_mib": round(rss_kib(gw.proc.pid) / 1024, 1),
            "fds": fds(gw.proc.pid),
            "loop_lag_max_ms": round(lag * 1000, 1),
            "clients": status["clients"]["count"],
            "accepted": status["events"]["accepted"],
            "sessions": sum(log.sessions for log in logs),
            "slow_disconnects": status["slow_client_disconnects"],
        }
        samples.append(row)
        print(json.dumps(row), flush=True)
        lag = 0.0


async def soak(args: argparse.Namespace, gw: Gateway, workdir: Path) -> dict[str, Any]:
    emitter = subprocess.Popen(
        [
            *(sys.executable, "-m", "bench.soak_emitter", "--ingest", gw.ingest, "--rate", str(args.rate)),
            *("--seconds", str(args.minutes * 60), "--burst", str(args.burst), "--entities", str(ENTITIES)),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    stop_at = time.monotonic() + args.minutes * 60
    seen: dict[int, tuple[str, str | None]] = {}
    wlog = Log("", "all", "")
    logs = [new_log(random.Random(args.seed + i), i) for i in range(args.clients)]
    samples: list[dict[str, Any]] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        witness_task = asyncio.create_task(witness(http, gw.ws_url, seen, wlog))
        tasks = [
            asyncio.create_task(client(http, gw.ws_url, log, args.seed + i, stop_at)) for i, log in enumerate(logs)
        ]
        sampler = asyncio.create_task(sample_loop(gw, args.minutes, samples, logs))

        async def sighups() -> None:
            while True:
                await asyncio.sleep(args.sighup_every)
                gw.proc.send_signal(signal.SIGHUP)

        hup = asyncio.create_task(sighups())
        await sampler
        _, late = await asyncio.wait(tasks, timeout=60)
        for task in late:  # cannot happen with the bound above; never let a stuck client hold the run
            task.cancel()
        hup.cancel()
        out, _ = await asyncio.to_thread(emitter.communicate)
        emitted = json.loads(out.strip().splitlines()[-1])
        final = await asyncio.to_thread(gw.status)
        deadline = time.monotonic() + 30
        while wlog.cursor < final["seq"] and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        witness_task.cancel()
    checks = [check(log, seen) for log in logs]
    totals = {k: sum(c.get(k, 0) for c in checks) for k in ("missing", "duplicates", "outside_filter", "order")}
    totals["never_joined"] = sum(c.get("never_joined", 0) for c in checks)
    totals["clients_failing"] = sum(1 for c in checks if any(v for k, v in c.items() if k != "unknown_to_witness"))
    totals["unknown_to_witness"] = sum(c.get("unknown_to_witness", 0) for c in checks)
    rejected = final["events"]["rejected"]
    upstream = final["upstream_gaps"]["missed"]
    witness_events = sum(1 for s in seen if s > 0)
    closes: dict[str, int] = {}
    for log in logs:
        for k, v in log.closes.items():
            closes[k] = closes.get(k, 0) + v
    return {
        "samples": samples,
        "invariant": totals,
        "emitter": emitted,
        "producer_invariant": {
            "emitted": emitted["emitted"],
            "delivered_to_witness": witness_events,
            "upstream_missed": upstream,
            "rejected": rejected,
            "sdk_dropped": emitted["dropped"],
            "sdk_invalid": emitted["invalid"],
            "holds": emitted["emitted"] == witness_events + upstream + rejected + emitted["dropped"],
        },
        "witness_sessions": wlog.sessions,
        "closes": closes,
        "sessions": sum(log.sessions for log in logs),
        "final_status": {k: final[k] for k in ("seq", "events", "upstream_gaps", "slow_client_disconnects")},
    }


def table(result: dict[str, Any]) -> str:
    rows = ["| minute | RSS MiB | fds | loop lag max ms | clients | events accepted | sessions |", "| ---" * 7 + " |"]
    for s in result["samples"]:
        rows.append(
            f"| {s['minute']} | {s['rss_mib']} | {s['fds']} | {s['loop_lag_max_ms']} | {s['clients']} "
            f"| {s['accepted']} | {s['sessions']} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=int(os.environ.get("SOAK_MINUTES", "20")))
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="steady events/s")
    parser.add_argument("--burst", type=int, default=1000, help="events in the burst at the start of each minute")
    parser.add_argument("--sighup-every", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--env", action="append", default=[], help="K=V for gatewayd's environment (A/B runs)")
    parser.add_argument("--name", default="soak")
    args = parser.parse_args()
    for kv in args.env:
        key, _, value = kv.partition("=")
        os.environ[key] = value
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp:
        gw = Gateway(Path(tmp))
        try:
            result = asyncio.run(soak(args, gw, Path(tmp)))
        finally:
            gw.stop()
    result["args"] = vars(args)
    warm = [s["rss_mib"] for s in result["samples"] if s["minute"] >= 5]
    if len(warm) >= 2:
        result["rss_growth_after_warmup_pct"] = round(100 * (warm[-1] - warm[0]) / warm[0], 2)
    stem = RESULTS / f"{args.name}-{stamp}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    chart = write_chart(result["samples"], stem.with_name(stem.name + ".png"), args.name)
    print(table(result))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    print(f"wrote {stem.with_suffix('.json')} and {chart}")
    inv = result["invariant"]
    ok = not any(inv[k] for k in ("missing", "duplicates", "outside_filter", "order", "clients_failing"))
    return 0 if ok and result["producer_invariant"]["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
