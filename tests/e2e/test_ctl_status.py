"""``gatewayctl status`` for operators, against real gateways: healthy, or degraded with the reason.

Degraded (exit 1) after upstream loss in the last minute, while clients are being
dropped for slowness (a raw client that never reads), when the ring turns over
faster than ``ring_horizon`` and after the event loop stalled (the
``EVENT_GATEWAY_TEST_HOOKS`` SIGUSR1 hook); healthy (exit 0) with ordinary traffic.
``--watch`` refreshes until interrupted and exits with the last refresh's code.  Beyond
loopback with ``--auth token``, ``--token`` is what gets the status (401 without it).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
from pathlib import Path

from websockets.sync.client import connect

from emitter_sdk import Emitter
from tests.conftest import BIN, Gateway, http_get, run_cli, wait_for
from tests.rawingest import RawProducer
from tests.rawws import RawWs


def status(gw: Gateway) -> tuple[int, str, list[str]]:
    """Exit code, human output and the degraded reasons (from ``--json``)."""
    human = run_cli("gatewayctl", "status", "--url", gw.url)
    raw = run_cli("gatewayctl", "status", "--url", gw.url, "--json")
    assert raw.returncode == human.returncode, (raw.stdout, human.stdout)
    reasons: list[str] = json.loads(raw.stdout)["degraded_reasons"]
    return human.returncode, human.stdout, reasons


def emit(gw: Gateway, n: int, payload_bytes: int = 0) -> None:
    with Emitter(gw.ingest) as em:
        assert em.wait_subscribed(10)
        for i in range(n):
            em.emit("task.progress", entity=("task", f"t{i % 8}"), payload={"i": i, "blob": "x" * payload_bytes})
        assert em.flush(30)


def test_healthy_with_ordinary_traffic_then_degraded_by_upstream_loss(gateway: Gateway) -> None:
    with connect(gateway.ws_url) as ws:
        json.loads(ws.recv(timeout=10))
        emit(gateway, 20)
        for _ in range(20):
            json.loads(ws.recv(timeout=10))
        wait_for(lambda: gateway.status()["health"]["window_s"] >= 1, 10, "a health sample after the traffic")
        code, out, reasons = status(gateway)
        assert (code, reasons) == (0, []), out
        assert "healthy" in out.splitlines()[0] and "loop lag" in out

        raw = RawProducer(gateway.ingest)
        try:
            raw.send(1)
            raw.send(9)  # 7 events lost upstream
        finally:
            raw.close()
        wait_for(lambda: gateway.status()["upstream_gaps"]["count"] == 1, 10, "the upstream gap")
    code, out, reasons = status(gateway)
    assert code == 1 and len(reasons) == 1 and reasons[0].startswith("upstream loss"), reasons
    assert "7 events missed" in reasons[0]
    assert "DEGRADED: upstream loss" in out.splitlines()[0] and "(7 events missed)" in out.splitlines()[0]


def test_degraded_while_slow_clients_are_dropped(gateway_factory) -> None:
    gw: Gateway = gateway_factory("--client-queue-events", "20", "--client-queue-bytes", "65536")
    stalled = RawWs(gw.ws_url, rcvbuf=4096)
    try:
        assert stalled.status == 101
        for _ in range(40):  # until the stalled client's buffers fill and the policy disconnects it
            emit(gw, 100, payload_bytes=4096)
            if gw.status()["slow_client_disconnects"]:
                break
        wait_for(lambda: gw.status()["health"]["slow_client_disconnects_window"] >= 1, 10, "the drop in the window")
        code, out, reasons = status(gw)
        assert code == 1, out
        assert any(r.startswith("slow clients: 1 disconnected") for r in reasons), reasons
    finally:
        stalled.abort()


def test_degraded_when_the_ring_turns_over_faster_than_the_horizon(gateway_factory) -> None:
    gw: Gateway = gateway_factory("--ring-size", "10", "--ring-horizon", "60")
    emit(gw, 200)
    wait_for(lambda: gw.status()["health"]["ring_turnover_s"] is not None, 10, "ring turnover measured")
    code, _, reasons = status(gw)
    assert code == 1 and any("ring turns over every" in r and "60s resume horizon" in r for r in reasons), reasons
    healthz = http_get(gw.url + "/healthz")  # the daemon's own judgement, in /status and /healthz alike
    assert healthz[0] == 200 and healthz[1].startswith(b"ok, degraded: ") and b"resume horizon" in healthz[1], healthz
    assert any("ring turns over" in r for r in gw.status()["degraded_reasons"])


def test_degraded_after_the_event_loop_stalled(gateway_factory) -> None:
    gw: Gateway = gateway_factory(env={"EVENT_GATEWAY_TEST_HOOKS": "1"})
    assert status(gw)[0] == 0
    gw.proc.send_signal(signal.SIGUSR1)  # blocks the loop for 2 s

    def stall_measured() -> bool:
        code, body = http_get(gw.url + "/status", timeout=10)  # a request may have to wait out the stall
        return code == 200 and json.loads(body)["health"]["loop_lag_recent_max_s"] >= 0.9

    wait_for(stall_measured, 15, "the stall measured")
    code, _, reasons = status(gw)
    assert code == 1 and any(r.startswith("event loop lag") and "limit 500 ms" in r for r in reasons), reasons


def test_watch_refreshes_until_interrupted(gateway: Gateway) -> None:
    proc = subprocess.Popen(
        [str(BIN / "gatewayctl"), "status", "--url", gateway.url, "--watch", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
        # Ctrl-C as at a terminal: a suite started in the background (``make test &``) has
        # SIGINT ignored, and an ignored disposition is inherited across exec.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    frames = 0
    while frames < 3:
        line = proc.stdout.readline()
        assert line, "gatewayctl status --watch stopped by itself"
        frames += line.startswith("event-gateway ")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0


class ForwardingProxy:
    """A one-request-per-connection HTTP proxy on loopback that says the client is ``198.51.100.1``.

    Stands in for nginx in front of a gateway with ``--trusted-proxy 127.0.0.1``: what
    ``gatewayctl`` sends reaches the gateway as from a client beyond loopback.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.headers: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with client, socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                self.headers.append(request)
                line, rest = request.split(b"\r\n", 1)
                upstream.sendall(line + b"\r\nX-Forwarded-For: 198.51.100.1\r\n" + rest)
                while chunk := upstream.recv(65536):  # gatewayctl sends Connection: close
                    client.sendall(chunk)

    def close(self) -> None:
        self.listener.close()


def test_token_reaches_status_beyond_loopback_with_auth_on(gateway_factory, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("good-token\n")
    tokens.chmod(0o600)
    gw: Gateway = gateway_factory("--auth", "token", "--tokens-file", str(tokens), "--trusted-proxy", "127.0.0.1")
    proxy = ForwardingProxy(gw.port)
    url = f"http://127.0.0.1:{proxy.port}"
    try:
        refused = run_cli("gatewayctl", "status", "--url", url)
        assert refused.returncode == 2 and "HTTP 401" in refused.stderr and "--token" in refused.stderr
        assert run_cli("gatewayctl", "status", "--url", url, "--token", "wrong").returncode == 2
        ok = run_cli("gatewayctl", "status", "--url", url, "--token", "good-token")
        assert ok.returncode == 0 and "healthy" in ok.stdout.splitlines()[0], ok.stderr
        env = run_cli("gatewayctl", "status", "--url", url, "--json", env={"EVENT_GATEWAY_TOKEN": "good-token"})
        assert env.returncode == 0 and json.loads(env.stdout)["epoch"] == gw.status()["epoch"]
    finally:
        proxy.close()
    assert all(b"good-token" not in h.split(b"\r\n", 1)[0] for h in proxy.headers)  # never in the URL
