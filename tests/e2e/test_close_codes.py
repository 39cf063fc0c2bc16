"""``client.disconnected`` logs the close code the gateway sent, for each way it closes a client.

The jq recipes of docs/operations.md select on ``close_code`` and ``closed_by``: a
revoked token and a message-rate flood are 1008, an inbound frame over the limit 1009,
a client too slow to keep up 1013, shutdown 1001, an expired JWT 1008, a peer that
stops answering protocol pings 1006 (no close frame can reach it) (each ``closed_by`` gateway, with the
reason), and a client that closes itself logs its own code (``closed_by`` client).
Each test reads both ends: the code the client received and the line the gateway wrote.
"""

from __future__ import annotations

import json
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import Gateway, run_python, wait_for
from tests.e2e.test_data_path import emit_script, recv_json
from tests.rawws import RawWs


def disconnected(gw: Gateway) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in gw.logs().splitlines() if '"client.disconnected"' in line]
    return [r for r in records if r.get("event") == "client.disconnected"]


def one_disconnect(gw: Gateway) -> dict[str, Any]:
    return one_disconnect_within(gw, 10)


def one_disconnect_within(gw: Gateway, timeout: float) -> dict[str, Any]:
    records: list[dict[str, Any]] = wait_for(lambda: disconnected(gw), timeout, "client.disconnected")
    assert len(records) == 1, records
    return records[0]


def test_a_client_that_closes_itself_logs_its_own_code(gateway: Gateway) -> None:
    with connect(gateway.ws_url) as ws:
        recv_json(ws)
        ws.close(4001, "bye")
    line = one_disconnect(gateway)
    assert (line["close_code"], line["closed_by"], line["close_reason"]) == (4001, "client", None)


def test_a_revoked_token_is_logged_1008(gateway_factory, tmp_path: Path) -> None:
    token, other = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{token}\n")
    gw: Gateway = gateway_factory("--auth", "token", "--tokens-file", str(tokens))
    with connect(f"{gw.ws_url}?token={token}") as ws:
        recv_json(ws)
        tokens.write_text(f"{other}\n")
        gw.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        with pytest.raises(ConnectionClosed) as info:
            recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    line = one_disconnect(gw)
    assert (line["close_code"], line["closed_by"], line["close_reason"]) == (1008, "gateway", "auth revoked")


def test_a_flooding_client_is_logged_1008(gateway_factory) -> None:
    gw: Gateway = gateway_factory("--client-msg-rate", "5")
    abuser = RawWs(gw.ws_url)
    abuser.send_text('{"type": "ping"}', times=100)
    abuser.read_to_end(10)
    assert abuser.close_code == 1008
    line = one_disconnect(gw)
    assert (line["close_code"], line["closed_by"], line["close_reason"]) == (1008, "gateway", "message rate exceeded")


def test_a_frame_over_the_limit_is_logged_1009(gateway_factory) -> None:
    gw: Gateway = gateway_factory("--max-frame-bytes", "1024")
    client = RawWs(gw.ws_url)
    client.send_text("x" * 4000)
    client.read_to_end(10)
    assert client.close_code == 1009
    line = one_disconnect(gw)
    assert (line["close_code"], line["closed_by"], line["close_reason"]) == (1009, "gateway", "frame too big")


def test_a_client_too_slow_to_keep_up_is_logged_1013(gateway_factory) -> None:
    # --close-timeout: the stalled client gets time to read its backlog and the close frame.
    gw: Gateway = gateway_factory(
        "--client-queue-events", "20", "--client-queue-bytes", "65536", "--close-timeout", "30"
    )
    stalled = RawWs(gw.ws_url, rcvbuf=4096)  # reads nothing after the handshake, until told to
    wait_for(lambda: gw.status()["clients"]["count"] == 1, 10, "the client joined")
    body = 'blob = "x" * 2000\nfor i in range(3000):\n    em.emit("task.progress", payload={"i": i, "blob": blob})\n'
    done = run_python(emit_script(gw.ingest, body))
    assert done.returncode == 0, done.stderr
    wait_for(lambda: gw.status()["slow_client_disconnects"] == 1, 10, "the slow client closed")
    stalled.read_to_end(20)
    assert stalled.close_code == 1013
    line = one_disconnect(gw)
    assert (line["close_code"], line["closed_by"], line["close_reason"]) == (1013, "gateway", "too slow to keep up")


def test_shutdown_is_logged_1001(gateway: Gateway) -> None:
    with connect(gateway.ws_url) as ws:
        recv_json(ws)
        assert gateway.stop() == 0
        with pytest.raises(ConnectionClosed) as info:
            recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    line = one_disconnect(gateway)
    assert (line["close_code"], line["closed_by"], line["close_reason"]) == (1001, "gateway", "gateway shutting down")


def test_an_expired_jwt_is_logged_1008(gateway_factory, tmp_path: Path) -> None:
    key = secrets.token_hex(32).encode()
    (tmp_path / "hs").write_bytes(key)
    gw: Gateway = gateway_factory("--auth", "jwt", "--jwt-key-file", str(tmp_path / "hs"), "--jwt-leeway", "0")
    token = jwt.encode({"sub": "short", "exp": int(time.time()) + 2}, key, "HS256")
    with connect(gw.ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        recv_json(ws)
        with pytest.raises(ConnectionClosed) as info:
            recv_json(ws, timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    line = one_disconnect(gw)
    assert (line["close_code"], line["closed_by"], line["close_reason"]) == (1008, "gateway", "token expired")


def test_a_peer_that_never_answers_pings_is_logged_1006(gateway_factory) -> None:
    gw: Gateway = gateway_factory("--ping-interval", "1")
    silent = RawWs(gw.ws_url)  # never reads, so never answers the protocol pings
    line = one_disconnect_within(gw, 20)
    assert (line["close_code"], line["closed_by"], line["close_reason"]) == (1006, "gateway", "dead peer")
    silent.abort()
