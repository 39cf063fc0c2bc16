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
from collections.abc import Sequence
from typing import Protocol

from emitter_sdk.wire import WireEvent
from gateway.core.codec import REJECT_REASONS, check_event, decode_wire, producer_of, well_formed
from gateway.core.filters import Filter
from gateway.core.histogram import LatencyHistogram
from gateway.core.producer_keys import ProducerKeys
from gateway.core.protocol import encode_upstream_gap
from gateway.core.ring import Entry, Ring
from gateway.core.sequencer import ProducerTracker
from gateway.engine.fanout import Hub
from gateway.engine.source import LocalSequencer, Rejected, SequencedSource


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
        self.producer_resets = 0
        #: CURVE: which client key may use each producer id (None: not checked).
        self.producer_keys: ProducerKeys | None = None
        self.rejected: dict[str, int] = dict.fromkeys(REJECT_REASONS, 0)
        #: Seconds from a batch's arrival to the end of its fan-out writes, one sample per batch.
        self.write_latency = LatencyHistogram()

    @property
    def seq(self) -> int:
        return self.ring.head

    def ingest(self, messages: Sequence[Sequence[bytes]], keys: list[str] | None = None) -> list[str]:
        """Validate a batch of raw ingest messages and submit the valid events to the :attr:`source`.

        Returns the rejection reasons seen.  The source numbers the events and
        brings them back through :meth:`commit`: at once with the local sequencer,
        later (in the stream's order) on a cluster node.  Each message is accepted
        or rejected alone (a payload without a JSON form: ``payload``, found by the
        source when it encodes the event).  The local
        sequencer also gets the rejected events whose producer is known
        (:class:`Rejected`), in order, so each takes its ``pseq``.  ``keys``
        (CURVE): each message's client key, checked against :attr:`producer_keys`.
        A cluster node's source gets them too and counts each where it takes its
        ``pseq`` (a re-send is a duplicate there); the reasons returned are what
        this node's ingest refused.
        """
        received = time.perf_counter()
        source = self.source
        items, reasons, charged = self.validate(messages, keys)
        if isinstance(source, LocalSequencer):
            source.sequence(items, received, reasons)
            return reasons
        reasons.extend(charged)
        source.submit(items, received)
        return reasons

    def validate(
        self, messages: Sequence[Sequence[bytes]], keys: list[str] | None = None
    ) -> tuple[list[WireEvent | Rejected], list[str], list[str]]:
        """Decode and check each message, in order: ``(items, reasons, charged)``.

        A rejection without a readable producer is counted here (its reason in
        ``reasons``); one with a producer comes back as :class:`Rejected` among the
        items (its reason also in ``charged``, in order, not counted yet).
        A payload without a JSON form is found by the source, in the one encoding
        that makes the entry (or the cluster record).  With ``keys`` and
        :attr:`producer_keys`, a message whose key is not the one bound to its
        producer id is rejected (``producer_key``) without touching that
        producer's sequence: it is not the producer's.
        """
        items: list[WireEvent | Rejected] = []
        reasons: list[str] = []
        charged_reasons: list[str] = []
        max_bytes = self.max_event_bytes
        whitelist = None if self.whitelist.matches_all else self.whitelist.matches
        bound = self.producer_keys if keys is not None else None
        plain = whitelist is None and bound is None  # a well-formed event needs no further judgement
        append = items.append
        for i, frames in enumerate(messages):
            checked = well_formed(frames, max_bytes)  # the common case: one C decode and a memo lookup
            if plain and checked is not None:
                append(checked)
                continue
            event = decode_wire(frames, max_bytes) if checked is None else checked
            if isinstance(event, str):  # "payload" here: a payload msgpack itself cannot decode
                reason, charged = event, producer_of(frames[0]) if event == "payload" else None
            else:
                reason = "" if checked is not None else check_event(event)
                if not reason and whitelist is not None and not whitelist(event.type, None, None):
                    reason = "not_allowed"
                if not reason and bound is None:  # the common case, once per event: nothing more to judge
                    append(event)
                    continue
                charged = None if reason == "producer" else (event.producer, event.pseq)
            if charged is not None and bound is not None and keys is not None and not bound.admit(charged[0], keys[i]):
                reason, charged = "producer_key", None  # not the producer's: its sequence is untouched
            if not isinstance(event, str) and not reason:
                items.append(event)
            elif charged is not None:
                items.append(Rejected(reason, *charged))
                charged_reasons.append(reason)
            else:  # nothing to charge to a producer's sequence
                self.rejected[reason] += 1
                reasons.append(reason)
        return items, reasons, charged_reasons

    def commit(self, entries: list[Entry]) -> None:
        """Persist, append and fan out entries already numbered ``head+1 ..``."""
        if not entries:
            return
        if self.sink is not None:
            self.sink.append(entries)
        self.ring.extend(entries)
        self.accepted += len(entries)
        self.hub.broadcast(entries)

    def upstream_gap(self, producer: str, missed: int, seq: int, now: float) -> bytes:
        """Count an upstream loss of ``missed`` events seen at ``seq``; the gap message to send before it."""
        self.upstream_gaps += 1
        self.upstream_missed += missed
        self.last_upstream_gap_at = now
        return encode_upstream_gap(producer, missed, seq)

    def producer_reset(self, producer: str, seq: int, now: float) -> bytes:
        """Count a producer reset seen at ``seq`` (its ``pseq`` jumped back beyond any re-send); the message."""
        self.producer_resets += 1
        self.last_upstream_gap_at = now
        return encode_upstream_gap(producer, 0, seq, reset=True)
