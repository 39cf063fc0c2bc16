"""Batching in ``gateway.fanout.Hub.broadcast``, pure logic with a tiny fake transport.

A batch of events that arrived together is rendered once per filter key (not once
per client), its frames concatenated in seq order, and written with one
``transport.write`` per client; a lone event is written as exactly its frame.
Events enter through a real :class:`Stream`, so sequencing and encoding are the
production ones.
"""

from __future__ import annotations

from emitter_sdk.wire import ENCODER, Entity, WireEvent
from gateway.core.filters import Filter
from gateway.core.ring import Entry, Ring
from gateway.engine.fanout import Hub
from gateway.engine.stream import Stream
from tests.support import FakeTransport, RecordingSubscriber, ws_messages


class CountingSubscriber(RecordingSubscriber):
    """A subscriber that counts how often an entry is rendered for it."""

    renders = 0

    def entry_bytes(self, entry: Entry) -> bytes:
        CountingSubscriber.renders += 1
        return entry.frame

    def kick(self, code: int, reason: str) -> None:
        raise AssertionError(f"nobody is kicked here ({code} {reason})")


def wire(pseq: int, kind: str = "task", producer: str = "p1") -> list[bytes]:
    event = WireEvent(
        "task.progress", "2026-01-01T00:00:00.000Z", "core", Entity(kind, "t1"), {"n": pseq}, producer, pseq
    )
    return [ENCODER.encode(event)]


def setup(*filters: Filter) -> tuple[Stream, list[FakeTransport]]:
    ring = Ring(1000)
    hub = Hub(ring)
    stream = Stream(ring, hub, "e1")
    transports = []
    for flt in filters:
        t = FakeTransport()
        hub.add(CountingSubscriber(t, flt, "127.0.0.1"), ring.head)
        transports.append(t)
    CountingSubscriber.renders = 0
    return stream, transports


def test_a_batch_is_one_write_per_client_with_every_frame_in_order() -> None:
    stream, transports = setup(Filter(), Filter(), Filter())
    stream.ingest([wire(p) for p in range(1, 6)])
    entries = stream.ring.after(0, 10)
    for t in transports:
        assert len(t.writes) == 1
        assert t.writes[0] == b"".join(e.frame for e in entries)
        assert [m["seq"] for m in ws_messages(t.writes[0])] == [1, 2, 3, 4, 5]


def test_a_batch_is_rendered_once_per_filter_key_not_per_client() -> None:
    tasks = Filter(("task.*",), ())
    stream, transports = setup(Filter(), Filter(), tasks, tasks, tasks)
    stream.ingest([wire(p) for p in range(1, 5)])
    assert CountingSubscriber.renders == 2 * 4  # two distinct keys × four entries
    assert all(len(t.writes) == 1 for t in transports)
    assert transports[2].writes == transports[4].writes


def test_filtered_batches_keep_order_and_only_matching_events() -> None:
    only_b = Filter((), (("b", "t1"),))
    stream, (everything, filtered) = setup(Filter(), only_b)
    stream.ingest([wire(1, "a"), wire(2, "b"), wire(3, "a"), wire(4, "b")])
    assert [m["seq"] for m in ws_messages(everything.writes[0])] == [1, 2, 3, 4]
    assert [m["seq"] for m in ws_messages(filtered.writes[0])] == [2, 4]


def test_an_upstream_gap_precedes_its_event_inside_the_batch_even_when_filtered_out() -> None:
    only_b = Filter((), (("b", "t1"),))
    stream, (everything, filtered) = setup(Filter(), only_b)
    stream.ingest([wire(1, "a"), wire(5, "a"), wire(6, "b")])  # pseq 2..4 lost upstream
    kinds = [(m["type"], m.get("seq")) for m in ws_messages(everything.writes[0])]
    assert kinds == [("task.progress", 1), ("gateway.gap", 2), ("task.progress", 2), ("task.progress", 3)]
    gap = ws_messages(everything.writes[0])[1]
    assert gap == {"type": "gateway.gap", "reason": "upstream", "producer": "p1", "missed": 3, "seq": 2}
    assert [(m["type"], m.get("seq")) for m in ws_messages(filtered.writes[0])] == [
        ("gateway.gap", 2),
        ("task.progress", 3),
    ]


def test_a_lone_event_is_written_as_exactly_its_frame() -> None:
    stream, (t,) = setup(Filter())
    stream.ingest([wire(1)])
    stream.ingest([wire(2)])
    assert t.writes == [e.frame for e in stream.ring.after(0, 10)]


def test_nothing_is_written_to_a_client_whose_filter_matches_nothing_in_the_batch() -> None:
    stream, (t,) = setup(Filter(("selfcheck.*",), ()))
    stream.ingest([wire(1), wire(2)])
    assert t.writes == []
    stream.ingest([wire(3)])
    assert t.writes == []
