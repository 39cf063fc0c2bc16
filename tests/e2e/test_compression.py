"""permessage-deflate on real sockets: negotiated when offered, one compressed frame per event and window.

Three readers of the same ring at once: the ``websockets`` client (it offers the
extension and inflates with its own implementation), the same client not offering it,
and a raw socket that reads frames byte for byte, so the test sees RSV1 on the wire
and counts the bytes.  Payload sizes put the plain and the compressed frames on both
sides of the 125/126 and 64 KiB length boundaries, with compressible and barely
compressible content; a burst drained while the gateway was stopped arrives in
batched writes (``tests/e2e/test_batched_frames.py``).  Chromium's side is
``tests/browser/test_compression.py``.
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import struct
import time
import zlib
from typing import Any

from websockets.sync.client import ClientConnection, connect

from emitter_sdk import Emitter
from tests.conftest import Gateway
from tests.e2e.test_batched_frames import BURST, assert_whole_burst, burst_while_stopped

OFFER = "permessage-deflate; client_max_window_bits"


def blob(size: int, seed: int) -> str:
    """Hex digits: compresses to about half, so compressed frames land near the plain ones' sizes / 2."""
    rng = random.Random(seed)
    return "".join(rng.choice("0123456789abcdef") for _ in range(size))


#: Payload ``blob`` lengths: small; plain and compressed frames around 125/126 and
#: 65535/65536 bytes (hex compresses ~2:1, so both kinds of boundary are crossed); large.
SIZES = (0, 20, 60, 110, 200, 240, 260, 65_200, 65_600, 131_000, 131_200, 400_000)


class RawFrames:
    """A WebSocket client on a plain socket: handshake (offering deflate or not), then raw frames."""

    def __init__(self, gateway: Gateway, offer: str | None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
        self.sock.sendall(
            (
                f"GET /ws/events HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
            ).encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.headers = head.decode().lower()
        self.wire_bytes = len(self.buf)

    def _need(self, n: int, deadline: float) -> None:
        while len(self.buf) < n:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(1 << 20)
            assert chunk, "connection closed"
            self.wire_bytes += len(chunk)
            self.buf += chunk

    def frame(self, timeout: float = 15.0) -> tuple[bool, dict[str, Any]]:
        """The next frame: (RSV1 set, its JSON, inflated when compressed)."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        first, second = self.buf[0], self.buf[1]
        assert first & 0x80 and first & 0x0F == 0x1 and not second & 0x80, "FIN text frame, unmasked"
        n, at = second & 0x7F, 2
        if n == 126:
            self._need(4, deadline)
            (n,) = struct.unpack("!H", self.buf[2:4])
            at = 4
            assert n >= 126, "shortest length form"
        elif n == 127:
            self._need(10, deadline)
            (n,) = struct.unpack("!Q", self.buf[2:10])
            at = 10
            assert n >= 65536, "shortest length form"
        self._need(at + n, deadline)
        payload, self.buf = self.buf[at : at + n], self.buf[at + n :]
        compressed = bool(first & 0x40)
        if compressed:  # a fresh inflater per message: server_no_context_takeover
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        return compressed, json.loads(payload)

    def close(self) -> None:
        self.sock.close()


def emit_sizes(gateway: Gateway) -> None:
    with Emitter(gateway.ingest) as em:
        assert em.wait_subscribed(10)
        for i, size in enumerate(SIZES):
            assert em.emit("task.progress", entity=("task", "t1"), payload={"i": i, "blob": blob(size, i)})
        assert em.flush(10)


def read_events(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    return [json.loads(ws.recv(timeout=15)) for _ in range(n)]


def test_offered_deflate_is_negotiated_and_every_size_reads_back_plain_clients_share_the_ring(
    gateway: Gateway,
) -> None:
    with (
        connect(gateway.ws_url, max_size=None, open_timeout=10) as zws,
        connect(gateway.ws_url, max_size=None, open_timeout=10, compression=None) as pws,
    ):
        ext = zws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in ext and "server_no_context_takeover" in ext
        assert pws.response.headers.get("Sec-WebSocket-Extensions") is None
        zraw, praw = RawFrames(gateway, OFFER), RawFrames(gateway, None)
        try:
            assert "permessage-deflate; server_no_context_takeover" in zraw.headers
            assert "sec-websocket-extensions" not in praw.headers
            for conn in (zws, pws):
                assert json.loads(conn.recv(timeout=10))["type"] == "gateway.hello"
            zhello, phello = zraw.frame(), praw.frame()
            assert zhello == (False, phello[1]) and phello[1]["type"] == "gateway.hello"  # control: never compressed
            emit_sizes(gateway)
            zevents, pevents = read_events(zws, len(SIZES)), read_events(pws, len(SIZES))
            zframes = [zraw.frame() for _ in SIZES]
            pframes = [praw.frame() for _ in SIZES]
        finally:
            zraw.close()
            praw.close()
    expected = [blob(size, i) for i, size in enumerate(SIZES)]
    for events in (zevents, pevents, [f[1] for f in zframes], [f[1] for f in pframes]):
        assert [e["payload"]["blob"] for e in events] == expected
        assert [e["seq"] for e in events] == list(range(1, len(SIZES) + 1))
    assert not any(compressed for compressed, _ in pframes)
    # Every event big enough to shrink went out compressed, and the wire carried far less.
    assert all(compressed for (compressed, _), size in zip(zframes, SIZES, strict=True) if size >= 60)
    assert zraw.wire_bytes < 0.7 * praw.wire_bytes


def test_compressed_batched_frames_read_back_whole(gateway: Gateway) -> None:
    with connect(gateway.ws_url, max_size=None, open_timeout=10) as ws:
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
        raw = RawFrames(gateway, OFFER)
        try:
            assert json.loads(ws.recv(timeout=10))["type"] == "gateway.hello"
            assert raw.frame()[1]["type"] == "gateway.hello"
            burst_while_stopped(gateway)
            events = read_events(ws, BURST)
            frames = [raw.frame() for _ in range(BURST)]
        finally:
            raw.close()
    assert_whole_burst(gateway, events)
    assert [f[1] for f in frames] == events
    assert all(compressed for compressed, _ in frames)


def test_compression_off_declines_the_offer(gateway_factory: Any) -> None:
    gw = gateway_factory("--compression", "off")
    with connect(gw.ws_url, max_size=None, open_timeout=10) as ws:
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        raw = RawFrames(gw, OFFER)
        try:
            assert "sec-websocket-extensions" not in raw.headers
            assert json.loads(ws.recv(timeout=10))["type"] == "gateway.hello"
            raw.frame()
            emit_sizes(gw)
            events = read_events(ws, len(SIZES))
            frames = [raw.frame() for _ in SIZES]
        finally:
            raw.close()
    assert [e["payload"]["blob"] for e in events] == [blob(size, i) for i, size in enumerate(SIZES)]
    assert not any(compressed for compressed, _ in frames)
