"""``adapters/gateway.py`` for the peer harness: event-gateway's real ``gatewayd``.

Install into a *copy* of the harness (``../shared/bench`` is read-only)::

    cp bench/peer/gateway_adapter.py "$HARNESS/adapters/gateway.py"
    GATEWAY_ROOT=$PWD "$HARNESS/.venv/bin/python" "$HARNESS/bench.py" --system gateway --n 100 --rate 0

``GATEWAY_ROOT`` is this checkout (its ``.venv`` must be installed: ``make venv``).
What runs: ``gatewayd`` (WebSocket ``/ws/events`` on 127.0.0.1:18100, ingest bound on
127.0.0.1:15577) with its defaults — ring, resume, gap reporting and per-client bounds
on, as in production — plus ``bench/peer/publish_shim.py``, which plays Core: it
connects to the harness publisher's XPUB (the harness binds it) and re-emits every
event through ``emitter_sdk`` into the gateway's ingest.  ``--opts`` go to ``gatewayd``.

CPU accounting: the server figure is ``gatewayd`` alone; the shim's CPU (Core's side:
JSON decode + ``emit()``) is reported apart in ``server_stats.shim_cpu_s``, as the
harness reports its own publisher's CPU apart.  ``server_stats.gateway`` is the
gateway's ``/status`` read just before it is stopped (deliveries, drops, gaps).
Every client first receives ``gateway.hello``, so the harness's "loss" reads −N.
"""

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

# The harness's module, untyped: this file runs as the harness's adapters/gateway.py.
from adapters.base import Base  # type: ignore[import-not-found]

ROOT = Path(os.environ.get("GATEWAY_ROOT", ".")).resolve()
PORT = 18100
INGEST = "tcp://127.0.0.1:15577"
#: The harness publisher's XPUB (it binds).  Not the harness's default 15556, which is
#: also gatewayd's default ingest port and so often taken on a developer's machine.
PUBLISHER = "tcp://127.0.0.1:15576"


class Adapter(Base):  # type: ignore[misc]  # Base is the harness's untyped adapter base
    name = "gateway"
    ws_url = f"ws://127.0.0.1:{PORT}/ws/events"
    ports = (PORT,)
    zmq_endpoint = PUBLISHER

    def __init__(self, opts: list[str]) -> None:
        super().__init__(opts)
        self.status: dict[str, Any] = {}

    def start(self, run_dir: Path) -> None:
        venv = ROOT / ".venv" / "bin"
        if not (venv / "gatewayd").exists():
            raise RuntimeError("set GATEWAY_ROOT to an event-gateway checkout with its .venv (make venv)")
        self.spawn(
            "gatewayd",
            [
                str(venv / "gatewayd"),
                "--listen",
                f"127.0.0.1:{PORT}",
                "--ingest",
                INGEST,
                "--log-format",
                "json",
                "--log-level",
                "warning",
                *self.opts,
            ],
            run_dir,
        )
        self.wait_ready(30)
        self.spawn(
            "shim",
            [
                str(venv / "python"),
                str(ROOT / "bench" / "peer" / "publish_shim.py"),
                "--sub",
                self.zmq_endpoint,
                "--ingest",
                INGEST,
            ],
            run_dir,
            cwd=ROOT,
        )

    def pids(self) -> list[int]:
        shim = {p.pid for label, p, _ in self.procs if label == "shim"}
        return [pid for pid in super().pids() if pid not in shim]

    def publisher_args(self) -> list[str]:
        return ["--transport", "zmq", "--endpoint", self.zmq_endpoint, "--zmq-format", "raw"]

    def stop(self, timeout: float = 10) -> None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/status", timeout=2) as resp:
                self.status = json.loads(resp.read())
        except OSError:
            self.status = {}
        super().stop(timeout)

    def server_stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for label, _, log in self.procs:
            for line in reversed(Path(log).read_text(errors="replace").splitlines()):
                if label == "shim" and '"server-stats"' in line:
                    out.update(json.loads(line))
                    break
        keys = ("deliveries", "drops", "slow_client_disconnects", "upstream_gaps", "events", "clients", "ingest")
        out["gateway"] = {k: self.status.get(k) for k in keys}
        return out
