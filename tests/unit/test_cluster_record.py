"""Cluster records and the pending buffer: planning on the applied state, duplicates, gaps, bounds.  No sockets."""

from __future__ import annotations

from emitter_sdk.wire import Entity, WireEvent
from gateway.core.sequencer import RESET, ProducerTracker
from gateway.engine.source import Rejected
from gateway.ports.cluster.pending import Pending
from gateway.ports.cluster.record import Skip, decode_record, encode_record, plan_record, record_entries, take_positions


def ev(producer: str, pseq: int, payload: dict[str, object] | None = None) -> WireEvent:
    return WireEvent(
        "task.progress", "2026-01-01T00:00:00.000Z", "core", Entity("task", "a"), payload or {}, producer, pseq
    )


def plan(pending: list[WireEvent | Rejected], tracker: ProducerTracker, first_seq: int = 1, **kw: int):  # type: ignore[no-untyped-def]
    return plan_record(
        pending,
        tracker,
        epoch="e1",
        first_seq=first_seq,
        max_events=kw.get("max_events", 100),
        max_bytes=kw.get("max_bytes", 1 << 20),
    )


def test_plan_sequences_after_the_applied_state_and_leaves_the_tracker_alone() -> None:
    tracker = ProducerTracker()
    tracker.admit("p", 3, 0.0)
    result = plan([ev("p", 2), ev("p", 4), ev("p", 7), ev("p", 7), ev("q", 10)], tracker, first_seq=41)
    assert result.taken == 5 and result.duplicates == 2
    record = result.record
    assert [(e.producer, e.pseq, e.missed) for e in record.events] == [("p", 4, 0), ("p", 7, 2), ("q", 10, 0)]
    assert (record.first_seq, record.last_seq, record.epoch) == (41, 43, "e1")
    assert b'"seq":42' in record.events[1].json and b'"id":"p:7"' in record.events[1].json
    assert tracker.get("p").last_pseq == 3 and tracker.get("q") is None  # type: ignore[union-attr]


def test_plan_is_bounded_by_events_and_bytes_but_takes_at_least_one() -> None:
    tracker = ProducerTracker()
    pending = [ev("p", i, {"pad": "x" * 1000}) for i in range(1, 11)]
    assert plan(pending, tracker, max_events=3).taken == 3
    by_bytes = plan(pending, tracker, max_bytes=2500)
    assert by_bytes.taken == len(by_bytes.record.events) == 2
    assert len(plan(pending, tracker, max_bytes=10).record.events) == 1


def test_a_record_gives_the_same_entries_on_every_node() -> None:
    tracker = ProducerTracker()
    record = plan([ev("p", 1), ev("p", 5)], tracker).record
    again = decode_record(encode_record(record))
    assert again == record
    first = record_entries(again, frozenset({"task.progress"}))
    second = record_entries(decode_record(encode_record(record)), frozenset({"task.progress"}))
    assert [(e.seq, e.frame, e.upstream_gap) for e in first] == [(e.seq, e.frame, e.upstream_gap) for e in second]
    assert first[1].upstream_gap == b'{"type":"gateway.gap","reason":"upstream","producer":"p","missed":3,"seq":2}'
    assert first[0].coalesce_key == ("task.progress", "task", "a")


def test_a_pipelined_plan_follows_the_positions_of_records_not_yet_applied() -> None:
    tracker = ProducerTracker()
    tracker.admit("p", 3, 0.0)
    first = plan([ev("p", 4), ev("p", 5)], tracker, first_seq=10)
    assert first.positions == {"p": (5, 0)}
    second = plan_record(
        [ev("p", 5), ev("p", 6), ev("q", 1)],
        tracker,
        epoch="e1",
        first_seq=12,
        max_events=10,
        max_bytes=1 << 20,
        ahead=first.positions,
    )
    assert second.duplicates == 1  # 5 is in the first record, though the tracker is still at 3
    assert [(e.pseq, e.missed) for e in second.record.events] == [(6, 0), (1, 0)]
    assert second.record.first_seq == 12 and second.positions == {"p": (6, 0), "q": (1, 0)}


def test_a_payload_without_a_json_form_is_rejected_in_the_one_encoding_and_takes_its_pseq() -> None:
    tracker = ProducerTracker()
    result = plan([ev("p", 1), ev("p", 2, {"x": {(1, 2): 1}}), ev("p", 3)], tracker, first_seq=5)
    assert (result.taken, result.rejected, result.duplicates) == (3, ["payload"], 0)
    assert [(e.pseq, e.missed) for e in result.record.events] == [(1, 0), (3, 0)]  # no upstream gap
    assert result.record.skips == [Skip(1, "p", 2)]
    assert b'"seq":6' in result.record.events[1].json  # numbered without a hole
    assert result.positions == {"p": (3, 0)}


