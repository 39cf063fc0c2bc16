"""2,000 connect/disconnect cycles against a real gatewayd leave nothing behind.

Clients come and go in waves of 50 open at once, ending four ways: a polite close
frame, a bare FIN with no close frame, a TCP reset (SO_LINGER 0, a killed process)
right after ``gateway.hello``, and a reset in the middle of the handshake.  Afterwards
``/status`` counts 0 clients and 0 addresses, the daemon's open file descriptors
(``/proc/<pid>/fd``) are back to their level before the churn, and its RSS is back
within ``RSS_SLACK`` of it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Gateway, wait_for
from tests.rawws import RawWs

CYCLES = 2_000
WAVE = 50
#: What 2,000 finished connections may leave in the allocator's free lists, at most.
RSS_SLACK = 16 << 20


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) << 10
    raise AssertionError("no VmRSS")


def wave(gateway: Gateway, first: int) -> None:
    """``WAVE`` clients open at once, then each ends in one of four ways."""
    clients = [RawWs(gateway.ws_url, wait=False) for _ in range(WAVE)]
    for i, client in enumerate(clients, first):
        way = i % 4
        if way == 3:  # killed before the handshake completed
            client.abort()
            continue
        assert client.wait_response() == 101
        assert client.read_until(lambda m: len(m) >= 1)[0]["type"] == "gateway.hello"
        if way == 0:
            client.close()
        elif way == 1:  # FIN, no close frame
            client.sock.close()
        else:  # RST, no close frame
            client.abort()


@pytest.mark.timeout(150)
def test_two_thousand_connect_disconnect_cycles_leave_nothing_behind(gateway_factory) -> None:
    gateway = gateway_factory("--close-timeout", "1")
    wave(gateway, 0)  # warm up: first-use allocations are not leaks
    wait_for(lambda: gateway.status()["clients"]["count"] == 0, 15, "warm-up clients gone")
    fds, memory = open_fds(gateway.pid), rss(gateway.pid)

    for first in range(0, CYCLES, WAVE):
        wave(gateway, first)

    wait_for(lambda: gateway.status()["clients"]["count"] == 0, 20, "client count back to 0")
    wait_for(lambda: open_fds(gateway.pid) <= fds, 20, f"open fds back to {fds}")
    status = gateway.status()
    assert status["clients"]["addresses"] == 0 and status["clients"]["lagging"] == 0
    assert rss(gateway.pid) - memory <= RSS_SLACK, f"RSS grew {(rss(gateway.pid) - memory) >> 20} MiB"
    assert gateway.healthy()
    assert "Traceback" not in gateway.logs(), "clients vanishing mid-handshake are not errors"
