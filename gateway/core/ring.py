"""The replay ring: the last sequenced events, addressable by ``seq``.

Bounded twice, whichever bound is reached first: at most ``capacity`` events,
and at most ``max_bytes`` of held encodings (:func:`entry_bytes`: the event's
WebSocket frame, twice more as room for the forms built on first use — its SSE
message (≈ the JSON, which is the frame's payload and not held apart) and a
permessage-deflate frame (never larger than the plain frame) — and a fixed
per-entry overhead).
Eviction is always of the oldest, so ``oldest`` and every gap computed from it
stay exact whichever bound evicted.  The newest entry is always held, even one
larger than ``max_bytes`` on its own.

Pure data structure, no I/O.  Invariants:
- seqs held are contiguous: ``oldest .. head`` (both ``None``/0 when empty);
  appending requires ``entry.seq == head + 1`` (or any seq when empty, after a
  restore or a restart);
- lookup by seq is O(1) (slot ``seq % capacity``);
- each entry carries ``cum_bytes``, the running total of frame bytes, so the
  byte distance between two seqs is one subtraction;
- ``latest_by_key`` maps each coalescible ``(type, kind, id)`` key to the seq of
  its newest entry still held (size ≤ capacity).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import msgspec


class Entry(msgspec.Struct, gc=False):
    """One sequenced event, encoded once for every transport.

    A msgspec Struct: built in C (one per accepted event, on the ingest hot path)
    and not tracked by the cycle collector (``gc=False``: it holds only bytes,
    strings, ints and a tuple of strings, so it can never be part of a cycle),
    so a full ring costs the collector nothing.  Its v1 JSON is not held apart
    from the frame (:attr:`json` is the frame's payload): every object an entry
    holds alone is freed, on memory 10,000 events cold, when the ring evicts it.
    """

    seq: int
    type: str
    kind: str | None
    eid: str | None
    #: The WebSocket text frame (``protocol.ws_frame``) whose payload is the event's v1 JSON.
    frame: bytes
    producer: str
    pseq: int
    #: JSON of a ``gateway.gap`` (reason ``upstream``) to send before this event, or b"".
    upstream_gap: bytes = b""
    #: Running total of frame bytes up to and including this entry (set by :meth:`Ring.append`).
    cum_bytes: int = 0
    coalesce_key: tuple[str, str | None, str | None] | None = None
    #: SSE bytes, built on first use by an SSE client.
    sse: bytes | None = None
    #: permessage-deflate frames by server window bits, built on first use by a client
    #: that negotiated that window (``gateway.deflate``).
    deflated: dict[int, bytes] | None = None

    @property
    def json(self) -> bytes:
        """The event's v1 JSON: the frame's payload, copied (for the forms built on first use and the state log)."""
        frame = self.frame
        n = frame[1]  # the payload length, or 126 / 127: a 16-bit / 64-bit length follows
        return frame[2 if n < 126 else 4 if n == 126 else 10 :]


#: Bytes counted per entry besides its encodings: the Struct, its strings and the slot.
ENTRY_OVERHEAD = 400


def entry_bytes(entry: Entry) -> int:
    """What one entry costs the ring: its frame, twice more for its lazily built SSE and deflated
    forms, + overhead."""
    return 3 * len(entry.frame) + len(entry.upstream_gap) + ENTRY_OVERHEAD


class Ring:
    """Bounded (events and bytes), seq-addressed buffer of :class:`Entry`; evicts the oldest."""

    def __init__(self, capacity: int, max_bytes: int = 0) -> None:
        """``max_bytes`` 0: bounded by ``capacity`` only."""
        if capacity < 1:
            raise ValueError("ring capacity must be >= 1")
        self.capacity = capacity
        self.max_bytes = max_bytes
        #: :func:`entry_bytes` summed over the entries held.
        self.bytes = 0
        self._slots: list[Entry | None] = [None] * capacity
        self._first = 1  # oldest seq held when not empty
        self.head = 0  # newest seq held, 0 = nothing yet
        self.latest_by_key: dict[tuple[str, str | None, str | None], int] = {}
        self.evictions = 0

    def __len__(self) -> int:
        return 0 if self.head < self._first else self.head - self._first + 1

    @property
    def oldest(self) -> int | None:
        return None if len(self) == 0 else self._first

    def reset(self, head: int) -> None:
        """Empty the ring; the next append takes ``head + 1``."""
        self._slots = [None] * self.capacity
        self.latest_by_key.clear()
        self.bytes = 0
        self.head = head
        self._first = head + 1

    def append(self, entry: Entry) -> int:
        """Add the next entry; returns how many entries were evicted (:meth:`extend` of one)."""
        return self.extend((entry,))

    def extend(self, entries: Sequence[Entry]) -> int:
        """Add entries numbered ``head+1, head+2 ..`` in order; returns how many were evicted.

        The same as appending them one by one (the byte bound evicts the same oldest
        entries whether it is enforced after each or after the batch: the held suffix
        is the longest one under ``max_bytes``), in one pass: this runs for every
        accepted event, so the count eviction is inlined (locals only, no calls).
        """
        if not entries:
            return 0
        head, first, cap, slots, latest = self.head, self._first, self.capacity, self._slots, self.latest_by_key
        seq = entries[0].seq
        if head < first:  # empty
            first = seq
            cum = 0
        elif seq != head + 1:
            raise ValueError(f"ring expects seq {head + 1}, got {seq}")
        else:
            cum = slots[head % cap].cum_bytes  # type: ignore[union-attr]  # head is held
        held, evicted = self.bytes, 0
        try:
            for entry in entries:
                if entry.seq != seq:
                    raise ValueError(f"ring expects seq {seq}, got {entry.seq}")
                slot = seq % cap
                if seq - first == cap:  # full by count: the oldest makes room (its slot is this one)
                    old: Entry = slots[slot]  # type: ignore[assignment]  # held
                    held -= 3 * len(old.frame) + len(old.upstream_gap) + ENTRY_OVERHEAD
                    key = old.coalesce_key
                    if key is not None and latest.get(key) == old.seq:
                        del latest[key]
                    first += 1
                    evicted += 1
                frame = entry.frame
                cum += len(frame)
                entry.cum_bytes = cum
                slots[slot] = entry
                held += 3 * len(frame) + len(entry.upstream_gap) + ENTRY_OVERHEAD  # entry_bytes
                if entry.coalesce_key is not None:
                    latest[entry.coalesce_key] = seq
                seq += 1
        finally:  # what was placed is held (a bad seq mid-batch leaves the ring as appending one by one would)
            self.head, self._first, self.bytes = seq - 1, first, held
            self.evictions += evicted
        max_bytes = self.max_bytes
        if max_bytes:
            while self.bytes > max_bytes and self._first < self.head:  # the newest always stays
                self._evict_oldest()
                evicted += 1
        return evicted

    def _evict_oldest(self) -> None:
        first = self._first
        slot = first % self.capacity
        old = self._slots[slot]
        assert old is not None
        self._slots[slot] = None
        self._first = first + 1
        self.evictions += 1
        self.bytes -= entry_bytes(old)
        key = old.coalesce_key
        if key is not None and self.latest_by_key.get(key) == old.seq:
            del self.latest_by_key[key]

    def get(self, seq: int) -> Entry:
        if not self._first <= seq <= self.head:
            raise KeyError(seq)
        entry = self._slots[seq % self.capacity]
        assert entry is not None
        return entry

    def after(self, seq: int, limit: int) -> list[Entry]:
        """Up to ``limit`` entries with seq > ``seq``, oldest first (from ``oldest`` on)."""
        start = max(seq + 1, self._first)
        stop = min(self.head, start + limit - 1)
        slots, cap = self._slots, self.capacity
        return [slots[s % cap] for s in range(start, stop + 1)]  # type: ignore[misc]

    def bytes_between(self, after: int, upto: int) -> int:
        """Frame bytes of entries ``after+1 .. upto`` (clipped to what is held)."""
        if upto <= after or len(self) == 0:
            return 0
        upto = min(upto, self.head)
        top = self.get(upto).cum_bytes
        if after < self._first:
            first = self.get(self._first)
            return top - first.cum_bytes + len(first.frame)
        return top - self.get(after).cum_bytes

    def is_superseded(self, entry: Entry) -> bool:
        """True if a newer entry with the same coalesce key is held."""
        key = entry.coalesce_key
        return key is not None and self.latest_by_key.get(key, entry.seq) > entry.seq

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.after(self._first - 1, len(self)))

    def statistics(self) -> dict[str, Any]:
        return {
            "size": self.capacity,
            "fill": len(self),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "oldest": self.oldest,
            "head": self.head,
            "evictions": self.evictions,
        }
