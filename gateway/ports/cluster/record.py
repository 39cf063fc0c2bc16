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
event) and ``max_events`` events and skips.

A rejected event takes its ``pseq`` as on a single gateway: ingest's
rejections (:class:`~gateway.engine.source.Rejected`) wait among the pending
events, and planning is each event's one JSON encoding (a payload without a
JSON form is rejected there).  Either becomes a :class:`Skip` in the record, in
order, so every node's producer tracker takes that ``pseq``
(``ProducerTracker.skip``): the producer's next event is neither an upstream
gap nor a duplicate, a re-send of the rejected event is a duplicate, and a loss
revealed by a rejected event is reported with the producer's next event.  A
record may hold skips and no event (then ``last_seq == first_seq - 1``).  A
``pseq`` that goes back further than any re-send reaches (``RESET_WINDOW``) is
a producer reset, as on a single gateway: the event is accepted with ``missed``
= ``RESET`` and clients are told (``gateway.gap`` with ``reset: true``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import msgspec

from emitter_sdk.wire import WireEvent
from gateway.core.codec import ENCODE_ERRORS, encode_event
from gateway.core.entries import build_entry
from gateway.core.protocol import encode_upstream_gap
from gateway.core.ring import Entry
from gateway.core.sequencer import RESET, RESET_WINDOW, ProducerTracker
from gateway.engine.source import Rejected


class RecordEvent(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One sequenced event inside a record (its ``seq`` is ``first_seq`` + its index)."""

    type: str
    kind: str | None
    eid: str | None
    json: bytes
    producer: str
    pseq: int
    #: Events of this producer lost upstream right before this one (0: none), or ``RESET``:
    #: its ``pseq`` went back beyond any re-send, the producer restarted its numbering here.
    missed: int


class Skip(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A rejected event taking its ``pseq``, before the record's event at ``index``."""

    index: int
    producer: str
    pseq: int


class Record(msgspec.Struct, array_like=True, frozen=True):
    """What one JetStream message holds."""

    epoch: str
    first_seq: int
    events: list[RecordEvent]
    #: Rejected events taking their ``pseq``, in order (records written before skips existed have none).
    skips: list[Skip] = []

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


#: A producer's position while planning: its last ``pseq`` taken, and the events it lost right
#: before rejected ones, to report with its next event (``ProducerState.pending_missed``).
Position = tuple[int, int]


class Plan(msgspec.Struct):
    """A record to publish and how much of the pending events it accounts for."""

    record: Record
    #: Pending events consumed (published in the record or dropped as duplicates).
    taken: int
    duplicates: int
    #: The reason of each rejected event that took its ``pseq`` here (a :class:`Skip` each).
    rejected: list[str]
    #: Each producer's position after this record: (last ``pseq``, losses held since a rejected event).
    positions: dict[str, Position]


def plan_record(
    pending: Iterable[WireEvent | Rejected],
    tracker: ProducerTracker,
    *,
    epoch: str,
    first_seq: int,
    max_events: int,
    max_bytes: int,
    ahead: Mapping[str, Position] | None = None,
) -> Plan:
    """Sequence a prefix of ``pending`` after the applied state (``tracker``, ``first_seq``),
    or after records this node published but has not applied yet (their producer
    positions in ``ahead``, which win over ``tracker``'s).

    Changes neither: the positions this record reaches are returned in
    :attr:`Plan.positions`, so the plan can be thrown away when another node wins.
    """
    ahead = ahead or {}
    overlay: dict[str, int] = {}  # each producer's last pseq taken here
    held: dict[str, int] = {}  # losses revealed by a rejected event, for the producer's next event
    events: list[RecordEvent] = []
    skips: list[Skip] = []
    rejected: list[str] = []
    size = taken = duplicates = 0
    for item in pending:  # once per event: plain ints in the common case
        if len(events) >= max_events:
            break
        producer, pseq = item.producer, item.pseq
        last = overlay.get(producer)
        if last is None:
            position = ahead.get(producer)
            if position is None:
                state = tracker.get(producer)
                position = (pseq - 1, 0) if state is None else (state.last_pseq, state.pending_missed)
            last = position[0]
            if position[1]:
                held[producer] = position[1]
        if pseq <= last:
            if last - pseq < RESET_WINDOW:
                duplicates += 1
                taken += 1
                continue
            last, reset = pseq - 1, True  # a producer reset: re-baselined, as ProducerTracker does
            held.pop(producer, None)
        else:
            reset = False
        if type(item) is Rejected:  # (not isinstance: once per event, and nothing derives from it)
            reason = item.reason
        else:
            try:
                json = encode_event(item, first_seq + len(events))
            except ENCODE_ERRORS:
                reason = "payload"
            else:
                if events and size + len(json) > max_bytes:
                    break
                size += len(json)
                ent = item.entity
                kind, eid = (None, None) if ent is None else (ent.kind, ent.id)
                missed = RESET if reset else pseq - last - 1
                if held:
                    missed += held.pop(producer, 0)
                events.append(RecordEvent(item.type, kind, eid, json, producer, pseq, missed))
                overlay[producer] = pseq
                taken += 1
                continue
        if len(skips) >= max_events:
            break
        skips.append(Skip(len(events), producer, pseq))
        rejected.append(reason)
        held[producer] = held.get(producer, 0) + pseq - last - 1
        overlay[producer] = pseq
        taken += 1
    positions = {producer: (last, held.get(producer, 0)) for producer, last in overlay.items()}
    return Plan(Record(epoch, first_seq, events, skips), taken, duplicates, rejected, positions)


def encode_record_gap(producer: str, missed: int, seq: int) -> bytes:
    """The upstream gap message before event ``seq``: ``missed`` events lost, or (``RESET``) a producer reset."""
    if missed == RESET:
        return encode_upstream_gap(producer, 0, seq, reset=True)
    return encode_upstream_gap(producer, missed, seq)


def record_entries(
    record: Record,
    coalesce_types: frozenset[str],
    upstream_gap: Callable[[str, int, int], bytes] = encode_record_gap,
) -> list[Entry]:
    """One ring entry per event of ``record``; each upstream gap message is made by
    ``upstream_gap(producer, missed, seq)`` (the live path counts it there; ``missed`` may
    be ``RESET``)."""
    out: list[Entry] = []
    seq = record.first_seq
    for ev in record.events:
        gap = upstream_gap(ev.producer, ev.missed, seq) if ev.missed else b""
        out.append(build_entry(seq, ev.type, ev.kind, ev.eid, ev.json, ev.producer, ev.pseq, gap, coalesce_types))
        seq += 1
    return out


def take_positions(record: Record, tracker: ProducerTracker, now: float) -> None:
    """Every node's producer tracker takes ``record``'s events (``admit``) and rejected events
    (``skip``) in the record's order: the same positions on every node."""
    admit, skip, skips = tracker.admit, tracker.skip, record.skips
    if not skips:
        for ev in record.events:
            admit(ev.producer, ev.pseq, now)
        return
    i = 0
    for index, ev in enumerate(record.events):
        while i < len(skips) and skips[i].index <= index:
            skip(skips[i].producer, skips[i].pseq, now)
            i += 1
        admit(ev.producer, ev.pseq, now)
    for rest in skips[i:]:
        skip(rest.producer, rest.pseq, now)
