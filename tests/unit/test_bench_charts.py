"""What ``make bench``'s charts show (``bench.charts.chart_spec``): pure, no browser."""

from __future__ import annotations

from bench.charts import REF_RUN, THIS_RUN, chart_spec


def scenario(n: int, rate: float, deliveries: float, p99: float) -> dict[str, float]:
    return {"n": n, "rate": rate, "deliveries_ps": deliveries, "p99_ms": p99}


def test_each_scenario_is_paired_with_the_reference_run_of_the_same_n_and_rate() -> None:
    reference = {
        "time": "2026-11-27T03:41:53Z",
        "fanout": [scenario(1000, 50, 50_000, 11.4), scenario(100, 0, 1.2e6, 86)],
    }
    run = {"time": "2026-11-28T08:00:00Z", "fanout": [scenario(100, 0, 1.1e6, 90), scenario(1000, 50, 49_000, 12.5)]}
    spec = chart_spec(run, reference, "p99_ms", "p99", " ms")
    assert [g["label"] for g in spec["groups"]] == ["N=100 · max", "N=1000 · 50 ev/s"]
    assert [[b["value"] for b in g["bars"]] for g in spec["groups"]] == [[86, 90], [11.4, 12.5]]
    assert all([b["color"] for b in g["bars"]] == [REF_RUN, THIS_RUN] for g in spec["groups"])
    assert "2026-11-28T08:00:00Z" in spec["subtitle"] and "2026-11-27T03:41:53Z" in spec["subtitle"]
    assert spec["subtitle"].endswith("up to 0 %")  # other processes' CPU: the noise behind the figures


def test_repetitions_are_medians_and_nchan_beside_the_gateway_gets_its_own_bar() -> None:
    reps = [
        {**scenario(1000, 50, 50_000, p99), "system": system}
        for p99, system in (
            (148.5, "gateway"),
            (897.0, "nchan"),
            (141.3, "gateway"),
            (134.1, "nchan"),
            (97.3, "gateway"),
            (93.2, "nchan"),
        )
    ]
    reference = {"fanout": [scenario(1000, 50, 50_000, 11.4)]}
    spec = chart_spec({"fanout": reps}, reference, "p99_ms", "p99", " ms")
    (group,) = spec["groups"]
    assert group["label"] == "N=1000 · 50 ev/s (median of 3)"
    assert [b["value"] for b in group["bars"]] == [11.4, 141.3, 134.1]
    assert [name for name, _ in spec["legend"]][1:] == ["this run", "Nchan, same run"]


def test_a_scenario_the_reference_did_not_run_has_no_reference_bar() -> None:
    spec = chart_spec({"fanout": [scenario(500, 10, 5000, 3)]}, {"fanout": []}, "deliveries_ps", "d", "/s")
    assert [b["value"] for b in spec["groups"][0]["bars"]] == [0, 5000]
