"""Shared fixtures: real ``gatewayd`` processes on free loopback ports, and condition waits."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Debian's chromium (``make test`` installs it), driven by playwright in the browser tests.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``cond`` until it returns a truthy value; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Gateway:
    """A running ``gatewayd`` subprocess."""

    args: list[str]
    port: int
    ingest_port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/events"

    @property
    def ingest(self) -> str:
        return f"tcp://127.0.0.1:{self.ingest_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        return [
            str(BIN / "gatewayd"),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--ingest",
            self.ingest,
            "--log-format",
            "json",
            *self.args,
        ]

    def start(self, wait: bool = True) -> Gateway:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log, env=self.env)
        if wait:
            self.wait_healthy()
        return self

    def healthy(self) -> bool:
        try:
            return http_get(self.url + "/healthz", timeout=0.5)[0] == 200
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 15.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"gatewayd exited {self.proc.returncode}: {self.logs()[-2000:]}")
            return self.healthy()

        wait_for(ready, timeout, "gatewayd /healthz")

    def status(self) -> dict[str, Any]:
        import json

        code, body = http_get(self.url + "/status")
        assert code == 200, body
        data: dict[str, Any] = json.loads(body)
        return data

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def restart(self) -> Gateway:
        return self.start()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start gateways with extra args; all are stopped at teardown."""
    started: list[Gateway] = []

    def make(*args: str, start: bool = True, env: dict[str, str] | None = None, **kw: Any) -> Gateway:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("EVENT_GATEWAY_")}
        full_env.update(env or {})
        gw = Gateway(
            list(args),
            kw.pop("port", None) or free_port(),
            kw.pop("ingest_port", None) or free_port(),
            full_env,
            tmp_path / f"gatewayd-{len(started)}.log",
        )
        started.append(gw)
        if start:
            gw.start()
        return gw

    yield make
    for gw in started:
        if gw.proc is not None and gw.proc.poll() is None:
            gw.proc.kill()
            gw.proc.wait()


@pytest.fixture
def gateway(gateway_factory: Callable[..., Gateway]) -> Gateway:
    return gateway_factory()


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, env=full_env, timeout=timeout
    )


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (a separate Core-like process)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=ROOT
    )
