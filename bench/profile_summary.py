"""Summarise a py-spy ``--format raw`` profile: the top functions by own and total samples.

    python -m bench.profile_summary /tmp/prof/fanout-n1000-r50.txt [--top 25]

Idle samples (the event loop waiting in ``select``/``epoll``) are reported apart, so the
percentages are of the time the gateway was busy.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

IDLE = re.compile(r"\b(select|poll|epoll_wait|_run_once \(uvloop|run_forever)\b")
FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:)]+)(?::\d+)?\)$")


def short(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m['func']} ({path})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    busy = idle = 0
    for line in a.profile.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        leaf = frames[-1]
        if IDLE.search(leaf) or leaf.startswith("select ("):
            idle += count
            continue
        busy += count
        own[leaf] += count
        for f in set(frames):
            total[f] += count
    print(f"samples: busy {busy}, idle {idle} ({100 * busy / max(1, busy + idle):.0f}% busy)")
    print(f"\n{'own %':>6}  function")
    for f, c in own.most_common(a.top):
        print(f"{100 * c / max(1, busy):6.1f}  {f}")
    print(f"\n{'total %':>7}  function")
    for f, c in total.most_common(a.top):
        print(f"{100 * c / max(1, busy):7.1f}  {f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
