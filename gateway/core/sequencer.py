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

An event rejected at ingest (bad type, payload without a JSON form …) still
takes its ``pseq`` (:meth:`ProducerTracker.skip`): it is counted once as
rejected, its re-send is a duplicate, and the next event is neither a gap nor
a duplicate.  A loss revealed by a rejected event is held (``pending_missed``)
and reported with that producer's next accepted event.

A **backwards** jump of more than ``RESET_WINDOW`` (the SDK's re-send window:
no re-send reaches that far back) is not a duplicate but a producer reset (a
restarted emitter reusing its id, or a forged ``pseq`` that raised the
position): the event re-baselines the producer, is accepted, and is reported
(``RESET``), so a producer id pushed to ``2**64-1`` by someone else cannot make
the real producer's events silently vanish as duplicates.

The first event of a producer the gateway has never seen sets its baseline (a
stateless gateway cannot know what a producer sent before it started).  A
producer that restarts gets a new id and is a new producer, not a gap.

Memory is bounded: at most ``max_producers`` are tracked; beyond that the least
recently seen is forgotten (it would be re-baselined if it came back).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

#: How far back (in ``pseq``) an SDK re-send can reach: its default ``resend_events``.
RESET_WINDOW = 10_000
#: :meth:`ProducerTracker.admit`: a duplicate (dropped).
DUPLICATE = -1
#: :meth:`ProducerTracker.admit`: accepted after a producer reset (re-baselined).
RESET = -2


@dataclass
class ProducerState:
    last_pseq: int
    last_seen: float
    accepted: int = 0
    duplicates: int = 0
    missed: int = 0
    rejected: int = 0
    resets: int = 0
    #: Events lost before a rejected event, not yet reported (sent with the next accepted one).
    pending_missed: int = 0


class ProducerTracker:
    """Highest accepted ``pseq`` per producer, in least-recently-seen order."""

    def __init__(self, max_producers: int = 10_000) -> None:
        self.max_producers = max_producers
        self._producers: OrderedDict[str, ProducerState] = OrderedDict()
        #: The producer seen last and its state, held in :attr:`_producers` and already its
        #: newest: a run of one producer's events (the usual batch) skips the lookup and the move.
        self._last_id: str | None = None
        self._last_state: ProducerState | None = None

    def admit(self, producer: str, pseq: int, now: float) -> int:
        """Record one accepted event: the events missed before it to report (≥ 0), ``DUPLICATE`` or ``RESET``.

        The count includes losses held since a rejected event of this producer.
        """
        state = self._last_state
        if state is not None and producer == self._last_id:  # a run of one producer's events: _see inlined
            state.last_seen = now
        else:
            state = self._see(producer, pseq, now)
        if pseq <= state.last_pseq:
            if state.last_pseq - pseq < RESET_WINDOW:
                state.duplicates += 1
                return DUPLICATE
            self._reset(state, pseq)
            state.accepted += 1
            return RESET
        missed = pseq - state.last_pseq - 1
        state.missed += missed
        state.accepted += 1
        state.last_pseq = pseq
        if state.pending_missed:
            missed += state.pending_missed
            state.pending_missed = 0
        return missed

    def skip(self, producer: str, pseq: int, now: float) -> bool:
        """Record one rejected event as seen; False if it is a duplicate (a re-send of a seen ``pseq``)."""
        state = self._see(producer, pseq, now)
        if pseq <= state.last_pseq:
            if state.last_pseq - pseq < RESET_WINDOW:
                state.duplicates += 1
                return False
            self._reset(state, pseq - 1)  # counted in the producer's resets (/status)
        missed = pseq - state.last_pseq - 1
        state.missed += missed
        state.pending_missed += missed
        state.rejected += 1
        state.last_pseq = pseq
        return True

    @staticmethod
    def _reset(state: ProducerState, last_pseq: int) -> None:
        """Re-baseline a producer at ``last_pseq`` (its position and held losses forgotten)."""
        state.last_pseq = last_pseq
        state.pending_missed = 0
        state.resets += 1

    def _see(self, producer: str, pseq: int, now: float) -> ProducerState:
        state = self._last_state
        if state is None or producer != self._last_id:
            producers = self._producers
            state = producers.get(producer)
            if state is None:
                state = producers[producer] = ProducerState(last_pseq=pseq - 1, last_seen=now)
                if len(producers) > self.max_producers:
                    producers.popitem(last=False)
            else:
                producers.move_to_end(producer)
            if producer in producers:  # not when max_producers is 0: then nothing is tracked
                self._last_id, self._last_state = producer, state
        state.last_seen = now
        return state

    def restore(self, producer: str, last_pseq: int, last_seen: float) -> None:
        """Raise a producer's position to ``last_pseq`` (from the state log at start, in log order).

        Never lowers it — restoring the same history twice is harmless — except by
        more than ``RESET_WINDOW``: that is a producer reset the log recorded
        after the position it replaces, as it happened live.
        """
        self._last_id = self._last_state = None  # the order changes here
        state = self._producers.get(producer)
        if state is None:
            self._producers[producer] = ProducerState(last_pseq=last_pseq, last_seen=last_seen)
            if len(self._producers) > self.max_producers:
                self._producers.popitem(last=False)
            return
        self._producers.move_to_end(producer)
        if last_pseq > state.last_pseq or state.last_pseq - last_pseq >= RESET_WINDOW:
            state.last_pseq = last_pseq
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
                    "rejected": st.rejected,
                    "resets": st.resets,
                }
            )
        return out
