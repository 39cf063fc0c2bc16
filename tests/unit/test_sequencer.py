"""The producer sequence tracker (``gateway.sequencer``) without sockets: order, duplicates, upstream gaps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.sequencer import DUPLICATE, RESET, RESET_WINDOW, ProducerTracker


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


def test_a_rejected_event_takes_its_pseq_and_a_loss_before_it_waits_for_the_next_accepted() -> None:
    t = ProducerTracker()
    assert t.admit("p", 1, 0.0) == 0
    assert t.skip("p", 2, 0.0) is True  # rejected: seen, not a gap for pseq 3
    assert t.admit("p", 3, 0.0) == 0
    assert t.skip("p", 2, 0.0) is False and t.admit("p", 3, 0.0) == -1  # re-sends are duplicates
    assert t.skip("p", 6, 0.0) is True  # 4 and 5 lost: held until the next accepted event
    assert t.admit("p", 7, 0.0) == 2
    st = t.get("p")
    assert st is not None and (st.last_pseq, st.rejected, st.missed, st.duplicates) == (7, 2, 2, 2)


def test_a_backwards_jump_beyond_the_resend_window_is_a_reset_not_a_duplicate() -> None:
    t = ProducerTracker()
    assert [t.admit("core", p, 0.0) for p in (1, 2)] == [0, 0]
    assert t.admit("core", 2**64 - 1, 0.0) == 2**64 - 4  # a forged position: a (huge) reported loss
    assert t.admit("core", 3, 0.0) == RESET  # the real producer: re-baselined, accepted, reported
    assert t.admit("core", 4, 0.0) == 0 and t.admit("core", 4, 0.0) == DUPLICATE
    assert t.admit("core", 4 - RESET_WINDOW + 1, 0.0) == DUPLICATE  # as far back as a re-send reaches
    st = t.get("core")
    assert st is not None and (st.last_pseq, st.resets) == (4, 1)


def test_restore_replays_a_logged_reset() -> None:
    t = ProducerTracker()
    for pseq in (1, 2, 2**64 - 1, 3, 4):  # the state log, in order
        t.restore("core", pseq, 0.0)
    assert t.positions() == [("core", 4, 0.0)]


def test_a_run_of_one_producer_and_then_another_keeps_each_position_and_the_order() -> None:
    t = ProducerTracker(max_producers=1)
    assert [t.admit("a", p, 0.0) for p in (5, 6, 7)] == [0, 0, 0]
    assert t.admit("b", 1, 0.0) == 0  # "a" is forgotten beyond the bound
    assert t.admit("a", 9, 0.0) == 0 and t.get("b") is None  # so "a" is new again: a baseline, not a gap
    none = ProducerTracker(max_producers=0)
    assert [none.admit("a", p, 0.0) for p in (1, 3)] == [0, 0] and len(none) == 0  # nothing is tracked


def test_restore_between_runs_is_seen_by_the_next_event() -> None:
    t = ProducerTracker()
    t.admit("a", 1, 0.0)
    t.admit("b", 1, 0.0)
    t.admit("a", 2, 0.0)
    t.restore("b", 40, 0.0)  # "b" becomes the most recently seen
    assert t.admit("a", 3, 1.0) == 0 and t.admit("a", 4, 1.0) == 0  # so "a" moves back to the end
    assert t.positions() == [("b", 40, 0.0), ("a", 4, 1.0)]
    assert t.admit("b", 40, 2.0) == -1
