"""bench.core_cpu_report: the verdicts name the floor under emit()'s p99.9 (issue 16)."""

from __future__ import annotations

from typing import Any

from bench.core_cpu_report import table, tail_verdict


def row(rep: int, ratio: float, emit_p99_9: float, encode_p99_9: float) -> dict[str, Any]:
    run = {"cpu_pct": 4.0, "p50_us": 30.0, "p99_us": 90.0, "events": 495, "csw_per_event": 19.0}
    return {
        "rep": rep,
        "rate": 100,
        "load1": 0.5,
        "ratio": ratio,
        "sdk": {**run, "p99_9_us": emit_p99_9},
        "bare": {**run, "p99_9_us": 200.0, "encode_p99_9_us": encode_p99_9, "empty_p99_9_us": 1.5},
    }


def test_a_p99_9_within_the_target_is_met_without_a_floor() -> None:
    assert tail_verdict([row(1, 1.1, 40, 70), row(2, 1.1, 50, 70)]) == "emit() p99.9 40 / 50 µs (≤ 50: met)"


def test_a_floor_above_the_target_in_every_rep_says_not_met_and_not_reachable_with_the_figures() -> None:
    text = tail_verdict([row(1, 1.1, 123, 74), row(2, 1.3, 164, 99)])
    assert text.startswith("emit() p99.9 123 / 164 µs (≤ 50: NOT met; floor 74 / 99 µs")
    assert text.endswith("not reachable on this machine)")


def test_a_floor_below_the_target_in_some_rep_counts_those_reps_and_claims_no_floor() -> None:
    text = tail_verdict([row(1, 1.0, 56, 39), row(2, 1.0, 53, 62)])
    assert "NOT met; floor 39 / 62 µs" in text
    assert text.endswith("above 50 in 1 of 2)")
    assert "not reachable" not in text


def test_the_table_prints_each_reps_floor_calls_and_the_verdict_per_rate() -> None:
    result = {"rows": [row(1, 1.17, 123, 74)], "target_met": {"100": False}}
    lines = table(result).splitlines()
    assert "495" in lines[1] and "1.5/74.0" in lines[1]
    assert lines[2].startswith("100 ev/s: SDK/bare CPU 1.17 (≤ 1.3×: met); emit() p99.9 123 µs (≤ 50: NOT met")
    assert lines[2].endswith("; both: NOT met")
