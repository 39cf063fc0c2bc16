"""Every reason a cluster node gives for being degraded has its own ``/metrics`` label."""

from __future__ import annotations

import re

from gateway.ports.cluster.source import DEGRADED_REASONS, degraded_reason
from tests.conftest import ROOT

#: A problem as the cluster modules write it: ``set_problem("…")``, ``problem = f"…"``, ``self.problem: … = "…"``.
PROBLEM = re.compile(r'(?:set_problem\(|problem = |problem: str \| None = )f?"([^"{]+)')


def test_every_problem_the_cluster_modules_set_maps_to_a_label_of_its_own() -> None:
    written = {
        text
        for path in (ROOT / "gateway" / "ports" / "cluster").glob("*.py")
        for text in PROBLEM.findall(path.read_text())
    }
    assert {"connecting to NATS", "disconnected from NATS", "cannot publish to JetStream: "} <= written, written
    labels = {text: degraded_reason(text) for text in written}
    assert "other" not in labels.values(), labels
    assert set(labels.values()) == set(DEGRADED_REASONS.values()) - {"other"}, labels
    assert degraded_reason(None) is None and degraded_reason("something new") == "other"
