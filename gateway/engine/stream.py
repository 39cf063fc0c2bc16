"""The sequenced stream: validated events in, ring entries and fan-out out.

:class:`Stream` owns the order of the data path for each batch of ingest
messages: validate (``codec``) → producer check (``sequencer``) → assign ``seq``
→ encode once → persist (``store``, when configured, *before* any client sees
the event) → append to the ring → ``Hub.broadcast``.  It runs on the event loop
thread and never awaits.  Counters here are the source of ``/status`` and
``/metrics``.
"""

from __future__ import annotations

import fnmatch
import time
from typing import Protocol

from emitter_sdk.wire import WireEvent
from gateway.core.codec import REJECT_REASONS, decode_ingest, encode_upstream_gap
from gateway.core.entries import make_entry
from gateway.core.histogram import LatencyHistogram
from gateway.core.ring import Entry, Ring
from gateway.core.sequencer import ProducerTracker
from gateway.engine.fanout import Hub


class EntrySink(Protocol):
    """Where accepted entries are persisted before fan-out (the state log)."""

    def append(self, entries: list[Entry]) -> None: ...


class EventSource(Protocol):
    """Where validated events go to be sequenced when this gateway does not sequence them
    itself (a cluster node: ``gateway.ports.cluster``)."""

    def submit(self, events: list[WireEvent]) -> None: ...


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
        self.types_whitelist = tuple(types_whitelist or ())
        self.coalesce_types = frozenset(coalesce_types or ())
        self.tracker = tracker or ProducerTracker()
        self.sink = sink
        #: The cluster source, or None when this gateway sequences its own ingest.
        self.source: EventSource | None = None
        self.accepted = 0
        self.duplicates = 0
        self.upstream_gaps = 0
        self.upstream_missed = 0
        self.last_upstream_gap_at = 0.0
        self.rejected: dict[str, int] = dict.fromkeys(REJECT_REASONS, 0)
        #: Seconds from a batch's arrival to the end of its fan-out writes, one sample per batch.
        self.write_latency = LatencyHistogram()
        self._allowed_cache: dict[str, bool] = {}

    @property
    def seq(self) -> int:
        return self.ring.head

    def ingest(self, messages: list[list[bytes]]) -> list[str]:
        """Process a batch of raw ingest messages; returns the rejection reasons seen.

        With a :attr:`source` (a cluster node) valid events go to it, to be sequenced
        by the cluster and come back through :meth:`commit`; otherwise they are
        sequenced here.
        """
        received = time.perf_counter()
        events, reasons = self.validate(messages)
        if self.source is not None:
            self.source.submit(events)
            return reasons
        now = time.time()
        entries: list[Entry] = []
        coalesce = self.coalesce_types
        admit = self.tracker.admit
        seq = self.ring.head + 1
        for event in events:  # once per event: locals, one call per step
            missed = admit(event.producer, event.pseq, now)
            if missed < 0:
                self.duplicates += 1
                continue
            gap = self.upstream_gap(event.producer, missed, seq, now) if missed else b""
            entries.append(make_entry(event, seq, gap, coalesce))
            seq += 1
        self.commit(entries)
        if entries:
            self.write_latency.observe(time.perf_counter() - received)
        return reasons

    def validate(self, messages: list[list[bytes]]) -> tuple[list[WireEvent], list[str]]:
        """Decode and check each message; rejections counted by reason, each alone."""
        events: list[WireEvent] = []
        reasons: list[str] = []
        max_bytes, whitelist = self.max_event_bytes, self.types_whitelist
        for frames in messages:
            event = decode_ingest(frames, max_bytes)
            if isinstance(event, str):
                self.rejected[event] += 1
                reasons.append(event)
                continue
            if whitelist and not self._allowed(event.type):
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

    def _allowed(self, event_type: str) -> bool:
        ok = self._allowed_cache.get(event_type)
        if ok is None:
            ok = any(fnmatch.fnmatchcase(event_type, g) for g in self.types_whitelist)
            if len(self._allowed_cache) < 4096:
                self._allowed_cache[event_type] = ok
        return ok
