"""Events a node ingested (and rejected ones, to take their ``pseq``) not yet in the stream: a bounded FIFO.

Kept as ingest submitted them, in batches (joined up to ``BATCH_EVENTS``), so
planning a record walks a few lists and consuming its events pops whole lists.
Bounded: at most ``limit`` events; past that the newest are dropped and counted
(``dropped``) — the producer's next accepted event then reports them as an
upstream gap, so nothing is lost silently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from itertools import chain, islice

from emitter_sdk.wire import WireEvent
from gateway.engine.source import Rejected

#: Ingest's batches (often a few events each) are joined into batches of about this many.
BATCH_EVENTS = 4096


class Pending:
    """FIFO of validated events; ``len()`` is the number held."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        self._batches: deque[list[WireEvent | Rejected]] = deque()
        #: Events of the first batch already consumed.
        self._offset = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, events: list[WireEvent | Rejected]) -> int:
        """Append ``events`` (dropping what exceeds the limit); returns how many were kept."""
        room = self.limit - self._count
        if room < len(events):
            self.dropped += len(events) - max(room, 0)
            events = events[: max(room, 0)]
        if not events:
            return 0
        batches = self._batches
        if batches and len(batches[-1]) < BATCH_EVENTS:
            batches[-1].extend(events)
        else:
            batches.append(list(events))
        self._count += len(events)
        return len(events)

    def after(self, skip: int) -> Iterator[WireEvent | Rejected]:
        """The events held, oldest first, but for the first ``skip``."""
        batches = self._batches
        if not batches:
            return iter(())
        events = chain(islice(batches[0], self._offset, None), chain.from_iterable(islice(batches, 1, None)))
        return islice(events, skip, None) if skip else events

    def pop(self, n: int) -> None:
        """Drop the oldest ``n`` events (at most all held)."""
        n = min(n, self._count)
        self._count -= n
        batches = self._batches
        while n:
            left = len(batches[0]) - self._offset
            if n < left:
                self._offset += n
                return
            batches.popleft()
            self._offset = 0
            n -= left
