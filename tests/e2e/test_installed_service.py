"""The installed service, started the way its unit starts it, without systemd.

``deploy/install.sh`` stages an install under a temporary ``DESTDIR`` (the venv is built
with the distribution's interpreter even though the python3 first on this test's PATH
is a pyenv build under /root) and checks, as the service user, that ``gatewayd
--version`` runs.  The test then plays systemd: the shipped ``gateway.toml`` with its
paths moved into temporary runtime and state directories (0750, owned by the service
user), the config directory root:group 0750, and the installed ``gatewayd`` run as an
unprivileged uid/gid with the unit's ``UMask=`` and a clean environment.  Users are
numeric ids that exist in no passwd file, so nothing on the machine is changed.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, http_get, wait_for

UNIT = (ROOT / "systemd" / "event-gateway.service").read_text()
UMASK = int(re.search(r"^UMask=(\d+)$", UNIT, re.M).group(1), 8)  # type: ignore[union-attr]


def unused_ids(count: int) -> int:
    """The first of ``count`` consecutive ids that are neither a user nor a group here."""
    first = 61000 + (os.getpid() % 1000) * 4
    while True:
        ids = range(first, first + count)
        if not any(_exists(pwd.getpwuid, i) or _exists(grp.getgrgid, i) for i in ids):
            return first
        first += count


def _exists(lookup: object, ident: int) -> bool:
    try:
        lookup(ident)  # type: ignore[operator]
    except KeyError:
        return False
    return True


@dataclass
class Install:
    base: Path
    venv: Path
    config: Path
    runtime: Path
    state: Path
    port: int
    uid: int  # the service user; its group has the same id
    core: int  # Core's user: own group, plus the service's group
    outsider: int  # neither

    @property
    def socket(self) -> Path:
        return self.runtime / "ingest.sock"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [str(self.venv / "bin" / "gatewayd"), "--config", str(self.config)],
                stdout=out,
                stderr=out,
                env={"PATH": "/usr/bin:/bin"},
                user=self.uid,
                group=self.uid,
                extra_groups=[],
                umask=UMASK,
                cwd="/",
            )

    def run_as(self, uid: int, code: str, groups: list[int]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": "/usr/bin:/bin", "EVENT_GATEWAY_INGEST": f"ipc://{self.socket}"},
            user=uid,
            group=uid,
            extra_groups=groups,
            cwd="/",
        )


@pytest.fixture(scope="module")
def install() -> Iterator[Install]:
    assert os.geteuid() == 0, "the installed-service test plays systemd: run it as root"
    base = Path(tempfile.mkdtemp(prefix="event-gateway-install-", dir="/tmp"))
    base.chmod(0o755)  # the service user must reach its venv, like /opt
    uid = unused_ids(3)
    try:
        # Wheels of this checkout and its dependencies first (from pip's cache), then an
        # install that resolves them offline: twice as fast as letting install.sh ask the index.
        wheels = base / "wheels"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), str(ROOT), "setuptools>=68"],
            check=True,
            capture_output=True,
            timeout=300,
        )
        env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
        env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels))
        env.update(DESTDIR=str(base), SERVICE_USER=str(uid), SERVICE_GROUP=str(uid))
        done = subprocess.run(
            ["sh", str(ROOT / "deploy" / "install.sh")], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "gatewayd, version" in done.stdout and f"runs as user {uid}" in done.stdout, done.stdout
        venv = base / "opt" / "event-gateway" / "venv"
        runtime, state = base / "run" / "event-gateway", base / "var" / "lib" / "event-gateway"
        for directory in (runtime, state):  # RuntimeDirectory=/StateDirectory= with their modes
            directory.mkdir(parents=True)
            os.chown(directory, uid, uid)
            directory.chmod(0o750)
        etc = base / "etc" / "event-gateway"
        config = etc / "gateway.toml"
        port = free_port()
        text = config.read_text().replace("/run/event-gateway", str(runtime))
        config.write_text(text.replace("/var/lib/event-gateway", str(state)) + f'listen = "127.0.0.1:{port}"\n')
        for path in (etc, config):  # what install.sh does outside DESTDIR: chgrp event-gateway
            os.chown(path, 0, uid)
        yield Install(base, venv, config, runtime, state, port, uid, uid + 1, uid + 2)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def private_python(scratch: Path) -> Path:
    """A python3 the service user cannot run: the one first on PATH if it lives in a private
    directory (pyenv under /root here), else a copy of the system one in a 0700 directory."""
    first = Path(os.path.realpath(shutil.which("python3") or "/usr/bin/python3"))
    if any(not d.stat().st_mode & 0o001 for d in first.parents):
        return first
    scratch.mkdir(mode=0o700)
    copy = scratch / "python3"
    shutil.copy2("/usr/bin/python3", copy)
    return copy


def test_install_refuses_a_python_the_service_user_cannot_run() -> None:
    """A venv built from a python3 under /root (0700) cannot be entered: one line, exit 1, at install."""
    base = Path(tempfile.mkdtemp(prefix="event-gateway-install-", dir="/tmp"))
    base.chmod(0o755)
    try:
        env = dict(os.environ, DESTDIR=str(base / "stage"), PYTHON=str(private_python(base / "private")))
        done = subprocess.run(
            ["sh", str(ROOT / "deploy" / "install.sh")], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 1, done.stdout + done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("install.sh:")]
        assert len(errors) == 1 and "cannot run" in errors[0] and "PYTHON=/usr/bin/python3" in errors[0], done.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_installed_gatewayd_runs_as_its_user_with_group_only_ingest(install: Install, tmp_path: Path) -> None:
    assert os.readlink(install.venv / "bin" / "python3") == "/usr/bin/python3"
    log = tmp_path / "gatewayd.log"
    proc = install.start(log)
    try:
        wait_healthy(install, proc, log)
        assert os.stat(f"/proc/{proc.pid}").st_uid == install.uid

        # The ipc socket: srw-rw---- owned by the service user and group, in a 0750 directory.
        st = install.socket.stat()
        assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o660, install.uid, install.uid)

        # Core's user (in the service's group) publishes; a user outside it cannot even connect.
        emit = (
            "from emitter_sdk import Emitter\n"
            "with Emitter() as em:\n"
            "    assert em.wait_subscribed(10)\n"
            "    em.emit('task.progress', entity=('task', 'svc'), payload={'pct': 1})\n"
            "    assert em.flush(10)\n"
        )
        done = install.run_as(install.core, emit, groups=[install.uid])
        assert done.returncode == 0, done.stderr
        wait_for(lambda: status(install)["seq"] == 1, 10, "the event from Core's user")
        probe = (
            "import os, socket\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            "    s.connect(os.environ['EVENT_GATEWAY_INGEST'][len('ipc://'):])\n"
            "except PermissionError:\n"
            "    print('refused')\n"
        )
        assert install.run_as(install.outsider, probe, groups=[]).stdout == "refused\n"
        assert install.run_as(install.core, probe, groups=[install.uid]).stdout == ""

        # State files are the service user's and not world-readable.
        files = [p for p in install.state.rglob("*") if p.is_file()]
        assert files
        for path in files:
            st = path.stat()
            assert st.st_uid == install.uid and st.st_mode & 0o007 == 0, (path, oct(st.st_mode))

        ctl = subprocess.run(
            [str(install.venv / "bin" / "gatewayctl"), "status", "--url", install.url],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ctl.returncode == 0 and "healthy" in ctl.stdout, ctl.stdout + ctl.stderr
        epoch = status(install)["epoch"]

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert '"event": "gateway.stopped"' in log.read_text()

        # A restart continues the same epoch and sequence.
        proc = install.start(log)
        wait_healthy(install, proc, log)
        assert (status(install)["epoch"], status(install)["seq"]) == (epoch, 1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_healthy(install: Install, proc: subprocess.Popen[bytes], log: Path) -> None:
    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"gatewayd exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            return http_get(install.url + "/healthz", timeout=0.5)[0] == 200
        except OSError:
            return False

    wait_for(healthy, 30, "the installed gatewayd's /healthz")


def status(install: Install) -> dict[str, object]:
    import json

    code, body = http_get(install.url + "/status")
    assert code == 200, body
    data: dict[str, object] = json.loads(body)
    return data
