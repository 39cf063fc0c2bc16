"""gatewayd under a service manager, with the test acting as systemd, and the unit file itself.

The test owns a datagram socket named in ``NOTIFY_SOCKET`` and sets
``WATCHDOG_USEC``, then checks what a real ``gatewayd`` tells it: READY=1 only once
both ports accept, WATCHDOG=1 at half the watchdog period and only from a running
event loop (blocked through the ``EVENT_GATEWAY_TEST_HOOKS`` SIGUSR1 hook, the
pings stop), STATUS= lines that follow clients and events, RELOADING=1 … READY=1
around SIGHUP with clients kept, STOPPING=1 then close 1001, state flushed and
exit 0 within ``shutdown_grace`` on SIGTERM.  ``systemd-analyze`` verifies the unit and rates
its hardening, and a gatewayd traced with strace through a whole life stays within
the unit's system-call filter, socket families and no-W+X-memory policy.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from emitter_sdk import Emitter
from gateway.process.config import Config
from gateway.process.notify import Notifier
from tests.conftest import BIN, ROOT, Gateway, free_port, http_get, wait_for

UNIT = ROOT / "systemd" / "event-gateway.service"
WATCHDOG_USEC = 1_000_000  # pings due every 0.5 s


class FakeSystemd:
    """The service manager's end of ``NOTIFY_SOCKET``: records every datagram with its arrival time."""

    def __init__(self) -> None:
        self.name = f"@event-gateway-test-{os.getpid()}-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def snapshot(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return list(self.messages)

    def times(self, key: str, since: float = 0.0) -> list[float]:
        return [t for t, m in self.snapshot() if key in m and t >= since]

    def values(self, key: str) -> list[str]:
        return [m[key] for _, m in self.snapshot() if key in m]

    def wait(self, key: str, value: str | None = None, since: float = 0.0, timeout: float = 15.0) -> float:
        """Wait for a datagram carrying ``key`` (``=value``) received after ``since``; returns its time."""

        def seen() -> float | None:
            for t, m in self.snapshot():
                if t >= since and key in m and (value is None or m[key] == value):
                    return t
            return None

        result: float = wait_for(seen, timeout, f"{key}={value or '*'} from gatewayd")
        return result

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


@pytest.fixture
def systemd() -> Iterator[FakeSystemd]:
    fake = FakeSystemd()
    yield fake
    fake.close()


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def logged(gw: Gateway, event: str, **fields: object) -> bool:
    for line in gw.logs().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event and all(record.get(k) == v for k, v in fields.items()):
                return True
    return False


def emit(ingest: str, n: int, event_type: str = "task.progress") -> None:
    with Emitter(ingest) as em:
        assert em.wait_subscribed(10)
        for i in range(n):
            em.emit(event_type, entity=("task", "sd"), payload={"i": i})
        assert em.flush(10)


