"""The sequenced stream: validated events in, ring entries and fan-out out.

:class:`Stream` owns the order of the data path for each batch of ingest
messages: validate (``codec``) → the source numbers them (``source``: producer
check and ``seq`` on a single gateway) → encode once → :meth:`Stream.commit`:
persist (``store``, when configured, *before* any client sees the event) →
append to the ring → ``Hub.broadcast``.  It runs on the event loop
thread and never awaits.  Counters here are the source of ``/status`` and
``/metrics``.
"""

from __future__ import annotations

import time
from typing import Protocol

from emitter_sdk.wire import WireEvent
from gateway.core.codec import REJECT_REASONS, decode_ingest
from gateway.core.filters import Filter
from gateway.core.histogram import LatencyHistogram
from gateway.core.protocol import encode_upstream_gap
from gateway.core.ring import Entry, Ring
from gateway.core.sequencer import ProducerTracker
from gateway.engine.fanout import Hub
from gateway.engine.source import LocalSequencer, SequencedSource


class EntrySink(Protocol):
    """Where accepted entries are persisted before fan-out (the state log)."""

    def append(self, entries: list[Entry]) -> None: ...


class Stream:
    """Sequencing and counters for one epoch."""

    def __init__(
        self,
        ring: Ring,
        hub: Hub,
        epoch: str,
        *,
        max_event_bytes: int = 1 << 20,
        types_whitelist: list[str] | None = None,
        coalesce_types: list[str] | None = None,
        tracker: ProducerTracker | None = None,
        sink: EntrySink | None = None,
    ) -> None:
        self.ring = ring
        self.hub = hub
        self.epoch = epoch
        self.max_event_bytes = max_event_bytes
        #: ``--types-whitelist`` as a filter on types (empty: every type is allowed).
        self.whitelist = Filter(tuple(types_whitelist or ()))
        self.coalesce_types = frozenset(coalesce_types or ())
        self.tracker = tracker or ProducerTracker()
        self.sink = sink
        #: Who numbers the events (``gateway.engine.source``): the local sequencer unless
        #: replaced (a cluster node's ``ClusterSource``).
        self.source: SequencedSource = LocalSequencer(self)
        self.accepted = 0
        self.duplicates = 0
        self.upstream_gaps = 0
        self.upstream_missed = 0
        self.last_upstream_gap_at = 0.0
        self.rejected: dict[str, int] = dict.fromkeys(REJECT_REASONS, 0)
        #: Seconds from a batch's arrival to the end of its fan-out writes, one sample per batch.
        self.write_latency = LatencyHistogram()

    @property
    def seq(self) -> int:
        return self.ring.head

    def ingest(self, messages: list[list[bytes]]) -> list[str]:
        """Validate a batch of raw ingest messages and submit the valid events to the :attr:`source`.

        Returns the rejection reasons seen.  The source numbers the events and
        brings them back through :meth:`commit`: at once with the local sequencer,
        later (in the stream's order) on a cluster node.
        """
        received = time.perf_counter()
        events, reasons = self.validate(messages)
        self.source.submit(events, received)
        return reasons

    def validate(self, messages: list[list[bytes]]) -> tuple[list[WireEvent], list[str]]:
        """Decode and check each message; rejections counted by reason, each alone."""
        events: list[WireEvent] = []
        reasons: list[str] = []
        max_bytes = self.max_event_bytes
        whitelist = None if self.whitelist.matches_all else self.whitelist.matches
        for frames in messages:
            event = decode_ingest(frames, max_bytes)
            if isinstance(event, str):
                self.rejected[event] += 1
                reasons.append(event)
                continue
            if whitelist is not None and not whitelist(event.type, None, None):
                self.rejected["not_allowed"] += 1
                reasons.append("not_allowed")
                continue
            events.append(event)
        return events, reasons

    def commit(self, entries: list[Entry]) -> None:
        """Persist, append and fan out entries already numbered ``head+1 ..``."""
        if not entries:
            return
        if self.sink is not None:
            self.sink.append(entries)
        append = self.ring.append
        for entry in entries:
            append(entry)
        self.accepted += len(entries)
        self.hub.broadcast(entries)

    def upstream_gap(self, producer: str, missed: int, seq: int, now: float) -> bytes:
        """Count an upstream loss of ``missed`` events seen at ``seq``; the gap message to send before it."""
        self.upstream_gaps += 1
        self.upstream_missed += missed
        self.last_upstream_gap_at = now
        return encode_upstream_gap(producer, missed, seq)
