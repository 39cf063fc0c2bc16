"""``make cluster-demo``: a whole event-gateway cluster on loopback, then a clean stop.

Starts three ``nats-server`` (JetStream, one cluster, stream replicas 3) and two
gateway nodes, emits ``gatewayctl demo`` into node A's ingest, shows that node B
sequenced the very same events, and keeps running (both monitor pages live) until
Ctrl-C or ``--seconds``.  Everything listens on 127.0.0.1 only; every process it
started is stopped and its temporary directory removed on the way out.

    python deploy/cluster/demo.py [--base 8765] [--seconds N]

Ports from ``--base`` (B): HTTP B, B+1; ingest B+10, B+11; NATS clients B+20..22,
routes B+30..32, monitoring B+40..42.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def nats_config(i: int, base: int, store: Path) -> str:
    routes = ", ".join(f"nats://127.0.0.1:{base + 30 + j}" for j in range(3))
    return (
        f'server_name: "demo-{i + 1}"\nlisten: 127.0.0.1:{base + 20 + i}\nhttp: 127.0.0.1:{base + 40 + i}\n'
        f'max_payload: 8MB\njetstream {{ store_dir: "{store}" }}\n'
        f'cluster {{ name: "demo", listen: 127.0.0.1:{base + 30 + i}, routes: [{routes}] }}\n'
    )


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def busy_port(base: int) -> int | None:
    """The first of the demo's ports that something already listens on (a ``make run`` gateway on 8765 …)."""
    ports = [base, base + 1, base + 10, base + 11]
    ports += [base + offset + i for offset in (20, 30, 40) for i in range(3)]
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no obstacle
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return port
    return None


def wait(what: str, cond: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"cluster-demo: timed out waiting for {what}")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=8765)
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: Ctrl-C)")
    args = parser.parse_args()
    base = args.base
    nats_server = shutil.which("nats-server")
    if nats_server is None:
        raise SystemExit("cluster-demo: nats-server not found (make nats installs Debian's)")
    busy = busy_port(base)
    if busy is not None:  # else a gateway already on the port would answer for a node that never started
        raise SystemExit(
            f"cluster-demo: 127.0.0.1:{busy} is in use (a gateway from make run?): stop it, "
            "or choose other ports: .venv/bin/python deploy/cluster/demo.py --base N"
        )
    tmp = Path(tempfile.mkdtemp(prefix="event-gateway-cluster-demo-"))
    procs: list[subprocess.Popen[bytes]] = []
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        for i in range(3):
            (tmp / f"nats-{i + 1}").mkdir()
            conf = tmp / f"nats-{i + 1}.conf"
            conf.write_text(nats_config(i, base, tmp / f"nats-{i + 1}"))
            log = (tmp / f"nats-{i + 1}.log").open("wb")
            procs.append(subprocess.Popen([nats_server, "-c", str(conf)], stdout=log, stderr=log))
        for i in range(3):
            wait(f"nats-server {i + 1}", lambda i=i: get(f"http://127.0.0.1:{base + 40 + i}/healthz")[0] == 200)
        servers = ",".join(f"nats://127.0.0.1:{base + 20 + i}" for i in range(3))
        nodes = []
        for n in range(2):
            http, ingest = f"127.0.0.1:{base + n}", f"tcp://127.0.0.1:{base + 10 + n}"
            cmd = [str(BIN / "gatewayd"), "--listen", http, "--ingest", ingest]
            cmd += ["--cluster", servers, "--cluster-replicas", "3", "--cluster-stream", "DEMO"]
            log = (tmp / f"gateway-{'ab'[n]}.log").open("wb")
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=log))
            nodes.append((f"http://{http}", ingest))
        for url, _ in nodes:
            wait(f"gateway {url}", lambda url=url: get(url + "/healthz")[0] == 200)
        (url_a, ingest_a), (url_b, _) = nodes
        demo = subprocess.run(
            [str(BIN / "gatewayctl"), "demo", "--url", url_a, "--ingest", ingest_a], capture_output=True, text=True
        )
        if demo.returncode != 0:
            raise SystemExit(f"cluster-demo: gatewayctl demo failed: {demo.stderr.strip()}")

        def seq(url: str) -> int:
            code, body = get(url + "/status")
            return int(json.loads(body)["seq"]) if code == 200 else -1

        wait("the demo events on both nodes", lambda: seq(url_a) == seq(url_b) > 0)
        print(f"cluster-demo: 3 NATS servers ({servers}), stream DEMO, replicas 3")
        print(f"cluster-demo: node A {url_a}/  node B {url_b}/  (monitor pages; same events, same seq {seq(url_b)})")
        print(f"cluster-demo: emit more: gatewayctl demo --ingest {ingest_a} --url {url_a}")
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        print("cluster-demo: running; Ctrl-C stops it" if deadline is None else f"cluster-demo: {args.seconds:g} s")
        while not stop["now"] and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(procs):  # gateways first (SIGTERM: clients get 1001), then NATS
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        print("cluster-demo: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