def test_gatewayd_speaks_sd_notify_from_ready_to_stopping(
    gateway_factory, systemd: FakeSystemd, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('log_level = "info"\n')
    gw: Gateway = gateway_factory(
        "--config",
        str(config),
        "--state-dir",
        str(tmp_path / "state"),
        start=False,
        env={"NOTIFY_SOCKET": systemd.name, "WATCHDOG_USEC": str(WATCHDOG_USEC), "EVENT_GATEWAY_TEST_HOOKS": "1"},
    )
    gw.start(wait=False)

    # READY=1 is sent only once ingest and HTTP are bound: both accept right away.
    ready_at = systemd.wait("READY", "1")
    assert accepts(gw.port) and accepts(gw.ingest_port)
    first = next(m for t, m in systemd.snapshot() if t == ready_at)
    assert first["STATUS"] == "clients 0, 0.0 events/s, seq 0"

    # WATCHDOG=1 every WATCHDOG_USEC / 2 (never later than the watchdog itself).
    wait_for(lambda: len(systemd.times("WATCHDOG")) >= 6, 15, "six watchdog pings")
    pings = systemd.times("WATCHDOG")
    period = statistics.median(b - a for a, b in itertools.pairwise(pings))
    assert 0.4 * WATCHDOG_USEC / 1e6 <= period <= 0.9 * WATCHDOG_USEC / 1e6, pings

    # STATUS= follows clients and events.
    with connect(gw.ws_url) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "gateway.hello"
        emit(gw.ingest, 3)
        for _ in range(3):
            json.loads(ws.recv(timeout=10))
        wait_for(
            lambda: any(
                re.fullmatch(r"clients 1 \(ws 1\), [\d.]+ events/s, seq 3", s) for s in systemd.values("STATUS")
            ),
            15,
            "STATUS with the client and seq 3",
        )

        # SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1; the log level changes, the client stays.
        config.write_text('log_level = "debug"\n')
        hup = time.monotonic()
        gw.proc.send_signal(signal.SIGHUP)
        reloading_at = systemd.wait("RELOADING", "1", since=hup)
        reloading = next(m for t, m in systemd.snapshot() if t == reloading_at)
        assert 0 < int(reloading["MONOTONIC_USEC"]) <= time.monotonic_ns() // 1000
        systemd.wait("READY", "1", since=reloading_at)
        wait_for(lambda: logged(gw, "gateway.reloaded", log_level="debug"), 10, "gateway.reloaded at debug")
        emit(gw.ingest, 1, "task.completed")
        assert json.loads(ws.recv(timeout=10))["type"] == "task.completed"

        # A blocked event loop sends no WATCHDOG=1; the pings resume when it runs again.
        gw.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: logged(gw, "test_hook.loop_blocked"), 10, "the loop to block")
        blocked = time.monotonic()
        systemd.wait("WATCHDOG", "1", since=blocked + 0.2)
        around = systemd.times("WATCHDOG", since=blocked - 3)
        assert max(b - a for a, b in itertools.pairwise(around)) >= 1.5, around

        # SIGTERM: STOPPING=1, close 1001 to the client, exit 0 within shutdown_grace.
        term = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        systemd.wait("STOPPING", "1", since=term)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert gw.proc.wait(Config().shutdown_grace + 5) == 0
        assert time.monotonic() - term <= Config().shutdown_grace + 1.0
    stopping = [m for _, m in systemd.snapshot() if "STOPPING" in m]
    assert len(stopping) == 1 and stopping[0]["STATUS"].startswith("stopping")
    # The state was flushed: a restart (READY=1 again) continues the same epoch and seq.
    restarted = time.monotonic()
    gw.start()
    systemd.wait("READY", "1", since=restarted)
    status = gw.status()
    assert (status["epoch"], status["seq"]) == (hello["epoch"], 4)


def test_notifier_sends_to_a_path_socket_and_is_silent_without_one(tmp_path: Path) -> None:
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        receiver.settimeout(5)
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"})
        assert notifier.enabled and notifier.watchdog_usec == 0  # the watchdog was meant for another process
        notifier.send("READY=1", "STATUS=ok")
        assert receiver.recv(4096) == b"READY=1\nSTATUS=ok"
        notifier.close()
    silent = Notifier.from_environ({})
    assert not silent.enabled
    silent.send("READY=1")  # a no-op, no error
    mine = Notifier.from_environ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
    assert mine.address == "\0x" and mine.watchdog_usec == 2_000_000


