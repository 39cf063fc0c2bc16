"""Where each applied record sits in the stream: first event seq → stream sequence.  Pure.

A node appends one pair per record it applies (both columns ascending), so a
resume older than the ring finds the record holding ``seq`` by bisection.
``first_sseq`` is the stream's first sequence as last seen: pairs below it
name records JetStream no longer holds and are never answered.  Bounded by
the stream: :meth:`RecordIndex.trim` drops the pairs below ``first_sseq`` in
chunks (more than 4,096 of them, or more than half of the index).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right


class RecordIndex:
    """The records this node applied that the stream may still hold, in stream order."""

    def __init__(self) -> None:
        self.seqs: array[int] = array("q")
        self.sseqs: array[int] = array("q")
        #: The stream's first sequence as last seen (probe, or this node's own purge).
        self.first_sseq = 0

    def add(self, first_seq: int, sseq: int) -> None:
        """Record ``sseq`` holds events from ``first_seq`` on (both after every earlier pair)."""
        self.seqs.append(first_seq)
        self.sseqs.append(sseq)

    def clear(self) -> None:
        self.seqs, self.sseqs = array("q"), array("q")

    def trim(self, first_sseq: int) -> None:
        """The stream now starts at ``first_sseq``: forget (in chunks) the records before it."""
        self.first_sseq = first_sseq
        cut = bisect_right(self.sseqs, first_sseq - 1)
        if cut > 4096 or (cut and cut * 2 > len(self.sseqs)):
            del self.seqs[:cut]
            del self.sseqs[:cut]

    def locate(self, seq: int) -> int | None:
        """Stream sequence of the record holding event ``seq``, if applied here and still held."""
        i = bisect_right(self.seqs, seq) - 1
        if i < 0 or self.sseqs[i] < self.first_sseq:
            return None
        return int(self.sseqs[i])

    def oldest_seq(self) -> int | None:
        """The oldest event seq the stream still holds (as far as this node knows)."""
        i = bisect_right(self.sseqs, self.first_sseq - 1)
        return int(self.seqs[i]) if i < len(self.seqs) else None
