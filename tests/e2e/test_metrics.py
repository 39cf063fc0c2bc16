"""``GET /metrics`` against a real gatewayd, parsed with prometheus-client's own parser.

Counters move as events and clients flow (accepted, rejected by reason, duplicate,
upstream gaps and missed events, deliveries, clients by transport, ring fill, the
ingest-to-write latency histogram), the set of series stays the same as clients
come and go (no per-client or per-producer label), and every metric the example
alert rules in ``deploy/alerts.yml`` use is one the gateway exports.
"""

from __future__ import annotations

import http.client
import json
import re
from pathlib import Path

from websockets.sync.client import connect

from emitter_sdk import Emitter
from tests.conftest import ROOT, Gateway
from tests.rawingest import RawProducer
from tests.scrape import gateway_series, scrape, scrape_when, value


def open_sse(gw: Gateway) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    conn.request("GET", "/sse/events")
    resp = conn.getresponse()
    assert resp.status == 200
    while not resp.fp.readline().startswith(b"event: gateway.hello"):
        pass
    return conn


def test_counters_move_with_events_and_clients(gateway: Gateway) -> None:
    before = scrape(gateway)
    assert value(before, "event_gateway_events_accepted_total") == 0
    assert value(before, "event_gateway_healthy") == 1
    assert value(before, "event_gateway_ring_capacity_events") == 10_000
    assert value(before, "event_gateway_ingest_to_write_latency_seconds_count") == 0

    with connect(gateway.ws_url) as ws1, connect(gateway.ws_url + "?types=selfcheck.*") as ws2:
        for ws in (ws1, ws2):
            assert json.loads(ws.recv(timeout=10))["type"] == "gateway.hello"
        sse = open_sse(gateway)
        live = scrape(gateway)
        assert value(live, "event_gateway_clients", transport="ws") == 2
        assert value(live, "event_gateway_clients", transport="sse") == 1

        with Emitter(gateway.ingest) as em:
            assert em.wait_subscribed(10)
            for i in range(10):
                em.emit("task.progress", entity=("task", "m"), payload={"i": i})
            assert em.flush(10)
        raw = RawProducer(gateway.ingest)
        try:
            raw.send(1)
            raw.send(5)  # pseq 2..4 never arrive: an upstream gap of 3
            raw.send(5)  # a re-send: duplicate
            raw.send_frames(b"not msgpack")
            raw.send_frames(b"a", b"b")
        finally:
            raw.close()
        for _ in range(12):
            json.loads(ws1.recv(timeout=10))

        after = scrape_when(
            gateway, lambda s: value(s, "event_gateway_events_delivered_total") >= 24, "deliveries to ws1 and SSE"
        )
        sse.close()

    assert value(after, "event_gateway_events_accepted_total") == 12
    assert value(after, "event_gateway_seq") == 12
    assert value(after, "event_gateway_ring_events") == 12
    assert value(after, "event_gateway_events_duplicate_total") == 1
    assert value(after, "event_gateway_upstream_gaps_total") == 1
    assert value(after, "event_gateway_upstream_missed_events_total") == 3
    assert value(after, "event_gateway_events_rejected_total", reason="decode") == 1
    assert value(after, "event_gateway_events_rejected_total", reason="frames") == 1
    assert value(after, "event_gateway_events_delivered_total") == 24  # ws1 and sse; ws2's filter matched none
    latency_count = value(after, "event_gateway_ingest_to_write_latency_seconds_count")
    assert 1 <= latency_count <= 12
    assert value(after, "event_gateway_ingest_to_write_latency_seconds_bucket", le="+Inf") == latency_count
    assert value(after, "event_gateway_ingest_to_write_latency_seconds_sum") > 0
    assert value(after, "event_gateway_event_loop_lag_seconds") >= 0

    gone = scrape_when(
        gateway, lambda s: sum(v for k, v in s.items() if k[0] == "event_gateway_clients") == 0, "clients gone"
    )
    # Cardinality: the same series with no client, with three, and after they left.
    assert gateway_series(before) == gateway_series(live) == gateway_series(after) == gateway_series(gone)
    for name, labels in gateway_series(gone):
        assert all(key in {"reason", "policy", "transport", "limit", "version", "le"} for key, _ in labels), (
            name,
            labels,
        )


def test_every_metric_in_the_alert_rules_is_exported(gateway_factory, tmp_path: Path) -> None:
    gateway: Gateway = gateway_factory("--state-dir", str(tmp_path / "state"))  # state-log metrics too
    exported = {name for name, _ in scrape(gateway)}
    rules = (ROOT / "deploy" / "alerts.yml").read_text()
    used = set(re.findall(r"\b((?:event_gateway|process)_[a-z_]+)\b", rules))
    assert used, "alerts.yml uses no gateway metric"
    assert used <= exported, sorted(used - exported)
