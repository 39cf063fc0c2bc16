"""The replay ring (``gateway.ring``) without sockets: contiguity, eviction, lookups, byte accounting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.ring import ENTRY_OVERHEAD, Entry, Ring, entry_bytes


def entry(seq: int, size: int = 10, key: str | None = None) -> Entry:
    e = Entry(seq, "task.progress", "task", key, b"f" * size, "p", seq)
    if key is not None:
        e.coalesce_key = ("task.progress", "task", key)
    return e


def test_empty_ring_has_no_oldest_and_head_zero() -> None:
    ring = Ring(3)
    assert (len(ring), ring.oldest, ring.head) == (0, None, 0)
    assert ring.after(0, 10) == []
    assert ring.bytes_between(0, 5) == 0


def test_append_evicts_the_oldest_and_counts() -> None:
    ring = Ring(3)
    evicted = [ring.append(entry(s)) for s in range(1, 6)]
    assert evicted == [0, 0, 0, 1, 1]
    assert (len(ring), ring.oldest, ring.head, ring.evictions) == (3, 3, 5, 2)
    assert [e.seq for e in ring] == [3, 4, 5]
    assert ring.get(4).seq == 4
    with pytest.raises(KeyError):
        ring.get(2)
    with pytest.raises(KeyError):
        ring.get(6)


def test_append_refuses_a_hole_or_a_repeat() -> None:
    ring = Ring(3)
    ring.append(entry(1))
    with pytest.raises(ValueError):
        ring.append(entry(3))
    with pytest.raises(ValueError):
        ring.append(entry(1))


def test_first_append_may_start_anywhere_and_reset_empties() -> None:
    ring = Ring(4)
    ring.append(entry(41))
    assert (ring.oldest, ring.head) == (41, 41)
    ring.reset(100)
    assert (len(ring), ring.oldest, ring.head) == (0, None, 100)
    ring.append(entry(101))
    assert [e.seq for e in ring] == [101]


def test_after_is_clipped_to_what_is_held_and_to_limit() -> None:
    ring = Ring(5)
    for s in range(1, 9):
        ring.append(entry(s))
    assert [e.seq for e in ring.after(0, 100)] == [4, 5, 6, 7, 8]
    assert [e.seq for e in ring.after(5, 2)] == [6, 7]
    assert ring.after(8, 10) == []


def test_bytes_between_counts_frames_of_the_range() -> None:
    ring = Ring(4)
    for s, size in zip(range(1, 7), (1, 2, 4, 8, 16, 32), strict=True):
        ring.append(entry(s, size))
    assert ring.bytes_between(4, 6) == 16 + 32
    assert ring.bytes_between(0, 6) == 4 + 8 + 16 + 32  # clipped to what is held
    assert ring.bytes_between(6, 6) == 0


def test_latest_by_key_tracks_supersession_and_forgets_evicted() -> None:
    ring = Ring(3)
    a1, b2, a3 = entry(1, key="a"), entry(2, key="b"), entry(3, key="a")
    for e in (a1, b2, a3):
        ring.append(e)
    assert ring.is_superseded(a1) and not ring.is_superseded(a3) and not ring.is_superseded(b2)
    ring.append(entry(4))
    ring.append(entry(5))  # evicts b2, the newest "b"
    assert ("task.progress", "task", "b") not in ring.latest_by_key


@given(capacity=st.integers(1, 20), count=st.integers(0, 80), start=st.integers(1, 1000))
def test_ring_always_holds_the_newest_contiguous_run(capacity: int, count: int, start: int) -> None:
    ring = Ring(capacity)
    for seq in range(start, start + count):
        ring.append(entry(seq, size=seq % 7 + 1))
        held = [e.seq for e in ring]
        assert held == list(range(max(start, seq - capacity + 1), seq + 1))
        assert ring.oldest == held[0] and ring.head == seq
        assert ring.bytes_between(held[0] - 1, seq) == sum(s % 7 + 1 for s in held)


def test_the_byte_bound_evicts_the_oldest_first_and_keeps_the_newest() -> None:
    cost = entry_bytes(entry(1, 100))  # the frame, room for its SSE and deflated forms, + overhead
    assert cost == 300 + ENTRY_OVERHEAD
    ring = Ring(1000, max_bytes=3 * cost)
    assert [ring.append(entry(s, 100)) for s in range(1, 6)] == [0, 0, 0, 1, 1]
    assert (len(ring), ring.oldest, ring.head, ring.bytes, ring.evictions) == (3, 3, 5, 3 * cost, 2)
    assert ring.append(entry(6, 10_000)) == 3  # bigger than the bound alone: held, everything older goes
    assert (len(ring), ring.oldest, ring.head) == (1, 6, 6)
    assert ring.statistics()["bytes"] == entry_bytes(entry(6, 10_000)) and ring.statistics()["max_bytes"] == 3 * cost


@given(
    capacity=st.integers(1, 20),
    max_bytes=st.integers(0, 5_000),
    sizes=st.lists(st.integers(0, 600), max_size=80),
)
def test_both_bounds_hold_and_the_ring_stays_the_newest_contiguous_run(
    capacity: int, max_bytes: int, sizes: list[int]
) -> None:
    ring = Ring(capacity, max_bytes=max_bytes)
    for seq, size in enumerate(sizes, 1):
        ring.append(entry(seq, size))
        held = [e.seq for e in ring]
        assert held == list(range(held[0], seq + 1)) and ring.oldest == held[0] and ring.head == seq
        assert ring.bytes == sum(entry_bytes(e) for e in ring)
        assert len(held) <= capacity and (not max_bytes or ring.bytes <= max_bytes or held == [seq])
        # Exactly the newest run that fits: one more (older) entry would break a bound.
        if held[0] > 1:
            older = entry_bytes(entry(held[0] - 1, sizes[held[0] - 2]))
            assert len(held) == capacity or (max_bytes and ring.bytes + older > max_bytes)


def snapshot(ring: Ring) -> tuple[object, ...]:
    held = [(e.seq, e.cum_bytes) for e in ring]
    return held, ring.oldest, ring.head, ring.bytes, ring.evictions, dict(ring.latest_by_key)


@given(
    capacity=st.integers(1, 12),
    max_bytes=st.integers(0, 4_000),
    batches=st.lists(st.lists(st.tuples(st.integers(0, 400), st.sampled_from([None, "a", "b"])), max_size=15)),
)
def test_extend_by_batch_is_appending_one_by_one(
    capacity: int, max_bytes: int, batches: list[list[tuple[int, str | None]]]
) -> None:
    one, many = Ring(capacity, max_bytes=max_bytes), Ring(capacity, max_bytes=max_bytes)
    seq = 1
    for batch in batches:
        evicted = sum(one.append(entry(seq + i, size, key)) for i, (size, key) in enumerate(batch))
        assert many.extend([entry(seq + i, size, key) for i, (size, key) in enumerate(batch)]) == evicted
        seq += len(batch)
        assert snapshot(many) == snapshot(one)


def test_extend_with_a_hole_mid_batch_keeps_what_came_before_it() -> None:
    ring = Ring(3)
    ring.extend([entry(1), entry(2)])
    with pytest.raises(ValueError):
        ring.extend([entry(3), entry(4), entry(6), entry(7)])
    assert [e.seq for e in ring] == [2, 3, 4] and ring.head == 4 and ring.bytes == 3 * entry_bytes(entry(1))
    ring.append(entry(5))
    assert [e.seq for e in ring] == [3, 4, 5]
