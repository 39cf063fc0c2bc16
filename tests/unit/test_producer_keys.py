"""``gateway.core.producer_keys``: a producer id belongs to the first CURVE key that used it.  No sockets."""

from __future__ import annotations

import msgspec

from gateway.core.producer_keys import ProducerKeys
from gateway.core.ring import Ring
from gateway.engine.fanout import Hub
from gateway.engine.stream import Stream


def test_first_key_binds_others_are_refused_and_counted() -> None:
    keys = ProducerKeys()
    assert keys.admit("core", "K1") and keys.dirty
    keys.saved()
    assert keys.admit("core", "K1") and not keys.dirty
    assert not keys.admit("core", "K2") and keys.refused == 1
    assert keys.admit("other", "K2") and keys.bindings() == {"core": "K1", "other": "K2"}


def test_bounded_least_recently_used_forgotten_and_restore_round_trips() -> None:
    keys = ProducerKeys(max_bindings=2)
    keys.admit("a", "K")
    keys.admit("b", "K")
    keys.admit("a", "K")  # a is now the most recent
    keys.admit("c", "K")
    assert list(keys.bindings()) == ["a", "c"]
    again = ProducerKeys(max_bindings=2)
    again.restore(keys.bindings())
    assert again.bindings() == keys.bindings() and not again.admit("a", "other")


def raw(pseq: int, producer: str = "core") -> list[bytes]:
    return [msgspec.msgpack.encode(["task.progress", "t", "core", None, {}, producer, pseq])]


def test_the_stream_refuses_a_foreign_key_without_touching_the_producers_sequence() -> None:
    ring = Ring(100)
    stream = Stream(ring, Hub(ring), "e")
    stream.producer_keys = ProducerKeys()
    assert stream.ingest([raw(1), raw(2**64 - 1), raw(2)], keys=["K1", "K2", "K1"]) == ["producer_key"]
    assert [e.pseq for e in ring] == [1, 2] and stream.upstream_gaps == 0 and stream.duplicates == 0
    assert stream.rejected["producer_key"] == 1
