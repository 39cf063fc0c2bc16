"""The benchmark's Core: one process publishing through ``emitter_sdk`` for a bounded time.

    python -m bench.publisher --ingest tcp://127.0.0.1:P --rate 1000 --duration 10
    python -m bench.publisher --ingest ... --rate 0 --progress FILE --inflight 1000

``--ingest`` may name several endpoints, comma-separated (cluster nodes: each event to each).

``--rate R`` paces R events/s (open loop, catching up when late).  ``--rate 0`` emits
as fast as the system takes them: with ``--progress`` (the load client's lowest
per-client event count, a float64 in that file) at most ``--inflight`` events are
ahead of the slowest client; with ``--status URL`` (no clients: the ingest
benchmark) at most ``--inflight`` events are ahead of the gateway's ``accepted``
counter.  Either way the backlog is bounded, so nothing is dropped anywhere and
"accepted" means delivered, not buffered.  Each event's payload carries ``t_us``
(µs since the epoch at ``emit()``), which the load client turns into latency.
Prints one JSON line: queued, dropped, elapsed, rate, own CPU.
"""

from __future__ import annotations

import argparse
import http.client
import json
import mmap
import os
import resource
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable

from emitter_sdk import Emitter

MESSAGE = "Indexing documents"


def progress_reader(path: str) -> Callable[[], float]:
    fd = os.open(path, os.O_RDONLY)
    mm = mmap.mmap(fd, 8, access=mmap.ACCESS_READ)
    os.close(fd)
    return lambda: float(struct.unpack_from("<d", mm, 0)[0])


def status_reader(url: str) -> Callable[[], float]:
    """The gateway's accepted count, polled every 20 ms by a background thread.

    One keep-alive connection, and a period far below the time the gateway needs to
    drain ``--inflight`` events, so the measuring costs the gateway little CPU.
    """
    last = [0.0]
    parts = urllib.parse.urlsplit(url)

    def poll() -> None:
        conn = http.client.HTTPConnection(parts.netloc, timeout=5)
        while True:
            conn.request("GET", parts.path)
            last[0] = float(json.loads(conn.getresponse().read())["events"]["accepted"])
            time.sleep(0.02)

    threading.Thread(target=poll, daemon=True).start()
    return lambda: last[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ingest", required=True)
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--progress", default=None)
    ap.add_argument("--status", default=None)
    ap.add_argument("--inflight", type=int, default=1000)
    a = ap.parse_args()

    done: Callable[[], float] | None = None
    if a.rate == 0 and a.progress:
        done = progress_reader(a.progress)
    elif a.rate == 0 and a.status:
        done = status_reader(a.status)
    em = Emitter(a.ingest.split(","), max_queue=1_000_000, resend_events=1)
    if not em.wait_subscribed(15):
        print(json.dumps({"error": "gateway never subscribed"}), flush=True)
        return 1
    emit = em.emit
    entity = ("task", "t1")
    sent = 0
    waits = 0
    t0 = time.perf_counter()
    end = t0 + a.duration
    start_us = time.time_ns() // 1000
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if a.rate:
            due = t0 + sent / a.rate
            if now < due:
                time.sleep(min(due - now, end - now))
                continue
        elif done is not None and sent - done() >= a.inflight:
            waits += 1
            time.sleep(0.0002)
            continue
        # A small batch between checks keeps the loop's own overhead off the emit path.
        for _ in range(1 if a.rate else 16):
            if emit(
                "task.progress",
                entity=entity,
                payload={"progress": 42, "message": MESSAGE, "t_us": time.time_ns() // 1000},
            ):
                sent += 1
    elapsed = time.perf_counter() - t0
    em.flush(10)
    stats = em.stats
    em.close()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "queued": stats.queued,
        "dropped": stats.dropped,
        "elapsed_s": elapsed,
        "start_us": start_us,
        "eps": stats.queued / elapsed,
        "flow_waits": waits,
        "cpu_s": ru.ru_utime + ru.ru_stime,
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
