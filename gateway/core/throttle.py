"""One log throttle for every noisy event: at most one line per key per interval, nothing lost from the counts.

Hostile or broken peers can cause the same log event thousands of times a
second (refused subscribers, denied emitters, rejected ingest messages).  A
:class:`LogThrottle` lets the first through, holds back the rest of the
interval and reports how many it held back on the next line.  Memory is one
entry per key; keys come from small fixed sets (reasons), never from peers.
Time is passed in (any clock, in seconds).
"""

from __future__ import annotations


class LogThrottle:
    """At most one log line per key per ``interval`` seconds; counts the ones held back."""

    __slots__ = ("_last", "interval")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        #: key → (time of its last line, lines held back since)
        self._last: dict[str, tuple[float, int]] = {}

    def allow(self, key: str, now: float) -> int | None:
        """None: hold this line back (counted).  Else log it: the number held back since the last one."""
        last, held = self._last.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._last[key] = (last, held + 1)
            return None
        self._last[key] = (now, 0)
        return held

    def due_in(self, key: str, now: float) -> float:
        """Seconds until a line for ``key`` may go out (0: now)."""
        last, _ = self._last.get(key, (float("-inf"), 0))
        return max(0.0, last + self.interval - now)

    def mark(self, key: str, now: float) -> None:
        """A line for ``key`` went out at ``now`` (for callers that sum what they hold back themselves)."""
        self._last[key] = (now, 0)
