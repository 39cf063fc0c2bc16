"""Producer tracking: which events are new, duplicates, or follow an upstream loss.  Pure.

Each emitter stamps ``(producer, pseq)`` with ``pseq`` = 1, 2, 3 … for every
event it queued.  :class:`ProducerTracker` keeps each producer's highest
accepted ``pseq``:

- ``pseq <= last``: a duplicate (an emitter re-send after a reconnect) or a
  straggler behind a gap already reported: dropped and counted, never delivered
  twice;
- ``pseq == last + 1``: in order;
- ``pseq > last + 1``: ``pseq - last - 1`` events were lost between that emitter
  and the gateway (an upstream gap), reported once.

The first event of a producer the gateway has never seen sets its baseline (a
stateless gateway cannot know what a producer sent before it started).  A
producer that restarts gets a new id and is a new producer, not a gap.

Memory is bounded: at most ``max_producers`` are tracked; beyond that the least
recently seen is forgotten (it would be re-baselined if it came back).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class ProducerState:
    last_pseq: int
    last_seen: float
    accepted: int = 0
    duplicates: int = 0
    missed: int = 0


class ProducerTracker:
    """Highest accepted ``pseq`` per producer, in least-recently-seen order."""

    def __init__(self, max_producers: int = 10_000) -> None:
        self.max_producers = max_producers
        self._producers: OrderedDict[str, ProducerState] = OrderedDict()

    def admit(self, producer: str, pseq: int, now: float) -> int:
        """Record one event; returns the events missed before it (≥ 0) or -1 for a duplicate."""
        state = self._producers.get(producer)
        if state is None:
            state = self._producers[producer] = ProducerState(last_pseq=pseq - 1, last_seen=now)
            if len(self._producers) > self.max_producers:
                self._producers.popitem(last=False)
        else:
            self._producers.move_to_end(producer)
        state.last_seen = now
        if pseq <= state.last_pseq:
            state.duplicates += 1
            return -1
        missed = pseq - state.last_pseq - 1
        state.missed += missed
        state.accepted += 1
        state.last_pseq = pseq
        return missed

    def restore(self, producer: str, last_pseq: int, last_seen: float) -> None:
        """Raise a producer's position to ``last_pseq`` (from the state log at start).

        Never lowers it, so restoring the same history twice or out of order is harmless.
        """
        state = self._producers.get(producer)
        if state is None:
            self._producers[producer] = ProducerState(last_pseq=last_pseq, last_seen=last_seen)
            if len(self._producers) > self.max_producers:
                self._producers.popitem(last=False)
            return
        self._producers.move_to_end(producer)
        state.last_pseq = max(state.last_pseq, last_pseq)
        state.last_seen = max(state.last_seen, last_seen)

    def positions(self) -> list[tuple[str, int, float]]:
        """Every tracked ``(producer, last pseq, last seen)``, least recently seen first (for the state log)."""
        return [(producer, st.last_pseq, st.last_seen) for producer, st in self._producers.items()]

    def get(self, producer: str) -> ProducerState | None:
        return self._producers.get(producer)

    def __len__(self) -> int:
        return len(self._producers)

    def snapshot(self, limit: int = 100) -> list[dict[str, object]]:
        """The ``limit`` most recently seen producers, newest first."""
        out: list[dict[str, object]] = []
        for producer in reversed(self._producers):
            if len(out) >= limit:
                break
            st = self._producers[producer]
            out.append(
                {
                    "id": producer,
                    "last_seq": st.last_pseq,
                    "last_seen": st.last_seen,
                    "accepted": st.accepted,
                    "duplicates": st.duplicates,
                    "missed": st.missed,
                }
            )
        return out