def unit_lines() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_declares_notify_watchdog_reload_and_enough_descriptors() -> None:
    unit = unit_lines()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["Restart"] == ["on-failure"] and unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["WatchdogSec"] and unit["CapabilityBoundingSet"] == [""]
    assert int(unit["LimitNOFILE"][0]) >= Config().max_clients + 1000
    stop = float(unit["TimeoutStopSec"][0].rstrip("s"))
    assert stop > Config().shutdown_grace
    config = (ROOT / "deploy" / "gateway.toml").read_text()
    assert "--config /etc/event-gateway/gateway.toml" in unit["ExecStart"][0]
    assert 'ingest = "ipc:///run/event-gateway/ingest.sock"' in config and unit["RuntimeDirectory"] == ["event-gateway"]
    assert 'state_dir = "/var/lib/event-gateway"' in config and unit["StateDirectory"] == ["event-gateway"]
    # the config, tokens and keys live in /etc/event-gateway: a directory the unit names, not only the docs
    assert unit["ConfigurationDirectory"] == ["event-gateway"] and unit["ConfigurationDirectoryMode"] == ["0750"]
    assert 32 <= int(unit["TasksMax"][0]) <= 256  # room for the loop, libzmq, ZAP and the executor; no more


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # Not installed here: point ExecStart at this checkout's gatewayd, change nothing else.
    text = UNIT.read_text()
    installed = "/opt/event-gateway/venv/bin/gatewayd"
    assert text.count(installed) == 1
    unit = tmp_path / "event-gateway.service"
    unit.write_text(text.replace(installed, str(BIN / "gatewayd")))
    result = subprocess.run(
        [analyze(), "verify", "--man=false", str(unit)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_systemd_analyze_security_rates_the_unit_ok_below_2() -> None:
    result = subprocess.run(
        [analyze(), "security", "--offline=true", "--no-pager", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    match = re.search(r"Overall exposure level for event-gateway\.service: ([\d.]+) (\w+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) < 2.0 and match.group(2) == "OK", match.group(0)


def analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze missing: `make test` installs Debian's systemd package"
    return path


def syscall_groups() -> dict[str, list[str]]:
    listing = subprocess.run([analyze(), "syscall-filter", "--no-pager"], capture_output=True, text=True, check=True)
    groups: dict[str, list[str]] = {}
    current: list[str] = []
    for line in listing.stdout.splitlines():
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        if not line.startswith(" "):
            current = groups.setdefault(item, [])
        else:
            current.append(item)
    return groups


def unit_syscalls() -> set[str]:
    """What the unit's ``SystemCallFilter=`` lines allow, in order (first allow-list, then ``~`` removals)."""
    groups = syscall_groups()

    def expand(name: str) -> set[str]:
        return set().union(*(expand(n) for n in groups[name])) if name.startswith("@") else {name}

    allowed: set[str] = set()
    for value in unit_lines()["SystemCallFilter"]:
        names = set().union(*(expand(n) for n in value.lstrip("~").split()))
        allowed = allowed - names if value.startswith("~") else allowed | names
    return allowed


def test_gatewayd_stays_within_the_units_syscall_filter_families_and_memory_policy(tmp_path: Path) -> None:
    """No systemd here to enforce the unit: trace a real gatewayd through its life and check it against it.

    A call the filter refuses gets EPERM under the unit, and some libraries abort on
    that (libzmq does for thread scheduling calls), so every system call made from
    startup through clients, metrics, reload and shutdown must be allowed;
    sockets only of the allowed families; no writable+executable memory.
    """
    strace = shutil.which("strace")
    assert strace, "strace missing: `make test` installs Debian's strace package"
    port, trace = free_port(), tmp_path / "trace"
    ingest = f"ipc://{tmp_path}/ingest.sock"
    command = [str(BIN / "gatewayd"), "--listen", f"127.0.0.1:{port}", "--ingest", ingest, "--log-format", "json"]
    command += ["--state-dir", str(tmp_path / "state")]
    log = tmp_path / "gatewayd.log"
    with log.open("wb") as out:
        tracer = subprocess.Popen([strace, "-f", "-qq", "-o", str(trace), *command], stdout=out, stderr=out)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: tracer.poll() is None and accepts(port) and http_get(url + "/healthz")[0] == 200, 60, "gatewayd"
        )
        daemon = int(Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children").read_text().split()[0])
        with connect(f"ws://127.0.0.1:{port}/ws/events") as ws:
            json.loads(ws.recv(timeout=20))
            sse = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            sse.request("GET", "/sse/events")
            assert sse.getresponse().status == 200
            emit(ingest, 5)
            for _ in range(5):
                json.loads(ws.recv(timeout=20))
            assert http_get(url + "/metrics", timeout=20)[0] == 200 and http_get(url + "/status", timeout=20)[0] == 200
            os.kill(daemon, signal.SIGHUP)
            wait_for(lambda: "gateway.reloaded" in log.read_text(), 20, "the reload")
            os.kill(daemon, signal.SIGTERM)
            assert tracer.wait(30) == 0
            sse.close()
    finally:
        if tracer.poll() is None:
            tracer.kill()
            tracer.wait()
    calls = trace.read_text().splitlines()
    used = {m.group(1) for line in calls if (m := re.match(r"\d+ +([a-z_0-9]+)\(", line))}
    assert {"socket", "bind", "sendto", "epoll_wait"} & used and "exit_group" in used  # the trace is real
    assert used <= unit_syscalls(), sorted(used - unit_syscalls())
    families = {m.group(1) for line in calls if (m := re.search(r" socket(?:pair)?\((AF_[A-Z0-9]+)", line))}
    assert families <= set(unit_lines()["RestrictAddressFamilies"][0].split()), families
    wx = [line for line in calls if re.search(r"(mmap|mprotect)\(.*PROT_WRITE\|PROT_EXEC|mprotect\(.*PROT_EXEC", line)]
    assert unit_lines()["MemoryDenyWriteExecute"] == ["yes"] and not wx, wx[:3]
