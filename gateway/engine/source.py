"""The source of sequenced events: the engine's port to whoever gives each event its ``seq``.

The stream (:class:`~gateway.engine.stream.Stream`) validates what ingest
receives and hands the valid events to its :class:`SequencedSource`, which
numbers them in order after the head and brings them back through
:meth:`Stream.commit` (persist → ring → fan-out), at once or later.  The source
also says how far back a resume may reach and starts a resuming client, so
fan-out, resume and the transports are the same whoever numbers the events.

Implementations:

- :class:`LocalSequencer` (here): one gateway numbers its own ingest; producers
  are tracked (duplicates dropped, upstream gaps reported); history is the ring
  (and the state log that refills it on restart);
- ``gateway.ports.cluster.source.ClusterSource``: the order of a NATS JetStream
  stream is the sequence, shared by every node, with history beyond the ring.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple, Protocol, final

from emitter_sdk.wire import WireEvent
from gateway.core.codec import ENCODE_ERRORS, encode_event
from gateway.core.entries import build_entry
from gateway.core.ring import Entry
from gateway.core.sequencer import RESET
from gateway.engine.subscriber import Subscriber

if TYPE_CHECKING:
    from gateway.engine.stream import Stream


@final  # nothing derives from it: ``type(item) is Rejected`` tells it apart (cheaper than isinstance)
class Rejected(NamedTuple):
    """A rejected message whose producer and ``pseq`` are known: it takes its ``pseq``."""

    reason: str
    producer: str
    pseq: int


class SequencedSource(Protocol):
    """What the engine asks of the source of sequenced events.  No method blocks or awaits."""

    def submit(self, items: list[WireEvent | Rejected], received: float) -> None:
        """Number the events of ``items`` after the head, in order, and commit them to the stream
        (now or later); each :class:`Rejected` takes its producer's ``pseq`` in that order.

        ``received`` is when their batch arrived (``time.perf_counter``), for the
        ingest-to-write latency.
        """

    def oldest_held(self, ring_oldest: int | None) -> int | None:
        """The oldest seq a resume can start from: the ring's (``ring_oldest``), or older."""

    def join(self, sub: Subscriber, start: int) -> None:
        """Start ``sub`` at cursor ``start``: whatever the ring lacks from there first, then the hub."""


class LocalSequencer:
    """The single-gateway source: numbers its own ingest and commits each batch at once.

    A producer re-sending what was accepted is a duplicate (dropped, counted); a
    jump in a producer's ``pseq`` is an upstream gap, counted and sent to clients
    before the event that revealed it (``Stream.upstream_gap``).
    """

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def submit(self, items: list[WireEvent | Rejected], received: float) -> None:
        self.sequence(list(items), received, [])

    def sequence(self, items: list[WireEvent | Rejected], received: float, reasons: list[str]) -> None:
        """Number ``items`` in order: events are accepted (or duplicates), rejections take their ``pseq``.

        An event whose payload has no JSON form (found in its one encoding) is
        rejected as ``payload`` there and then; each rejection is counted in
        ``stream.rejected`` and appended to ``reasons``, a re-sent one is a duplicate.
        An entry whose type, entity kind or producer equals the previous entry's takes
        that entry's string (the decoded copy is freed at once, while in cache): the ring
        then frees fewer objects of its own when it evicts the entry, 10,000 events later.
        """
        stream = self.stream
        now = time.time()
        entries: list[Entry] = []
        coalesce, rejected = stream.coalesce_types, stream.rejected
        admit, skip = stream.tracker.admit, stream.tracker.skip
        seq = stream.ring.head + 1
        last_type = last_producer = ""  # the previous entry's strings, shared when equal
        last_kind: str | None = ""
        for item in items:  # once per event: locals, one call per step
            if type(item) is Rejected:  # final: cheaper than isinstance
                rejection = item
            else:
                try:
                    json = encode_event(item, seq)
                except ENCODE_ERRORS:
                    rejection = Rejected("payload", item.producer, item.pseq)
                else:
                    missed = admit(item.producer, item.pseq, now)
                    if missed > 0:
                        gap = stream.upstream_gap(item.producer, missed, seq, now)
                    elif missed == 0:
                        gap = b""
                    elif missed == RESET:
                        gap = stream.producer_reset(item.producer, seq, now)
                    else:
                        stream.duplicates += 1
                        continue
                    ent = item.entity
                    kind, eid = (None, None) if ent is None else (ent.kind, ent.id)
                    etype = last_type = last_type if item.type == last_type else item.type
                    kind = last_kind = last_kind if kind == last_kind else kind
                    producer = last_producer = last_producer if item.producer == last_producer else item.producer
                    entry = build_entry(seq, etype, kind, eid, json, producer, item.pseq, gap, coalesce)
                    entries.append(entry)
                    seq += 1
                    continue
            if skip(rejection.producer, rejection.pseq, now):
                rejected[rejection.reason] += 1
                reasons.append(rejection.reason)
            else:
                stream.duplicates += 1
        stream.commit(entries)
        if entries:
            stream.write_latency.observe(time.perf_counter() - received)

    def oldest_held(self, ring_oldest: int | None) -> int | None:
        return ring_oldest

    def join(self, sub: Subscriber, start: int) -> None:
        self.stream.hub.add(sub, start)
