"""A client that completes the handshake and never reads, while 50,000 1 KiB events flow.

For each ``--slow-client`` policy, with a real gatewayd, a real emitter process and
real sockets: two ordinary readers (separate processes) receive every event in
order; the gateway's peak RSS (``VmHWM``) stays within ``RSS_BOUND`` of what it
was before the flood; the stalled client (a raw socket with a small receive
buffer that stops reading after ``gateway.hello``) ends as its policy says —
``disconnect``: its stream stops without a hole and it is closed with 1013, and it
resumes from the ring; ``drop-oldest``: still connected, the hole reported as
``slow_client`` gaps; ``coalesce``: superseded events reported as ``slow_client``
gaps and the newest event of every entity delivered — with the SPEC invariant
checked on everything it finally reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import Gateway, run_python, wait_for
from tests.e2e.test_data_path import emit_script
from tests.rawws import RawWs, assert_covers

EVENTS = 50_000
ENTITIES = 16
RATE = 10_000  # events/s from the emitter: fast, but paced so ZeroMQ's queues stay short
#: The bound on the gateway's memory growth stated by the issue and held here: the
#: ring (10,000 × ~1 KiB events, each kept as JSON and as a frame) plus socket buffers.
RSS_BOUND = 64 << 20

READER = textwrap.dedent(
    """
    import json, sys
    from websockets.sync.client import connect
    with connect(sys.argv[1], max_size=None) as ws:
        start = json.loads(ws.recv(timeout=10))["seq"]
        print("ready", flush=True)
        seqs, order = [], []
        while len(seqs) < int(sys.argv[2]):
            m = json.loads(ws.recv(timeout=60))
            seqs.append(m["seq"])
            order.append(m["payload"]["i"])
    print(json.dumps({"start": start, "seqs_ok": seqs == list(range(start + 1, start + 1 + len(seqs))),
                      "order_ok": order == sorted(order) and len(set(order)) == len(order), "n": len(seqs)}))
    """
)

FLOOD = f"""
blob = "x" * 1000
start = time.monotonic()
for i in range({EVENTS}):
    em.emit("task.progress", entity=("task", f"t{{i % {ENTITIES}}}"), payload={{"i": i, "blob": blob}})
    if i % 200 == 199:
        time.sleep(max(0, start + (i + 1) / {RATE} - time.monotonic()))
"""


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def start_reader(gateway: Gateway) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", READER, gateway.ws_url, str(EVENTS)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.timeout(150)
@pytest.mark.parametrize("policy", ["disconnect", "drop-oldest", "coalesce"])
def test_a_client_that_never_reads_costs_the_others_nothing(gateway_factory, policy: str) -> None:
    # --close-timeout: the kicked client gets a minute to read up to its close frame, so the
    # test can read it after the flood; --ping-interval 0: only the policy ends this client;
    # a queue bound of 8,000 events (0.8 s of flood) spares the readers a hiccup of a loaded CI.
    gateway = gateway_factory(
        "--slow-client",
        policy,
        "--ping-interval",
        "0",
        "--close-timeout",
        "60",
        "--client-queue-events",
        "8000",
        "--client-queue-bytes",
        str(16 << 20),
    )
    slow = RawWs(gateway.ws_url, rcvbuf=64 << 10)
    hello = slow.read_until(lambda m: len(m) >= 1)[0]
    assert hello["type"] == "gateway.hello" and hello["seq"] == 0
    readers = [start_reader(gateway), start_reader(gateway)]
    baseline = vm_kib(gateway.pid, "VmRSS") << 10

    flood = run_python(emit_script(gateway.ingest, FLOOD), timeout=120)
    assert flood.returncode == 0, flood.stderr
    wait_for(lambda: gateway.status()["seq"] == EVENTS, 60, "every event sequenced")
    results = [json.loads(r.communicate(timeout=60)[0]) for r in readers]
    peak = vm_kib(gateway.pid, "VmHWM") << 10

    for result in results:  # the ordinary readers lost nothing, in order
        assert result == {"start": 0, "seqs_ok": True, "order_ok": True, "n": EVENTS}
    assert peak - baseline <= RSS_BOUND, f"RSS grew {(peak - baseline) >> 20} MiB"
    status = gateway.status()

    if policy == "disconnect":
        assert status["slow_client_disconnects"] == 1
        msgs = slow.read_to_end(60)
        assert slow.close_code == 1013
        seqs = assert_covers(msgs[1:], 0, max(m.get("seq", 0) for m in msgs[1:]))
        assert 0 < len(seqs) < EVENTS
        resumed = RawWs(gateway.ws_url + f"?since={seqs[-1]}&epoch={hello['epoch']}")
        rest = resumed.read_until(lambda m: m and m[-1].get("seq") == EVENTS and m[-1]["type"] == "task.progress")
        assert_covers(rest[1:], seqs[-1], EVENTS)  # its resume from the ring: an evicted gap, then the ring
        resumed.close()
    else:
        assert status["slow_client_disconnects"] == 0
        wait_for(lambda: gateway.status()["clients"]["count"] == 1, 10, "only the slow client left")
        msgs = slow.read_until(
            lambda m: (
                any(x.get("seq") == EVENTS and x["type"] == "task.progress" for x in m)
                or any(x.get("type") == "gateway.gap" and x.get("to") == EVENTS for x in m)
            ),
            60,
        )
        seqs = assert_covers(msgs[1:], 0, EVENTS)
        gaps = [m for m in msgs if m.get("reason") == "slow_client"]
        assert gaps and len(seqs) + sum(g["to"] - g["from"] + 1 for g in gaps) == EVENTS
        assert slow.close_code is None and not slow.eof, "the slow client stays connected"
        status = gateway.status()
        if policy == "coalesce":
            assert status["drops"]["coalesce"] > 0
            newest = {f"t{i % ENTITIES}": i + 1 for i in range(EVENTS - ENTITIES, EVENTS)}  # seq = i + 1
            last_seen = {m["entity"]["id"]: m["seq"] for m in msgs if m.get("type") == "task.progress"}
            assert last_seen == newest, "the newest event of every entity is delivered"
        else:
            assert status["drops"]["drop-oldest"] == EVENTS - len(seqs)
        slow.close()
