"""The report of :mod:`bench.core_cpu`: every cell's figures, then a verdict per rate and target.

Pure: takes the result dict :func:`bench.core_cpu.compare` returns, returns text.
"""

from __future__ import annotations

from typing import Any

RATIO_TARGET = 1.3
P99_9_TARGET_US = 50.0


def ab_figures(row: dict[str, Any]) -> str:
    ab = row["ab"]
    return (
        f"   A/B SDK {ab['cpu_pct']:.2f} % ({row['ab_ratio']:.2f}×)"
        f" p50 {ab['p50_us']:.2f} p99 {ab['p99_us']:.1f} p99.9 {ab['p99_9_us']:.1f}"
    )


def table(result: dict[str, Any]) -> str:
    """Every cell (CPU, ratio, emit() and bare send percentiles, context switches per event,
    load average), then per rate the ratios and p99.9s of every rep and the verdict of each target."""
    head = (
        f"{'rate':>5} {'rep':>3} {'load':>5} {'bare CPU%':>9} {'SDK CPU%':>8} {'ratio':>5}"
        f" {'emit p50/p99/p99.9 µs':>23} {'calls':>5} {'bare send p50/p99/p99.9 µs':>27}"
        f" {'floor p99.9 empty/encode':>24} {'csw/ev SDK/bare':>15}"
    )
    lines = [head]
    for r in result["rows"]:
        bare, sdk = r["bare"], r["sdk"]
        lines.append(
            f"{r['rate']:>5} {r['rep']:>3} {r.get('load1', 0):>5.2f} {bare['cpu_pct']:>9.2f} {sdk['cpu_pct']:>8.2f}"
            f" {r['ratio']:>5.2f} {percentiles(sdk):>23} {sdk['events']:>5} {percentiles(bare):>27}"
            f" {bare.get('empty_p99_9_us', 0):>15.1f}/{bare.get('encode_p99_9_us', 0):<8.1f}"
            f" {sdk.get('csw_per_event', 0):>7.2f}/{bare.get('csw_per_event', 0):.2f}"
            + (ab_figures(r) if "ab" in r else "")
        )
    for rate, ok in result["target_met"].items():
        mine = [r for r in result["rows"] if str(r["rate"]) == rate]
        ratios = " / ".join(f"{r['ratio']:.2f}" for r in mine)
        cpu_ok = all(r["ratio"] <= RATIO_TARGET for r in mine)
        lines.append(
            f"{rate} ev/s: SDK/bare CPU {ratios} (≤ {RATIO_TARGET}×: {verdict(cpu_ok)}); {tail_verdict(mine)};"
            f" both: {verdict(ok)}"
        )
    return "\n".join(lines)


def tail_verdict(rows: list[dict[str, Any]]) -> str:
    """emit() p99.9 of every rep against the target and, where it is missed, against the floor:
    the bare loop's stamp + encode alone in the same rep.  A floor above the target means no
    emit() can meet it on this machine, and the verdict says so with the figures."""
    tails = " / ".join(f"{r['sdk']['p99_9_us']:.0f}" for r in rows)
    if all(r["sdk"]["p99_9_us"] <= P99_9_TARGET_US for r in rows):
        return f"emit() p99.9 {tails} µs (≤ {P99_9_TARGET_US:.0f}: met)"
    floors = [r["bare"].get("encode_p99_9_us", 0.0) for r in rows]
    above = sum(f > P99_9_TARGET_US for f in floors)
    floor = " / ".join(f"{f:.0f}" for f in floors)
    reach = (
        "not reachable on this machine"
        if above == len(rows)
        else f"above {P99_9_TARGET_US:.0f} in {above} of {len(rows)}"
    )
    return (
        f"emit() p99.9 {tails} µs (≤ {P99_9_TARGET_US:.0f}: NOT met; floor {floor} µs,"
        f" the bare stamp + encode alone in the same reps: {reach})"
    )


def percentiles(run: dict[str, Any]) -> str:
    return f"{run['p50_us']:.1f}/{run.get('p99_us', 0):.1f}/{run['p99_9_us']:.1f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"
