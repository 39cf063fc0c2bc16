"""The producer sequence tracker (``gateway.sequencer``) without sockets: order, duplicates, upstream gaps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.sequencer import ProducerTracker


def test_first_event_sets_the_baseline_then_in_order() -> None:
    t = ProducerTracker()
    assert t.admit("p", 7, 1.0) == 0  # a gateway cannot know what came before it started
    assert t.admit("p", 8, 2.0) == 0
    st_ = t.get("p")
    assert st_ is not None and (st_.last_pseq, st_.accepted, st_.last_seen) == (8, 2, 2.0)


def test_duplicates_and_stragglers_are_refused_and_counted() -> None:
    t = ProducerTracker()
    for pseq in (1, 2, 3):
        t.admit("p", pseq, 0.0)
    assert t.admit("p", 2, 0.0) == -1
    assert t.admit("p", 3, 0.0) == -1
    assert t.admit("p", 6, 0.0) == 2  # 4 and 5 missed: reported once
    assert t.admit("p", 5, 0.0) == -1  # a straggler behind a reported gap is not delivered too
    st_ = t.get("p")
    assert st_ is not None and (st_.duplicates, st_.missed, st_.accepted) == (3, 2, 4)


def test_a_new_producer_id_is_a_new_producer_not_a_gap() -> None:
    t = ProducerTracker()
    t.admit("old", 500, 0.0)
    assert t.admit("new", 1, 0.0) == 0
    assert len(t) == 2


def test_least_recently_seen_producer_is_forgotten_beyond_the_bound() -> None:
    t = ProducerTracker(max_producers=2)
    t.admit("a", 1, 0.0)
    t.admit("b", 1, 0.0)
    t.admit("a", 2, 0.0)
    t.admit("c", 1, 0.0)
    assert t.get("b") is None and t.get("a") is not None and len(t) == 2


def test_restore_raises_never_lowers_and_positions_round_trip() -> None:
    t = ProducerTracker()
    t.restore("p", 10, 5.0)
    t.restore("p", 4, 1.0)
    t.restore("q", 3, 2.0)
    assert t.positions() == [("p", 10, 5.0), ("q", 3, 2.0)]
    assert t.admit("p", 10, 6.0) == -1
    assert t.admit("p", 12, 6.0) == 1
    copy = ProducerTracker()
    for producer, last, seen in t.positions():
        copy.restore(producer, last, seen)
    assert copy.positions() == t.positions()


def test_snapshot_lists_newest_first() -> None:
    t = ProducerTracker()
    t.admit("a", 1, 1.0)
    t.admit("b", 1, 2.0)
    t.admit("a", 2, 3.0)
    assert [p["id"] for p in t.snapshot()] == ["a", "b"]
    assert [p["id"] for p in t.snapshot(limit=1)] == ["a"]


@given(st.lists(st.integers(1, 60), max_size=200))
def test_each_pseq_is_accepted_at_most_once_and_every_jump_is_counted(arrivals: list[int]) -> None:
    """Any arrival order: accepted + missed covers baseline..max exactly once, duplicates the rest."""
    t = ProducerTracker()
    accepted: list[int] = []
    missed = 0
    for pseq in arrivals:
        result = t.admit("p", pseq, 0.0)
        if result >= 0:
            accepted.append(pseq)
            missed += result
    assert accepted == sorted(set(accepted))  # strictly increasing: no duplicate ever passes
    if arrivals:
        baseline = arrivals[0] - 1
        assert len(accepted) + missed == max(arrivals) - baseline
        assert len(accepted) + t.get("p").duplicates == len(arrivals)  # type: ignore[union-attr]
