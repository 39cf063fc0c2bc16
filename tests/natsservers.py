"""Real ``nats-server`` processes (Debian's package) for the cluster tests: JetStream on loopback.

:func:`start_servers` starts one server, or ``n`` servers routed into one JetStream
cluster (for replicas 3), each with its own temp store directory, client port and
monitoring port on 127.0.0.1.  Readiness is waited on (``/healthz`` of every
server), never slept for.  Every process is killed by :meth:`NatsCluster.close`.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port, http_get, wait_for

NATS_SERVER = shutil.which("nats-server") or "/usr/bin/nats-server"


@dataclass
class NatsServer:
    """One ``nats-server`` subprocess and its ports."""

    name: str
    port: int
    monitor_port: int
    cluster_port: int
    config_path: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([NATS_SERVER, "-c", str(self.config_path)], stdout=log, stderr=log)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        if not self.running():
            return False
        try:
            return http_get(f"http://127.0.0.1:{self.monitor_port}/healthz", timeout=0.5)[0] == 200
        except OSError:
            return False

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill9()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class NatsCluster:
    """One or more JetStream servers; ``urls`` is what ``--cluster`` takes."""

    servers: list[NatsServer] = field(default_factory=list)

    @property
    def urls(self) -> str:
        return ",".join(s.url for s in self.servers)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        wait_for(lambda: all(s.healthy() for s in self.servers if s.running()), timeout, "nats-server /healthz")

    def close(self) -> None:
        for server in self.servers:
            server.kill9()


def server_config(server: NatsServer, store_dir: Path, routes: list[int]) -> str:
    lines = [
        f'server_name: "{server.name}"',
        f"listen: 127.0.0.1:{server.port}",
        f"http: 127.0.0.1:{server.monitor_port}",
        "max_payload: 8MB",
        "jetstream {",
        f'  store_dir: "{store_dir}"',
        "  max_memory_store: 256MB",
        "  max_file_store: 2GB",
        "}",
    ]
    if routes:
        lines += [
            "cluster {",
            '  name: "egw"',
            f"  listen: 127.0.0.1:{server.cluster_port}",
            "  routes: [" + ", ".join(f"nats://127.0.0.1:{p}" for p in routes) + "]",
            "}",
        ]
    return "\n".join(lines) + "\n"


def start_servers(tmp_path: Path, n: int = 1) -> NatsCluster:
    """Start ``n`` JetStream servers (clustered when ``n > 1``) and wait until all are healthy."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    cluster = NatsCluster()
    for i in range(n):
        name = f"n{i + 1}"
        cluster.servers.append(
            NatsServer(
                name,
                free_port(),
                free_port(),
                free_port(),
                tmp_path / f"{name}.conf",
                tmp_path / f"{name}.log",
            )
        )
    cluster_ports = [s.cluster_port for s in cluster.servers] if n > 1 else []
    for server in cluster.servers:
        store = tmp_path / f"{server.name}-store"
        store.mkdir()
        routes = [p for p in cluster_ports if p != server.cluster_port]
        server.config_path.write_text(server_config(server, store, routes))
        server.start()
    try:
        cluster.wait_healthy()
    except AssertionError:
        cluster.close()
        raise
    return cluster
