"""A producer in another language: ``examples/node-producer`` (npm ``zeromq`` + ``@msgpack/msgpack``)
run with Debian's ``nodejs`` against a real gatewayd, following only ``docs/wire.md``.

``make test`` installs nodejs and the example's npm packages (``make node-example``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from websockets.sync.client import connect

from tests.conftest import ROOT, Gateway, wait_for
from tests.e2e.test_data_path import recv_json
from tests.unit.test_wire_doc import documented_reasons

EXAMPLE = ROOT / "examples" / "node-producer"
NODE = shutil.which("node") or shutil.which("nodejs") or "/usr/bin/node"


def run_producer(gateway: Gateway, *args: str) -> str:
    """Run the example to completion; returns its producer id."""
    done = subprocess.run(
        [NODE, "producer.mjs", "--ingest", gateway.ingest, *args],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    producer: str = json.loads(done.stdout.splitlines()[0])["producer"]
    return producer


def test_node_events_arrive_with_ids_a_skipped_pseq_is_a_gap_and_a_map_is_rejected(gateway: Gateway) -> None:
    with connect(gateway.ws_url, max_size=None) as ws:
        assert recv_json(ws)["type"] == "gateway.hello"
        producer = run_producer(gateway, "--count", "5", "--skip-pseq", "3", "--send-map")
        got = [recv_json(ws) for _ in range(5)]  # events 1, 2, the gap, events 4, 5
    assert [m["type"] for m in got] == ["task.progress"] * 2 + ["gateway.gap"] + ["task.progress"] * 2
    events = [m for m in got if m["type"] == "task.progress"]
    assert [e["id"] for e in events] == [f"{producer}:{n}" for n in (1, 2, 4, 5)]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert events[0]["source"] == "node" and events[0]["entity"] == {"kind": "task", "id": "node-demo"}
    assert events[0]["payload"] == {"progress": 0, "message": "step 0"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", events[0]["ts"])
    assert got[2] == {"type": "gateway.gap", "reason": "upstream", "producer": producer, "missed": 1, "seq": 3}
    # The map-shaped message: rejected alone, counted under a reason the doc names.
    status = wait_for(lambda: (s := gateway.status())["events"]["rejected"] == 1 and s, what="the map's rejection")
    reasons = {reason for reason, n in status["events"]["rejected_by_reason"].items() if n}
    assert reasons == {"decode"} and reasons <= documented_reasons()
    assert status["events"]["accepted"] == 4 and status["upstream_gaps"]["missed"] == 1
