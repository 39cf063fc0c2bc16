"""gatewayctl and gatewayd's command line against real processes."""

from __future__ import annotations

import json
import subprocess

import click

from tests.conftest import BIN, Gateway, free_port, run_cli, wait_for


def test_status_summary_json_and_unreachable(gateway: Gateway) -> None:
    human = run_cli("gatewayctl", "status", "--url", gateway.url)
    assert human.returncode == 0, human.stderr
    assert "healthy" in human.stdout and "epoch" in human.stdout and "clients" in human.stdout
    raw = run_cli("gatewayctl", "status", "--url", gateway.url, "--json")
    assert raw.returncode == 0
    data = json.loads(raw.stdout)
    assert data["seq"] == 0 and data["ring"]["size"] == 10_000 and data["degraded_reasons"] == []
    down = run_cli("gatewayctl", "status", "--url", f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 2
    assert len(down.stderr.strip().splitlines()) == 1 and "unreachable" in down.stderr


def test_check_passes_against_gateway_and_names_failing_step(gateway: Gateway) -> None:
    ok = run_cli("gatewayctl", "check", "--url", gateway.url, "--ingest", gateway.ingest)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "delivery" in ok.stdout
    wrong_ingest = run_cli("gatewayctl", "check", "--url", gateway.url, "--ingest", f"tcp://127.0.0.1:{free_port()}")
    assert wrong_ingest.returncode == 1
    assert "step ingest" in wrong_ingest.stderr
    no_gateway = run_cli("gatewayctl", "check", "--url", f"http://127.0.0.1:{free_port()}")
    assert no_gateway.returncode == 1 and "step healthz" in no_gateway.stderr


def test_emit_demo_and_tail(gateway: Gateway) -> None:
    emitted = run_cli(
        "gatewayctl",
        "emit",
        "task.failed",
        "--entity",
        "task:x",
        "--payload",
        '{"error": "boom"}',
        "--ingest",
        gateway.ingest,
    )
    assert emitted.returncode == 0, emitted.stderr
    demo = run_cli("gatewayctl", "demo", "--delay", "0", "--ingest", gateway.ingest, "--url", gateway.url)
    assert demo.returncode == 0, demo.stderr
    tailed = run_cli("gatewayctl", "tail", "--url", gateway.url, "--since", "0", "--count", "12", "--timeout", "10")
    assert tailed.returncode == 0, tailed.stderr
    lines = [json.loads(line) for line in tailed.stdout.splitlines()]
    events = [e for e in lines if not e["type"].startswith("gateway.")]
    assert events[0]["type"] == "task.failed" and events[0]["payload"] == {"error": "boom"}
    types = [e["type"] for e in events[1:]]
    assert types[:7] == ["task.started"] + ["task.progress"] * 5 + ["task.completed"]
    assert types[7:] == [
        "provider.status_changed",
        "selfcheck.started",
        "selfcheck.progress",
        "selfcheck.completed",
    ]
    assert [e["payload"]["progress"] for e in events[2:7]] == [0, 25, 50, 75, 100]
    filtered = run_cli(
        "gatewayctl",
        "tail",
        "--url",
        gateway.url,
        "--since",
        "0",
        "--types",
        "selfcheck.*",
        "--count",
        "3",
        "--timeout",
        "10",
    )
    got = [json.loads(line)["type"] for line in filtered.stdout.splitlines()]
    assert got[1:] == ["selfcheck.started", "selfcheck.progress", "selfcheck.completed"]


def test_bad_option_exits_before_binding_with_one_line(gateway_factory) -> None:
    port = free_port()
    bad = subprocess.run(
        [str(BIN / "gatewayd"), "--listen", f"127.0.0.1:{port}", "--ring-size", "zero"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0 and "--ring-size" in bad.stderr
    env = subprocess.run(
        [str(BIN / "gatewayd"), "--listen", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=20,
        env={"EVENT_GATEWAY_SLOW_CLIENT": "explode", "PATH": ""},
    )
    assert env.returncode != 0 and "--slow-client" in env.stderr and "EVENT_GATEWAY_SLOW_CLIENT" in env.stderr


def test_port_in_use_is_one_clear_line(gateway: Gateway, gateway_factory) -> None:
    second = gateway_factory(port=gateway.port, start=False)
    second.start(wait=False)
    assert second.proc is not None
    assert second.proc.wait(15) == 1
    text = second.logs().strip()
    assert text.count("\n") == 0 and "cannot listen" in text and "in use" in text
    assert gateway.healthy()


def test_every_gatewayctl_option_has_help_and_help_names_the_env_variables() -> None:
    from click.testing import CliRunner

    from gateway.ctl.cli import main as ctl

    for name, command in ctl.commands.items():  # type: ignore[attr-defined]
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"gatewayctl {name} {param.opts[0]} has no help text"
        assert "--url" in [opt for p in command.params for opt in p.opts], f"gatewayctl {name} has no --url"
    out = CliRunner().invoke(ctl, ["--help"]).output
    assert "EVENT_GATEWAY_URL" in out and "EVENT_GATEWAY_INGEST" in out
    emit_help = CliRunner().invoke(ctl, ["emit", "--help"]).output
    assert "EVENT_GATEWAY_URL" in emit_help and "EVENT_GATEWAY_INGEST" in emit_help


def test_both_commands_tell_their_version() -> None:
    from gateway import __version__

    for command in ("gatewayd", "gatewayctl"):
        shown = run_cli(command, "--version")
        assert shown.returncode == 0 and shown.stdout == f"{command}, version {__version__}\n", shown


def test_emit_takes_url_and_names_it_when_nothing_subscribes(gateway: Gateway) -> None:
    ok = run_cli("gatewayctl", "emit", "task.started", "--url", gateway.url, "--ingest", gateway.ingest)
    assert ok.returncode == 0, ok.stderr
    wait_for(lambda: gateway.status()["events"]["accepted"] == 1, what="the emitted event")
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    failed = run_cli("gatewayctl", "emit", "task.started", "--url", gateway.url, "--ingest", nowhere)
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and nowhere in failed.stderr and gateway.url in failed.stderr


def test_emit_refuses_bad_arguments_with_exit_2(gateway: Gateway) -> None:
    for args in (["Task.Started"], ["task.x", "--payload", '{"a": NaN}'], ["task.x", "--payload", "[1]"]):
        bad = run_cli("gatewayctl", "emit", *args, "--ingest", gateway.ingest)
        assert bad.returncode == 2 and "Usage:" in bad.stderr, (args, bad.stderr)
    assert gateway.status()["events"]["accepted"] == 0  # NaN was not sent on as null


def test_tail_into_head_exits_quietly_on_broken_pipe(gateway: Gateway) -> None:
    from emitter_sdk import Emitter

    pipeline = subprocess.Popen(
        ["bash", "-o", "pipefail", "-c", f"{BIN / 'gatewayctl'} tail --url {gateway.url} | head -n 1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Emitter(gateway.ingest) as em:
            assert em.wait_subscribed(10)
            # tail writes the hello, head exits after it; the next event's write meets the closed pipe.
            wait_for(lambda: em.emit("task.progress") and pipeline.poll() is not None, what="tail to stop")
        out, err = pipeline.communicate(timeout=10)
    finally:
        if pipeline.poll() is None:
            pipeline.kill()
    assert json.loads(out)["type"] == "gateway.hello"
    assert err == "" and pipeline.returncode == 0


class SilentGateway:
    """A real server that answers ``/healthz`` and completes the WebSocket upgrade, then says nothing."""

    def __init__(self) -> None:
        import threading

        from websockets.datastructures import Headers
        from websockets.http11 import Response
        from websockets.sync.server import serve

        def healthz(connection: object, request: object) -> Response | None:
            if getattr(request, "path", "") == "/healthz":
                return Response(200, "OK", Headers({"Content-Length": "3"}), b"ok\n")
            return None

        self.port = free_port()
        self.done = threading.Event()
        self.server = serve(lambda ws: self.done.wait(30), "127.0.0.1", self.port, process_request=healthz)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.done.set()
        self.server.shutdown()
        self.thread.join(10)


def test_check_names_the_websocket_step_when_hello_never_arrives() -> None:
    silent = SilentGateway()
    try:
        result = run_cli("gatewayctl", "check", "--url", f"http://127.0.0.1:{silent.port}")
    finally:
        silent.close()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "FAIL websocket" in result.stdout and "no gateway.hello within 5s" in result.stdout
    assert result.stderr.strip() == "gatewayctl: check failed at step websocket"


def test_check_against_a_full_gateway_names_the_websocket_step_and_the_close(gateway_factory) -> None:
    from websockets.sync.client import connect

    gateway = gateway_factory("--max-clients", "1")
    with connect(gateway.ws_url) as holder:
        holder.recv(timeout=10)  # its hello: the one slot is taken
        result = run_cli("gatewayctl", "check", "--url", gateway.url, "--ingest", gateway.ingest)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "FAIL websocket" in result.stdout and "closed 1013 over capacity (max_clients)" in result.stdout
    assert result.stderr.strip() == "gatewayctl: check failed at step websocket"
