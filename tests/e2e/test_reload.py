"""SIGHUP with options a reload cannot apply: one log line each, and "restart needed" until a restart.

A reload re-reads the whole config but applies only the reloadable options (log level
and format, auth, tokens, keys, origins, CURVE clients); a changed ring size or state
directory keeps its running value, is logged once per option (``gateway.restart_needed``)
and is listed in ``/status`` and ``gatewayctl status`` until the gateway restarts with it
(or the file is changed back and reloaded); systemd's STATUS= line and the
``event_gateway_restart_needed`` gauge say so too.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from gateway.process.config import RELOADABLE, Config, needs_restart
from tests.conftest import Gateway, http_get, run_cli, wait_for
from tests.e2e.test_systemd import FakeSystemd


def restart_lines(gw: Gateway) -> list[dict[str, object]]:
    records = [json.loads(line) for line in gw.logs().splitlines() if line.startswith("{")]
    return [r for r in records if r.get("event") == "gateway.restart_needed"]


def reloads(gw: Gateway) -> int:
    return gw.logs().count('"event": "gateway.reloaded"')


def hup(gw: Gateway) -> None:
    before = reloads(gw)
    assert gw.proc is not None
    gw.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(gw) > before, 10, "gateway.reloaded")


def test_reload_reports_options_that_need_a_restart_until_it_happens(gateway_factory, tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    first = f'ring_size = 100\nstate_dir = "{tmp_path / "a"}"\nlog_level = "info"\n'
    config.write_text(first)
    systemd = FakeSystemd()
    gw: Gateway = gateway_factory("--config", str(config), env={"NOTIFY_SOCKET": systemd.name})
    assert gw.status()["restart_needed"] == []

    changed = f'ring_size = 200\nstate_dir = "{tmp_path / "b"}"\nlog_level = "debug"\n'
    config.write_text(changed)
    hup(gw)
    lines = restart_lines(gw)
    assert [(r["option"], r["running"], r["configured"]) for r in lines] == [
        ("ring_size", 100, 200),
        ("state_dir", str(tmp_path / "a"), str(tmp_path / "b")),
    ]
    assert all(r["level"] == "warning" for r in lines)
    status = gw.status()
    assert status["restart_needed"] == ["ring_size", "state_dir"] and status["ring"]["size"] == 100
    assert "event_gateway_restart_needed 2.0" in http_get(gw.url + "/metrics")[1].decode()
    wait_for(lambda: any("restart needed (ring_size, state_dir)" in v for v in systemd.values("STATUS")), 10, "STATUS=")
    systemd.close()
    ctl = run_cli("gatewayctl", "status", "--url", gw.url)
    assert ctl.returncode == 0, ctl.stdout + ctl.stderr
    assert "restart needed: ring_size, state_dir" in ctl.stdout.splitlines()[0], ctl.stdout

    # A second reload of the same file says it again (one line per option per reload).
    hup(gw)
    assert len(restart_lines(gw)) == 4

    # Changed back: nothing pending any more.
    config.write_text(first)
    hup(gw)
    assert gw.status()["restart_needed"] == [] and len(restart_lines(gw)) == 4
    assert "restart needed" not in run_cli("gatewayctl", "status", "--url", gw.url).stdout

    # Changed again, then restarted: the new values run and nothing is pending.
    config.write_text(changed)
    hup(gw)
    assert gw.status()["restart_needed"] == ["ring_size", "state_dir"]
    assert gw.stop() == 0
    gw.start()
    status = gw.status()
    assert status["restart_needed"] == [] and status["ring"]["size"] == 200
    assert status["state"]["dir"] == str(tmp_path / "b")


def test_needs_restart_flags_every_option_but_the_reloadable_ones() -> None:
    base = Config()
    assert needs_restart(base, base) == []
    assert needs_restart(base, Config(log_level="debug", allow_origin=["https://a.example"])) == []
    assert needs_restart(base, Config(listen="127.0.0.1:1", ingest="ipc:///x", max_clients=5)) == [
        "ingest",
        "listen",
        "max_clients",
    ]
    assert set(Config.__struct_fields__) >= RELOADABLE
