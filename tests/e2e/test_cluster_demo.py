"""``make cluster-demo`` next to the quickstart's gateway: it must refuse, naming the busy port.

Before this check, a gateway already on 8765 (``make run``) answered node A's health
check for a node that had failed to bind, and the demo failed later with a misleading
"no gateway subscribed".  Nothing is started: the check runs before any NATS server.
"""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.conftest import ROOT, free_port


def test_cluster_demo_refuses_a_busy_port_before_starting_anything() -> None:
    base = free_port()
    with socket.create_server(("127.0.0.1", base)):  # the quickstart gateway's HTTP port, say
        demo = subprocess.run(
            [sys.executable, str(ROOT / "deploy" / "cluster" / "demo.py"), "--base", str(base), "--seconds", "0"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert demo.returncode == 1, demo.stderr
    assert f"127.0.0.1:{base} is in use" in demo.stderr and "--base" in demo.stderr
    assert demo.stdout == ""  # nothing was started, so nothing stopped
