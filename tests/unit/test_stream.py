"""``gateway.stream.Stream.ingest``: each event is accepted or rejected alone.  No sockets.

A payload that decodes but has no JSON form (non-string map keys, msgpack ext
types …) is rejected with reason ``payload`` and counted; it takes its ``pseq``
like any other rejected event, so the producer's next event is neither a gap nor
a duplicate, and its re-send is a duplicate.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from emitter_sdk.wire import WireEvent
from gateway.core.ring import Ring
from gateway.engine.fanout import Hub
from gateway.engine.source import Rejected
from gateway.engine.stream import Stream
from gateway.engine.subscriber import Subscriber


def raw(pseq: int, payload: Any, *, event_type: str = "task.progress", producer: str = "core1") -> list[bytes]:
    """One ingest message built by hand (the SDK refuses what it cannot encode; a raw producer need not)."""
    return [msgspec.msgpack.encode([event_type, "2026-01-01T00:00:00.000Z", "core", None, payload, producer, pseq])]


def make_stream() -> Stream:
    ring = Ring(10_000)
    return Stream(ring, Hub(ring), "e1")


def delivered(stream: Stream) -> list[bytes]:
    return [entry.json for entry in stream.ring]


def test_the_issue_scenario_five_good_one_unencodable_three_good() -> None:
    stream = make_stream()
    batch = [raw(i, {"i": i}) for i in range(1, 6)] + [raw(6, {"x": {(1, 2): 1}})]
    batch += [raw(i, {"i": i}) for i in range(7, 10)]
    assert stream.ingest(batch) == ["payload"]
    assert [msgspec.json.decode(j)["id"] for j in delivered(stream)] == [f"core1:{i}" for i in (1, 2, 3, 4, 5, 7, 8, 9)]
    assert stream.rejected["payload"] == 1 and stream.upstream_gaps == 0 and stream.duplicates == 0
    assert all(not entry.upstream_gap for entry in stream.ring)
    # The SDK's re-send of everything is nine duplicates, the bad one included; the next event follows on.
    assert stream.ingest([raw(i, {"i": i}) for i in range(1, 10)]) == []
    assert stream.duplicates == 9 and stream.rejected["payload"] == 1
    stream.ingest([raw(10, {"i": 10})])
    assert stream.ring.head == 9 and not stream.ring.get(9).upstream_gap


def test_every_rejection_with_a_producer_takes_its_pseq() -> None:
    stream = make_stream()
    stream.ingest([raw(1, {}), raw(2, {}, event_type="task.started\n"), raw(3, {}, event_type="gateway.x"), raw(4, {})])
    assert stream.rejected["type"] == 1 and stream.rejected["reserved"] == 1
    assert stream.ring.head == 2 and stream.upstream_gaps == 0 and stream.duplicates == 0


def test_a_loss_seen_at_a_rejected_event_is_reported_with_the_next_accepted_one() -> None:
    stream = make_stream()
    stream.ingest([raw(1, {}), raw(5, {"bad": msgspec.msgpack.Ext(1, b"x")}), raw(6, {})])
    gap = msgspec.json.decode(stream.ring.get(2).upstream_gap)
    assert gap == {"type": "gateway.gap", "reason": "upstream", "producer": "core1", "missed": 3, "seq": 2}
    assert stream.upstream_missed == 3 and stream.rejected["payload"] == 1


msgpack_keys = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=4)
msgpack_keys |= st.binary(max_size=4) | st.tuples(st.integers(0, 3), st.integers(0, 3))
msgpack_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.builds(msgspec.msgpack.Ext, st.integers(-128, 127), st.binary(max_size=8))
)
msgpack_values = st.recursive(
    msgpack_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(msgpack_keys, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.none() | msgpack_values, min_size=1, max_size=12))
def test_arbitrary_msgpack_in_a_payload_never_costs_another_event(values: list[Any]) -> None:
    """``None`` marks a plain good event; anything else is an arbitrary msgpack value in the payload."""
    stream = make_stream()
    batch = [raw(i, {"i": i} if v is None else {"i": i, "v": v}) for i, v in enumerate(values, 1)]
    reasons = stream.ingest(batch)
    ids = [msgspec.json.decode(j)["id"] for j in delivered(stream)]
    good = [f"core1:{i}" for i, v in enumerate(values, 1) if v is None]
    assert set(good) <= set(ids), "a good event was lost"
    assert len(ids) + len(reasons) == len(values) and set(reasons) <= {"payload"}, reasons
    assert stream.rejected["payload"] == len(reasons) and stream.duplicates == 0 and stream.upstream_gaps == 0
    assert [msgspec.json.decode(j)["seq"] for j in delivered(stream)] == list(range(1, len(ids) + 1))
    # The same batch again (an SDK re-send) is all duplicates, nothing new, nothing rejected twice.
    assert stream.ingest(batch) == [] and stream.duplicates == len(values)


class Submitted:
    """A source other than the local sequencer (as a cluster node's): it only records what it is given."""

    def __init__(self) -> None:
        self.items: list[WireEvent | Rejected] = []

    def submit(self, items: list[WireEvent | Rejected], received: float) -> None:
        self.items.extend(items)

    def oldest_held(self, ring_oldest: int | None) -> int | None:
        return ring_oldest

    def join(self, sub: Subscriber, start: int) -> None:
        raise AssertionError("no client here")


def test_another_source_gets_events_and_charged_rejections_in_order_and_ingest_returns_every_reason() -> None:
    stream = make_stream()
    source = stream.source = Submitted()
    batch = [raw(1, {}), raw(2, {}, event_type="gateway.x"), [b"\xc1"], raw(3, {}, producer=""), raw(4, {})]
    assert sorted(stream.ingest(batch)) == ["decode", "producer", "reserved"]
    kinds = [(type(i).__name__, i.pseq) for i in source.items]
    assert kinds == [("_CheckedEvent", 1), ("Rejected", 2), ("_CheckedEvent", 4)]
    assert source.items[1] == Rejected("reserved", "core1", 2)
    # Counted here: only what no producer's sequence takes (the source counts the rest where it takes the pseq).
    assert stream.rejected["decode"] == 1 and stream.rejected["producer"] == 1 and stream.rejected["reserved"] == 0


def test_a_run_of_entries_shares_the_type_kind_and_producer_strings_of_the_first() -> None:
    """Each decoded string is a fresh object; an entry equal to the previous one's takes that one's."""
    stream = make_stream()
    entity = ["task", "t1"]
    stream.ingest([[msgspec.msgpack.encode(["task.progress", "ts", "core", entity, {}, "core1", i])] for i in (1, 2)])
    stream.ingest([[msgspec.msgpack.encode(["task.done", "ts", "core", entity, {}, p, 1])] for p in ("core2", "core3")])
    first, second, third, fourth = (stream.ring.get(seq) for seq in (1, 2, 3, 4))
    assert second.type is first.type and second.kind is first.kind and second.producer is first.producer
    assert (fourth.type, fourth.kind, fourth.producer) == ("task.done", "task", "core3")
    assert fourth.type is third.type and fourth.kind is third.kind and fourth.producer is not third.producer
    # Nothing else about the entries changes: the JSON and the frame are the event's own.
    assert msgspec.json.decode(fourth.json) == {
        "type": "task.done",
        "ts": "ts",
        "source": "core",
        "entity": {"kind": "task", "id": "t1"},
        "payload": {},
        "seq": 4,
        "id": "core3:1",
    }
    assert fourth.frame.endswith(fourth.json) and "json" not in type(fourth).__struct_fields__
