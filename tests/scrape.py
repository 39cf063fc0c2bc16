"""Test helper: ``GET /metrics`` of a real gatewayd, parsed with prometheus-client's own parser."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Gateway, http_get, wait_for

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(gw: Gateway) -> Series:
    code, body = http_get(gw.url + "/metrics")
    assert code == 200
    series: Series = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return series


def value(series: Series, name: str, **labels: str) -> float:
    return series[(name, tuple(sorted(labels.items())))]


def scrape_when(gw: Gateway, cond: Callable[[Series], bool], what: str, timeout: float = 10.0) -> Series:
    def ready() -> Series | None:
        series = scrape(gw)
        return series if cond(series) else None

    result: Series = wait_for(ready, timeout, what)
    return result


def gateway_series(series: Series) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {key for key in series if key[0].startswith("event_gateway_")}
