"""Ingest CURVE with real ZeroMQ: only an emitter holding an allowed key pair and the gateway's
public key gets events in; an unkeyed or wrongly keyed emitter gets nothing in, and is counted.
Without a ZAP handler (its thread died) CURVE fails closed: no handshake completes at all."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import zmq
import zmq.auth
from websockets.sync.client import connect
from zmq.utils.monitor import recv_monitor_message

from gateway.ports.curve import CurveServer, load_client_keys, load_server_keypair
from tests.conftest import free_port, run_python
from tests.e2e.test_data_path import recv_json


def test_keyed_emitter_arrives_unkeyed_and_wrongly_keyed_do_not(gateway_factory, tmp_path: Path) -> None:
    keys, clients = tmp_path / "keys", tmp_path / "clients"
    keys.mkdir()
    clients.mkdir()
    _, server_secret = zmq.auth.create_certificates(keys, "gateway")
    client_public, client_secret = zmq.auth.create_certificates(keys, "core")
    _, stranger_secret = zmq.auth.create_certificates(keys, "stranger")
    Path(client_public).rename(clients / "core.key")  # only Core's public key is allowed
    gw = gateway_factory("--curve-key-file", server_secret, "--curve-clients-dir", str(clients))
    script = textwrap.dedent(
        f"""
        import zmq.auth
        from emitter_sdk import Emitter
        server_public, _ = zmq.auth.load_certificate({server_secret!r})
        bad = [
            Emitter({gw.ingest!r}),                                   # no CURVE at all
            Emitter({gw.ingest!r}, curve_server_key=server_public,    # a key the gateway does not know
                    curve_keypair=zmq.auth.load_certificate({stranger_secret!r})),
            Emitter({gw.ingest!r}, curve_server_key=server_public),   # an ephemeral key pair
        ]
        for em in bad:
            em.emit("intruder.sent", payload={{}})
        good = Emitter({gw.ingest!r}, curve_server_key=server_public,
                       curve_keypair=zmq.auth.load_certificate({client_secret!r}))
        assert good.wait_subscribed(10), "the keyed emitter was not let in"
        good.emit("task.started", entity=("task", "a"))
        assert good.flush(10)
        # The bad ones had as long as the good one to connect; none completed a handshake.
        print([em.wait_subscribed(1) for em in bad])
        """
    )
    with connect(gw.ws_url + "?since=0") as ws:
        assert recv_json(ws)["type"] == "gateway.hello"
        proc = run_python(script)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "[False, False, False]"
        event = recv_json(ws)
    assert event["type"] == "task.started" and event["seq"] == 1
    status = gw.status()
    assert status["events"]["accepted"] == 1
    assert status["ingest"]["curve"]["denied"] >= 2  # the two CURVE emitters with unknown keys
    assert gw.stop() == 0  # the ZAP handler stops before the ingest context is terminated


def test_curve_fails_closed_when_the_zap_handler_is_gone(tmp_path: Path) -> None:
    keys, clients = tmp_path / "keys", tmp_path / "clients"
    keys.mkdir()
    clients.mkdir()
    server_public_file, server_secret_file = zmq.auth.create_certificates(keys, "gateway")
    client_public_file, client_secret_file = zmq.auth.create_certificates(keys, "core")
    Path(client_public_file).rename(clients / "core.key")  # an allowed key
    curve = CurveServer(load_server_keypair(server_secret_file), load_client_keys(str(clients)))
    handler_ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    server, client = ctx.socket(zmq.SUB), ctx.socket(zmq.PUB)
    monitor = server.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    try:
        # The ingest socket as Ingest.bind makes it, but no ZAP handler is reachable from its
        # context: the situation after the handler thread died.
        curve.configure(handler_ctx, server)
        port = free_port()
        server.bind(f"tcp://127.0.0.1:{port}")
        client.curve_serverkey = zmq.auth.load_certificate(server_public_file)[0]
        client.curve_publickey, client.curve_secretkey = zmq.auth.load_certificate(client_secret_file)
        client.connect(f"tcp://127.0.0.1:{port}")
        deadline = time.monotonic() + 10
        while not monitor.poll(100):
            assert time.monotonic() < deadline, "no handshake outcome within 10 s"
        assert recv_monitor_message(monitor)["event"] == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    finally:
        server.disable_monitor()
        for sock in (monitor, client, server):
            sock.close(linger=0)
        ctx.term()
        curve.stop()
        handler_ctx.term()


def test_a_readable_curve_secret_key_is_warned_about(gateway_factory, tmp_path: Path) -> None:
    clients = tmp_path / "clients"
    clients.mkdir()
    _, server_secret = zmq.auth.create_certificates(tmp_path, "gateway")
    Path(server_secret).chmod(0o644)
    gw = gateway_factory("--curve-key-file", server_secret, "--curve-clients-dir", str(clients))
    warned = [line for line in gw.logs().splitlines() if '"keys.file_exposed"' in line]
    assert len(warned) == 1 and '"readable_by":"others"' in warned[0].replace(" ", ""), warned
