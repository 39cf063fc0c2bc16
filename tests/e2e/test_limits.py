"""Client limits and dead peers against a real gatewayd: each limit refuses or closes as SPEC says and is counted.

Covers ``--max-clients`` (an upgrade completed, then closed 1013 before any hello;
503 + ``Retry-After`` for a request without an upgrade), ``--max-clients-per-ip``, ``--max-frame-bytes`` (1009),
``--client-msg-rate`` (``gateway.error`` then 1008, for data and protocol-ping
floods alike, others unaffected), protocol heartbeats closing a peer that never
answers, a stalled peer's socket really released (``--close-timeout``), the
handshake timeout and TCP keepalive on accepted sockets.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import Gateway, run_python, wait_for
from tests.e2e.test_data_path import emit_script, recv_json
from tests.rawws import RawWs


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def limit_logged(gateway: Gateway, limit: str, code: int) -> bool:
    """The ``client.limit_closed`` log event was written for ``limit``."""
    lines = [json.loads(line) for line in gateway.logs().splitlines() if '"client.limit_closed"' in line]
    return any(line["limit"] == limit and line["code"] == code for line in lines)


def test_over_max_clients_an_upgrade_is_closed_1013_and_a_plain_request_gets_503(gateway_factory) -> None:
    gateway = gateway_factory("--max-clients", "2")
    with connect(gateway.ws_url), connect(gateway.ws_url):
        wait_for(lambda: gateway.status()["clients"]["count"] == 2, 10, "two clients")
        # The upgrade completes, so a browser can read the close; no hello comes before it.
        with connect(gateway.ws_url) as third, pytest.raises(ConnectionClosed) as closed:
            third.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1013, "over capacity (max_clients)")
        for path in ("/ws/events", "/sse/events"):  # asked without upgrading: 503 + Retry-After
            reply = urllib.request.Request(gateway.url + path)
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(reply, timeout=5)
            assert info.value.code == 503 and info.value.headers["Retry-After"] == "5", path
        clients = gateway.status()["clients"]
        assert clients["refused"]["max_clients"] == 3
        assert clients["refused_by_transport"] == {"ws": 2, "sse": 1}  # SSE refusals counted apart
    wait_for(lambda: gateway.status()["clients"]["count"] == 0, 10, "clients gone")
    with connect(gateway.ws_url) as ws:  # room again
        assert recv_json(ws)["type"] == "gateway.hello"


def test_a_burst_of_handshakes_admits_exactly_max_clients(gateway_factory) -> None:
    gateway = gateway_factory("--max-clients", "2")
    clients = [RawWs(gateway.ws_url, wait=False) for _ in range(12)]  # all in flight before any answer
    assert [c.wait_response() for c in clients] == [101] * 12
    for c in clients:  # each gets its hello, or a 1013 close before any hello
        c.read_until(lambda m, c=c: len(m) >= 1 or c.close_code is not None, 10)
    admitted = [c for c in clients if c.messages and c.messages[0]["type"] == "gateway.hello"]
    assert all(c.close_code == 1013 and not c.messages for c in clients if c not in admitted)
    status = gateway.status()
    assert len(admitted) == 2 and status["clients"]["count"] == 2
    assert status["clients"]["refused"]["max_clients"] == 10
    for c in clients:
        c.abort()


def test_max_clients_per_address_spares_other_addresses(gateway_factory) -> None:
    gateway = gateway_factory("--max-clients-per-ip", "2")
    a, b = RawWs(gateway.ws_url), RawWs(gateway.ws_url)
    third = RawWs(gateway.ws_url)
    assert (a.status, b.status, third.status) == (101, 101, 101)
    third.read_to_end(10)
    assert third.close_code == 1013 and not third.messages
    other = RawWs(gateway.ws_url, source="127.0.0.2")
    assert other.status == 101
    status = gateway.status()
    assert status["clients"]["refused"]["max_clients_per_ip"] == 1
    assert status["clients"]["count"] == 3 and status["clients"]["addresses"] == 2
    for c in (a, b, other):
        c.close()


def test_inbound_frame_over_the_limit_is_closed_with_1009(gateway_factory) -> None:
    gateway = gateway_factory("--max-frame-bytes", "1024")
    client = RawWs(gateway.ws_url)
    client.send_text(json.dumps({"type": "ping", "pad": "x" * 980}))  # just under: answered
    assert client.read_until(lambda m: len(m) == 2)[1]["type"] == "pong"
    client.send_text("x" * 2000)
    client.read_to_end(10)
    assert client.close_code == 1009
    wait_for(lambda: gateway.status()["clients"]["closed_by_limit"]["frame_too_big"] == 1, 10, "1009 counted")
    wait_for(lambda: limit_logged(gateway, "frame_too_big", 1009), 10, "client.limit_closed logged")


@pytest.mark.parametrize("flood", ["json-pings", "garbage", "protocol-pings"])
def test_a_flooding_client_gets_an_error_then_1008_and_others_are_unaffected(gateway_factory, flood: str) -> None:
    gateway = gateway_factory("--client-msg-rate", "10")
    with connect(gateway.ws_url) as bystander:
        assert recv_json(bystander)["type"] == "gateway.hello"
        abuser = RawWs(gateway.ws_url)
        if flood == "protocol-pings":
            abuser.send_ping(b"x", times=200)
        else:
            abuser.send_text('{"type": "ping"}' if flood == "json-pings" else "garbage", times=200)
        msgs = abuser.read_to_end(10)
        assert abuser.close_code == 1008
        assert msgs[-1] == {"type": "gateway.error", "error": "message rate exceeded"}
        replies = [m for m in msgs[1:-1] if m["type"] in ("pong", "gateway.error")]
        assert flood == "protocol-pings" or 0 < len(replies) < 100, "the burst is answered, not the flood"
        assert gateway.status()["clients"]["closed_by_limit"]["rate_limited"] == 1
        wait_for(lambda: limit_logged(gateway, "rate_limited", 1008), 10, "client.limit_closed logged")
        bystander.send(json.dumps({"type": "ping"}))
        assert recv_json(bystander)["type"] == "pong"
        proc = run_python(emit_script(gateway.ingest, 'em.emit("task.after", payload={})'))
        assert proc.returncode == 0, proc.stderr
        assert recv_json(bystander)["type"] == "task.after"


def test_a_peer_that_never_answers_pings_is_closed(gateway_factory) -> None:
    gateway = gateway_factory("--ping-interval", "2")
    silent = RawWs(gateway.ws_url)  # never reads, so never answers the protocol pings
    wait_for(lambda: gateway.status()["clients"]["count"] == 1, 10, "client joined")
    with connect(gateway.ws_url) as alive:  # the websockets client answers pings: it stays
        wait_for(lambda: gateway.status()["clients"]["closed_by_limit"]["dead_peer"] == 1, 20, "dead peer closed")
        assert gateway.status()["clients"]["count"] == 1 and limit_logged(gateway, "dead_peer", 1006)
        alive.send(json.dumps({"type": "ping"}))
        assert [recv_json(alive)["type"] for _ in range(2)] == ["gateway.hello", "pong"]
    silent.abort()


def test_a_stalled_peer_with_full_buffers_is_released_not_left_half_closed(gateway_factory) -> None:
    gateway = gateway_factory("--slow-client", "drop-oldest", "--ping-interval", "1", "--close-timeout", "1")
    fds = open_fds(gateway.pid)
    stalled = RawWs(gateway.ws_url, rcvbuf=16 << 10)
    proc = run_python(
        emit_script(gateway.ingest, 'for i in range(3000):\n    em.emit("task.fill", payload={"blob": "x" * 1000})')
    )
    assert proc.returncode == 0, proc.stderr
    # The heartbeat gives up, the graceful close cannot drain into a peer that never reads:
    # the socket is aborted close_timeout later and its descriptor released.
    wait_for(lambda: gateway.status()["clients"]["count"] == 0, 15, "stalled client dropped")
    wait_for(lambda: open_fds(gateway.pid) <= fds, 15, "its socket released")
    stalled.abort()


def test_a_connection_that_never_completes_its_request_is_closed(gateway_factory) -> None:
    gateway = gateway_factory("--handshake-timeout", "1")
    idle = socket.create_connection(("127.0.0.1", gateway.port))
    partial = socket.create_connection(("127.0.0.1", gateway.port))
    partial.sendall(b"GET /ws/events HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    started = time.monotonic()
    for s in (idle, partial):
        s.settimeout(10)
        assert s.recv(4096) == b""
    assert time.monotonic() - started < 8
    with connect(gateway.ws_url) as ws:  # a live WebSocket outlasts the handshake timeout
        assert recv_json(ws)["type"] == "gateway.hello"
        time.sleep(1.5)  # longer than --handshake-timeout on purpose: the connection must survive it
        ws.send(json.dumps({"type": "ping"}))
        assert recv_json(ws)["type"] == "pong"


def test_accepted_sockets_have_tcp_keepalive(gateway_factory) -> None:
    gateway = gateway_factory("--tcp-keepalive", "30")
    with connect(gateway.ws_url) as ws:
        assert recv_json(ws)["type"] == "gateway.hello"
        out = subprocess.run(
            ["ss", "-tnoH", "state", "established", f"( sport = :{gateway.port} )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        timers = re.findall(r"timer:\(keepalive,(\d+)sec", out)
        assert timers and all(int(t) <= 30 for t in timers), out


def test_more_filters_than_max_filters_is_refused_with_400_before_the_upgrade(gateway_factory) -> None:
    gateway = gateway_factory("--max-filters", "3")
    with pytest.raises(InvalidStatus) as info:
        connect(gateway.ws_url + "?types=a.*,b.*,c.*&entity=task:x")
    assert info.value.response.status_code == 400
    assert b"too many filters (max 3)" in info.value.response.body
    assert gateway.status()["clients"]["refused"]["bad_request"] == 1
    with connect(gateway.ws_url + "?types=a.*,b.*&entity=task:x") as ws:  # exactly the limit
        assert recv_json(ws)["type"] == "gateway.hello"
