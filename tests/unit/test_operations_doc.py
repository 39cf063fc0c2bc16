"""``docs/operations.md`` lists exactly the structlog event names the gateway logs (none undocumented, none stale)."""

from __future__ import annotations

import re

from gateway.http.metrics import CLUSTER_COUNTERS
from tests.conftest import ROOT

LOG_CALL = re.compile(r"\blog\.(?:debug|info|warning|error|exception|critical)\(\s*\"([a-z_]+\.[a-z_.]+)\"")


def test_every_logged_event_is_in_the_operations_guide() -> None:
    logged = {name for path in (ROOT / "gateway").rglob("*.py") for name in LOG_CALL.findall(path.read_text())}
    assert {"gateway.started", "client.connected", "gateway.stopped"} <= logged  # the pattern still finds them
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_.]+)` \|", (ROOT / "docs" / "operations.md").read_text(), re.M))
    assert logged == documented, {"undocumented": sorted(logged - documented), "stale": sorted(documented - logged)}


def test_the_alert_rules_name_log_events_the_gateway_writes() -> None:
    logged = {name for path in (ROOT / "gateway").rglob("*.py") for name in LOG_CALL.findall(path.read_text())}
    rules = (ROOT / "deploy" / "alerts.yml").read_text()
    named = set(re.findall(r"see (?:the )?([a-z_]+\.[a-z_.]+)", rules))
    assert {"ingest.batch_failed", "store.write_failed"} <= named  # the pattern still finds them
    assert named <= logged, sorted(named - logged)


def test_every_exported_metric_is_in_the_operations_guide() -> None:
    code = (ROOT / "gateway" / "http" / "metrics.py").read_text()
    exported = set(re.findall(r'(?:_gauge|_counter)\(\s*"([a-z_]+)"|PREFIX \+ "([a-z_]+)"', code))
    names = {a or b for a, b in exported} | {name for name, _, _ in CLUSTER_COUNTERS}
    assert {
        "seq",
        "events_accepted",
        "cluster_applied_seq",
        "cluster_degraded",
    } <= names  # the pattern still finds them
    documented = {
        name.removesuffix("_total")
        for name in re.findall(r"`event_gateway_([a-z_]+)", (ROOT / "docs" / "operations.md").read_text())
    }
    assert names == documented, {"undocumented": sorted(names - documented), "stale": sorted(documented - names)}
