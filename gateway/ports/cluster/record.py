"""Stream records: batches of *already sequenced* events, the cluster's replicated log.  Pure.

A node that ingests events turns a prefix of its pending events into one
:class:`Record` with :func:`plan_record`: the producer check runs on the state
this node has *applied from the stream* (never on its own unpublished
batches), duplicates drop, and each event gets ``seq`` = the last applied seq
+ 1, + 2 ….  The record is published with ``Nats-Expected-Last-Sequence`` = the
stream sequence it was planned on, so at most one node wins each position; the
loser applies the winner's record and plans again (its duplicates then drop).

Every node, the writer included, turns records into ring entries with
:func:`record_entries`, in stream order.  A record holds the final event JSON
(``seq`` included), ``missed`` per event (the upstream gap to report before it)
and the epoch it was planned in, so the same record gives the same bytes on
every node.  A record is bounded by ``max_bytes`` of event JSON (at least one
event) and ``max_events`` events.  Planning is each event's one JSON encoding: a
payload without a JSON form is rejected there (``Plan.rejected``), and the
producer's next event in the stream reports it as an upstream gap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import msgspec

from emitter_sdk.wire import WireEvent
from gateway.core.codec import ENCODE_ERRORS, encode_event
from gateway.core.entries import build_entry
from gateway.core.protocol import encode_upstream_gap
from gateway.core.ring import Entry
from gateway.core.sequencer import ProducerTracker


class RecordEvent(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One sequenced event inside a record (its ``seq`` is ``first_seq`` + its index)."""

    type: str
    kind: str | None
    eid: str | None
    json: bytes
    producer: str
    pseq: int
    #: Events of this producer lost upstream right before this one (0: none).
    missed: int


class Record(msgspec.Struct, array_like=True, frozen=True):
    """What one JetStream message holds."""

    epoch: str
    first_seq: int
    events: list[RecordEvent]

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.events) - 1


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Record)


def encode_record(record: Record) -> bytes:
    return _ENCODER.encode(record)


def decode_record(data: bytes) -> Record:
    """Raises ``msgspec.DecodeError`` for bytes that are not a record (counted by the caller)."""
    return _DECODER.decode(data)


class Plan(msgspec.Struct):
    """A record to publish and how much of the pending events it accounts for."""

    record: Record
    #: Pending events consumed (published in the record or dropped as duplicates).
    taken: int
    duplicates: int
    #: Events whose payload has no JSON form (reason ``payload``), dropped here.
    rejected: int
    #: Each producer's last ``pseq`` in this record (the positions it leaves behind).
    positions: dict[str, int]


def plan_record(
    pending: Iterable[WireEvent],
    tracker: ProducerTracker,
    *,
    epoch: str,
    first_seq: int,
    max_events: int,
    max_bytes: int,
    ahead: Mapping[str, int] | None = None,
) -> Plan:
    """Sequence a prefix of ``pending`` after the applied state (``tracker``, ``first_seq``),
    or after records this node published but has not applied yet (their producer
    positions in ``ahead``, which win over ``tracker``'s).

    Changes neither: the positions this record reaches are returned in
    :attr:`Plan.positions`, so the plan can be thrown away when another node wins.
    """
    ahead = ahead or {}
    overlay: dict[str, int] = {}
    events: list[RecordEvent] = []
    size = taken = duplicates = rejected = 0
    for event in pending:
        if len(events) >= max_events:
            break
        producer, pseq = event.producer, event.pseq
        last = overlay.get(producer)
        if last is None:
            last = ahead.get(producer)
        if last is None:
            state = tracker.get(producer)
            last = state.last_pseq if state is not None else pseq - 1
        if pseq <= last:
            duplicates += 1
            taken += 1
            continue
        try:
            json = encode_event(event, first_seq + len(events))
        except ENCODE_ERRORS:
            rejected += 1
            taken += 1
            continue
        if events and size + len(json) > max_bytes:
            break
        size += len(json)
        ent = event.entity
        kind, eid = (None, None) if ent is None else (ent.kind, ent.id)
        events.append(RecordEvent(event.type, kind, eid, json, producer, pseq, pseq - last - 1))
        overlay[producer] = pseq
        taken += 1
    return Plan(Record(epoch, first_seq, events), taken, duplicates, rejected, overlay)


def record_entries(
    record: Record,
    coalesce_types: frozenset[str],
    upstream_gap: Callable[[str, int, int], bytes] = encode_upstream_gap,
) -> list[Entry]:
    """One ring entry per event of ``record``; each upstream gap message is made by
    ``upstream_gap(producer, missed, seq)`` (the live path counts it there)."""
    out: list[Entry] = []
    seq = record.first_seq
    for ev in record.events:
        gap = upstream_gap(ev.producer, ev.missed, seq) if ev.missed else b""
        out.append(build_entry(seq, ev.type, ev.kind, ev.eid, ev.json, ev.producer, ev.pseq, gap, coalesce_types))
        seq += 1
    return out