def test_rejected_events_take_their_pseq_as_on_a_single_gateway() -> None:
    """The same producer check as ``LocalSequencer``: no false gap, no false duplicate, a re-send is a duplicate."""
    pending: list[WireEvent | Rejected] = [
        ev("p", 1),
        Rejected("reserved", "p", 2),
        ev("p", 3),
        Rejected("reserved", "p", 2),  # a re-send of the rejected event
        Rejected("type", "p", 6),  # 4, 5 lost upstream: reported with p's next event
        ev("q", 1),
        ev("p", 7),
        Rejected("type", "p", 8),  # the last of p in this record
    ]
    tracker = ProducerTracker()
    result = plan(pending, tracker, first_seq=1)
    record = result.record
    assert [(e.producer, e.pseq, e.missed) for e in record.events] == [
        ("p", 1, 0),
        ("p", 3, 0),
        ("q", 1, 0),
        ("p", 7, 2),
    ]
    assert record.skips == [Skip(1, "p", 2), Skip(2, "p", 6), Skip(4, "p", 8)]
    assert (result.rejected, result.duplicates, result.taken) == (["reserved", "type", "type"], 1, 8)
    assert result.positions == {"p": (8, 0), "q": (1, 0)}
    # Applied on any node, the tracker takes the same positions; a later record goes on from there.
    take_positions(decode_record(encode_record(record)), tracker, 0.0)
    assert tracker.get("p").last_pseq == 8 and tracker.get("p").rejected == 3  # type: ignore[union-attr]
    later = plan([Rejected("type", "p", 8), Rejected("type", "p", 10), ev("p", 11)], tracker, first_seq=5)
    assert [(e.pseq, e.missed) for e in later.record.events] == [(11, 1)]  # 9 lost before the rejected 10
    assert later.duplicates == 1 and later.rejected == ["type"]


def test_a_record_of_skips_only_is_published_and_taken_in_a_pipelined_plan() -> None:
    tracker = ProducerTracker()
    tracker.admit("p", 3, 0.0)
    only = plan([Rejected("entity", "p", 4), Rejected("entity", "p", 6)], tracker, first_seq=9)
    assert only.record.events == [] and only.record.last_seq == 8
    assert only.record.skips == [Skip(0, "p", 4), Skip(0, "p", 6)]
    assert only.positions == {"p": (6, 1)}  # 5 lost, held for p's next event
    after = plan_record(
        [ev("p", 7)], tracker, epoch="e1", first_seq=9, max_events=10, max_bytes=1 << 20, ahead=only.positions
    )
    assert [(e.pseq, e.missed) for e in after.record.events] == [(7, 1)]


def test_pending_keeps_order_across_joined_batches_skips_and_pops_and_drops_past_its_limit() -> None:
    pending = Pending(limit=10)
    assert pending.add([ev("p", 1), ev("p", 2)]) == 2 and pending.add([ev("p", 3)]) == 1
    assert pending.add([ev("p", i) for i in range(4, 14)]) == 7  # 3 over the limit: dropped, counted
    assert (len(pending), pending.dropped) == (10, 3)
    assert [e.pseq for e in pending.after(0)] == list(range(1, 11))
    assert [e.pseq for e in pending.after(8)] == [9, 10]
    pending.pop(3)
    assert [e.pseq for e in pending.after(1)] == list(range(5, 11)) and len(pending) == 7
    pending.pop(100)
    assert len(pending) == 0 and list(pending.after(0)) == [] and pending.add([ev("p", 20)]) == 1


def test_a_pseq_back_beyond_any_resend_is_a_producer_reset_as_on_a_single_gateway() -> None:
    tracker = ProducerTracker()
    tracker.admit("p", 20_000, 0.0)
    result = plan([ev("p", 19_999), ev("p", 1), ev("p", 2), Rejected("type", "p", 3), ev("p", 4)], tracker, first_seq=7)
    assert result.duplicates == 1  # within the re-send window: a duplicate
    assert [(e.pseq, e.missed) for e in result.record.events] == [(1, RESET), (2, 0), (4, 0)]
    entries = record_entries(result.record, frozenset())
    assert entries[0].upstream_gap == (
        b'{"type":"gateway.gap","reason":"upstream","producer":"p","missed":0,"seq":7,"reset":true}'
    )
    assert entries[1].upstream_gap == entries[2].upstream_gap == b""
    take_positions(result.record, tracker, 0.0)
    assert tracker.get("p").last_pseq == 4 and tracker.get("p").resets == 1  # type: ignore[union-attr]
