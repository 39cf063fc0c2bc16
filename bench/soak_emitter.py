"""The soak's Core: one ``Emitter`` at a steady rate, with a burst at the start of every minute.

Events: ``task.progress`` for ``--entities`` tasks in turn, every 20th a
``task.completed``.  Prints the emitter's final ``stats`` as one JSON line.

    python -m bench.soak_emitter --ingest tcp://127.0.0.1:5556 --rate 100 --seconds 1200 --burst 1000
"""

from __future__ import annotations

import argparse
import json
import time

from emitter_sdk import Emitter


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ingest", required=True)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=1200.0)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--entities", type=int, default=50)
    args = parser.parse_args()
    n = 0

    def emit(em: Emitter) -> None:
        nonlocal n
        n += 1
        kind = "task.completed" if n % 20 == 0 else "task.progress"
        em.emit(kind, entity=("task", f"t{n % args.entities}"), payload={"n": n, "message": "soak"})

    with Emitter(args.ingest) as em:
        if not em.wait_subscribed(15):
            print(json.dumps({"error": "gateway never subscribed"}))
            return 1
        started = time.monotonic()
        next_burst = started
        tick = 1.0 / args.rate
        due = started
        while time.monotonic() < started + args.seconds:
            now = time.monotonic()
            if now >= next_burst:
                for _ in range(args.burst):
                    emit(em)
                next_burst += 60.0
            if now >= due:
                emit(em)
                due += tick
            else:
                time.sleep(min(due - now, 0.01))
        em.flush(10)
        print(json.dumps(final_stats(em)))
    return 0


def final_stats(em: Emitter) -> dict[str, int | str]:
    stats = em.stats
    return {"emitted": stats.emitted, "dropped": stats.dropped, "invalid": stats.invalid, "producer": stats.producer}


if __name__ == "__main__":
    raise SystemExit(main())
