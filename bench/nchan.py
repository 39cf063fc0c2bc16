"""Nchan as ``make bench``'s same-run reference for fixed-rate fan-out, where it is installed.

Debian's ``nginx`` with ``libnginx-mod-nchan`` (``apt-get install nginx
libnginx-mod-nchan``; without them the Nchan columns read "not installed"): one
worker, one channel, WebSocket subscribers at ``/sub``, an HTTP publisher at
``/pub``.  The same load client (``bench/client/load.js``) reads it as it reads the
gateway; the publisher (``python -m bench.nchan publish``) POSTs, paced like
``bench.publisher``, the JSON a gateway client would receive (``seq`` counts from 1
and the payload carries ``t_us``), pipelined on one keep-alive connection.
Server CPU is nginx's master and worker, as for ``gatewayd`` it is the gateway
process.  Loopback only; bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
ROOT = Path(__file__).resolve().parent.parent

CONF = """\
load_module {module};
worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests 100000000;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location = /pub {{ nchan_publisher; nchan_channel_id bench; nchan_message_buffer_length 1000; }}
    location = /sub {{ nchan_subscriber websocket; nchan_channel_id bench; }}
  }}
}}
"""


def available() -> bool:
    return shutil.which("nginx") is not None and MODULE.exists()


class Nchan:
    """One nginx + Nchan on a free loopback port, its files in ``workdir``."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.dir = workdir / f"nchan-{port}"
        self.dir.mkdir()
        self.port = port
        self.ws_url = f"ws://127.0.0.1:{port}/sub"
        self.pub_url = f"http://127.0.0.1:{port}/pub"
        conf = self.dir / "nginx.conf"
        conf.write_text(CONF.format(module=MODULE, dir=self.dir, port=port))
        cmd = ["nginx", "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "error.log")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {(self.dir / 'error.log').read_text()[-500:]}")
            time.sleep(0.05)

    def _listening(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            conn.request("GET", "/")
            conn.getresponse().read()
            return True
        except OSError:
            return False

    def pids(self) -> list[int]:
        """nginx's master and its workers."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [self.proc.pid, *(int(p) for p in children.read_text().split())]
        except OSError:
            return [self.proc.pid]

    def wait_clients(self, n: int) -> None:
        """Nchan has no client count to wait for: the load client's "ready" is the signal."""

    def publish(self, rate: float, duration: float, **_flow: str | int) -> dict[str, Any]:
        """The HTTP publisher in its own process (fixed rates only)."""
        cmd = [sys.executable, "-m", "bench.nchan", "publish", "--url", self.pub_url, "--rate", str(rate)]
        cmd += ["--duration", str(duration)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=duration + 60)
        data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        if "error" in data:
            raise RuntimeError(f"nchan publisher: {data['error']}")
        return data

    def counters(self) -> dict[str, Any]:
        return {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def nchan(workdir: Path, port: int) -> Iterator[Nchan]:
    server = Nchan(workdir, port)
    try:
        yield server
    finally:
        server.stop()


def publish(url: str, rate: float, duration: float) -> dict[str, Any]:
    """POST events at ``rate``/s for ``duration`` s (open loop, catching up when late), pipelined.

    Requests go out on one keep-alive connection without waiting for answers (Nchan
    answers a publish after its fan-out, which at 1,000 subscribers takes longer than
    the gap between events); a reader thread counts the 2xx answers.
    """
    host, _, path = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    sock = socket.create_connection((name, int(port)), timeout=10)
    answered = [0, 0]  # 2xx, other

    def read() -> None:
        tail = b""
        while chunk := sock.recv(1 << 16):
            data = tail + chunk
            answered[0] += data.count(b"HTTP/1.1 20")
            answered[1] += data.count(b"HTTP/1.1 ") - data.count(b"HTTP/1.1 20")
            tail = data[-16:]
            answered[0] -= tail.count(b"HTTP/1.1 20")
            answered[1] -= tail.count(b"HTTP/1.1 ") - tail.count(b"HTTP/1.1 20")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    event = {"type": "task.progress", "source": "core", "entity": {"kind": "task", "id": "t1"}}
    head = f"POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: "
    sent = 0
    t0 = time.perf_counter()
    start_us = time.time_ns() // 1000
    while (now := time.perf_counter()) < t0 + duration:
        due = t0 + sent / rate
        if now < due:
            time.sleep(due - now)
            continue
        sent += 1
        payload = {"progress": 42, "message": "Indexing documents", "t_us": time.time_ns() // 1000}
        body = json.dumps({**event, "payload": payload, "seq": sent}, separators=(",", ":")).encode()
        sock.sendall(f"{head}{len(body)}\r\n\r\n".encode() + body)
    elapsed = time.perf_counter() - t0
    deadline = time.monotonic() + 30
    while sum(answered) < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    sock.close()
    if answered[1] or answered[0] < sent:
        return {"error": f"{answered[0]} of {sent} publishes answered 2xx"}
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "queued": sent,
        "dropped": 0,
        "elapsed_s": elapsed,
        "start_us": start_us,
        "eps": sent / elapsed,
        "cpu_s": ru.ru_utime + ru.ru_stime,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("role", choices=("publish",))
    ap.add_argument("--url", required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--duration", type=float, default=10.0)
    a = ap.parse_args(argv)
    print(json.dumps(publish(a.url, a.rate, a.duration)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
