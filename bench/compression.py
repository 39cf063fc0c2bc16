"""Bytes on the wire with and without permessage-deflate, for the demo stream and the bench payload.

Two raw WebSocket clients on one ``gatewayd`` read the same events at once: one offers
``permessage-deflate``, the other does not.  Each counts every byte its socket received
after the handshake (frames, headers and all).  The events: ``gatewayctl demo``'s
sequence (11 events), then 2,000 events with the bench payload (the load client's
``{"progress": 42, "message": "Indexing documents", "t_us": …}``).
"""

from __future__ import annotations

import base64
import os
import socket
import time
from typing import Any

from emitter_sdk import Emitter
from gateway.ctl.publish import demo_events

BENCH_EVENTS = 2_000


class Counter:
    """A WebSocket client that counts the bytes it receives after the handshake."""

    def __init__(self, port: int, deflate: bool) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if deflate else ""
        self.sock.sendall(
            f"GET /ws/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n".encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.sock.recv(65536)
        head, _, rest = buf.partition(b"\r\n\r\n")
        self.negotiated = b"permessage-deflate" in head.lower()
        self.bytes = len(rest)

    def drain(self, quiet: float = 0.5) -> int:
        """Read until nothing arrives for ``quiet`` seconds; the bytes read since the last drain."""
        self.sock.settimeout(quiet)
        got = 0
        try:
            while chunk := self.sock.recv(1 << 20):
                got += len(chunk)
        except TimeoutError:
            pass
        self.bytes += got
        return got

    def close(self) -> None:
        self.sock.close()


def bench_events(t_us: int) -> list[tuple[str, tuple[str, str], dict[str, Any]]]:
    """The load client's payload, 1 µs apart."""
    payload = {"progress": 42, "message": "Indexing documents"}
    return [("task.progress", ("task", "t1"), {**payload, "t_us": t_us + i}) for i in range(BENCH_EVENTS)]


def measure(port: int, ingest: str) -> dict[str, Any]:
    """Wire bytes per stream for a client that offers deflate and one that does not."""
    clients = {"deflate": Counter(port, True), "plain": Counter(port, False)}
    try:
        for c in clients.values():
            c.drain(0.3)  # the hello
        out: dict[str, Any] = {"negotiated": clients["deflate"].negotiated and not clients["plain"].negotiated}
        with Emitter(ingest) as em:
            if not em.wait_subscribed(10):
                raise RuntimeError("gateway never subscribed")
            for name, events in (
                ("demo", demo_events("demo_bench")),
                ("bench", bench_events(time.time_ns() // 1000)),
            ):
                for type_, entity, payload in events:
                    em.emit(type_, entity=entity, payload=payload)
                em.flush(10)
                got = {k: c.drain() for k, c in clients.items()}
                out[name] = {
                    "events": len(events),
                    "plain_bytes": got["plain"],
                    "deflate_bytes": got["deflate"],
                    "ratio": got["deflate"] / max(1, got["plain"]),
                }
        return out
    finally:
        for c in clients.values():
            c.close()
