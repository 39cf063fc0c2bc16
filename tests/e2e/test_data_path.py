"""The whole data path with real processes: SDK (another process) → ZeroMQ → gatewayd → WebSocket."""

from __future__ import annotations

import json
import re
import stat
import textwrap

from websockets.sync.client import connect

from tests.conftest import Gateway, run_python, wait_for

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def emit_script(ingest: str, body: str) -> str:
    return (
        textwrap.dedent(
            f"""
        import time
        from emitter_sdk import Emitter
        em = Emitter({ingest!r})
        assert em.wait_subscribed(10), "gateway never subscribed"
        """
        )
        + textwrap.dedent(body)
        + "\nassert em.flush(10)\nem.close()\nprint(em.stats)\n"
    )


def recv_json(ws, timeout: float = 10.0) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def test_event_reaches_websockets_client_with_every_v1_field(gateway: Gateway) -> None:
    with connect(gateway.ws_url) as ws:
        hello = recv_json(ws)
        assert hello == {"type": "gateway.hello", "epoch": hello["epoch"], "seq": 0, "oldest": None}
        result = run_python(
            emit_script(
                gateway.ingest,
                """
                em.emit("task.progress", entity=("task", "task_abc123"),
                        payload={"progress": 42, "message": "Indexing documents"})
                """,
            )
        )
        assert result.returncode == 0, result.stderr
        event = recv_json(ws)
    assert set(event) == {"type", "ts", "source", "entity", "payload", "seq", "id"}
    assert event["type"] == "task.progress"
    assert TS_RE.match(event["ts"]), event["ts"]
    assert event["source"] == "core"
    assert event["entity"] == {"kind": "task", "id": "task_abc123"}
    assert event["payload"] == {"progress": 42, "message": "Indexing documents"}
    assert event["seq"] == 1
    producer, _, pseq = event["id"].partition(":")
    assert re.fullmatch(r"[0-9a-f]{8}", producer) and pseq == "1"


def test_ten_thousand_events_in_order_contiguous(gateway: Gateway) -> None:
    with connect(gateway.ws_url, max_size=None) as ws:
        recv_json(ws)
        proc = run_python(
            emit_script(
                gateway.ingest,
                """
                start = time.monotonic()
                for i in range(10_000):
                    em.emit("task.progress", entity=("task", "t"), payload={"i": i})
                    if i % 100 == 99:  # steady ~10k/s
                        time.sleep(max(0, start + (i + 1) / 10_000 - time.monotonic()))
                """,
            )
        )
        assert proc.returncode == 0, proc.stderr
        got = [recv_json(ws) for _ in range(10_000)]
    assert [e["seq"] for e in got] == list(range(1, 10_001))
    assert [e["payload"]["i"] for e in got] == list(range(10_000))
    assert len({e["id"] for e in got}) == 10_000


def test_garbage_on_ingest_is_counted_and_next_valid_event_arrives(gateway: Gateway) -> None:
    with connect(gateway.ws_url) as ws:
        recv_json(ws)
        proc = run_python(
            textwrap.dedent(
                f"""
                import os, zmq, msgspec
                from emitter_sdk.wire import WireEvent, Entity, ENCODER
                ctx = zmq.Context()
                s = ctx.socket(zmq.XPUB)
                s.setsockopt(zmq.RCVTIMEO, 10_000)
                s.connect({gateway.ingest!r})
                s.recv()  # the gateway's subscription: from here on nothing is dropped
                s.send(os.urandom(64))                                   # not msgpack
                s.send_multipart([b"a", b"b"])                            # wrong frame count
                s.send(msgspec.msgpack.encode({{"type": "x"}}))            # wrong shape
                s.send(ENCODER.encode(WireEvent("Bad Type", "t", "core", None, {{}}, "p1", 1)))
                s.send(ENCODER.encode(WireEvent("gateway.hello", "t", "core", None, {{}}, "p1", 2)))
                s.send(ENCODER.encode(WireEvent("task.x", "t", "core", Entity("", "a"), {{}}, "p1", 3)))
                s.send(ENCODER.encode(WireEvent("task.ok", "t", "core", None, {{"fine": True}}, "p1", 4)))
                s.close(linger=1000); ctx.term()
                """
            )
        )
        assert proc.returncode == 0, proc.stderr
        event = recv_json(ws)
        assert event["type"] == "task.ok" and event["payload"] == {"fine": True}
    events = gateway.status()["events"]
    assert events["accepted"] == 1
    assert events["rejected"] == 6
    by_reason = {k: v for k, v in events["rejected_by_reason"].items() if v}
    assert by_reason == {"decode": 2, "frames": 1, "type": 1, "reserved": 1, "entity": 1}
    assert gateway.proc is not None and gateway.proc.poll() is None


def test_ping_gets_pong_and_anything_else_gets_error(gateway: Gateway) -> None:
    with connect(gateway.ws_url) as ws:
        recv_json(ws)
        ws.send(json.dumps({"type": "ping"}))
        pong = recv_json(ws)
        assert pong["type"] == "pong" and TS_RE.match(pong["ts"])
        ws.send("not json")
        assert recv_json(ws) == {"type": "gateway.error", "error": "message is not JSON"}
        ws.send(json.dumps({"type": "subscribe"}))
        assert recv_json(ws)["type"] == "gateway.error"
        ws.send(b"\x00\x01")
        assert recv_json(ws)["type"] == "gateway.error"


def test_sigterm_closes_clients_with_1001_and_exits_zero(gateway: Gateway) -> None:
    import time

    from websockets.exceptions import ConnectionClosed

    with connect(gateway.ws_url) as ws:
        recv_json(ws)
        started = time.monotonic()
        assert gateway.proc is not None
        gateway.proc.terminate()
        try:
            ws.recv(timeout=5)
            raise AssertionError("expected the connection to close")
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 1001
        assert gateway.proc.wait(5) == 0
        assert time.monotonic() - started < 5
    wait_for(lambda: '"gateway.stopped"' in gateway.logs(), 2, "gateway.stopped log")


def test_ipc_ingest_socket_is_group_writable_only_and_carries_events(gateway_factory, tmp_path) -> None:
    """SPEC/security: an ipc ingest socket is created mode 0660 (owner and the service group; docs/security.md)."""
    path = tmp_path / "ingest.sock"
    gateway = gateway_factory("--ingest", f"ipc://{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    with connect(gateway.ws_url) as ws:
        assert recv_json(ws)["type"] == "gateway.hello"
        result = run_python(emit_script(f"ipc://{path}", 'em.emit("task.started", entity=("task", "ipc"))'))
        assert result.returncode == 0, result.stderr
        event = recv_json(ws)
        assert (event["type"], event["entity"], event["seq"]) == ("task.started", {"kind": "task", "id": "ipc"}, 1)
