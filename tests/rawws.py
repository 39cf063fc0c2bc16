"""Test helpers for hostile clients: a WebSocket client on a raw socket, and the SPEC coverage check.

:class:`RawWs` completes the handshake with websockets' sans-I/O protocol and
then reads only when told to, so a test can make a client that never reads (its
kernel receive buffer fills and the gateway's writes back up), one that vanishes
without a close frame (:meth:`RawWs.abort`: RST), or one that floods.

:func:`assert_covers` checks the SPEC invariant on what a client received:
event seqs plus ``gateway.gap`` ranges cover every seq after its start, in order.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri


class RawWs:
    """One client connection; nothing is read from the socket unless a method says so."""

    def __init__(
        self,
        url: str,
        *,
        rcvbuf: int | None = None,
        source: str | None = None,
        timeout: float = 10.0,
        wait: bool = True,
    ) -> None:
        uri = parse_uri(url)
        self.proto = ClientProtocol(uri, max_size=None)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((uri.host, uri.port))
        self.messages: list[dict[str, Any]] = []
        self.response: Response | None = None
        self.eof = False
        self.proto.send_request(self.proto.connect())
        self._flush()
        if wait:
            self.wait_response(timeout)

    def wait_response(self, timeout: float = 10.0) -> int:
        """Read the handshake response (sent already by the constructor); returns its status."""
        deadline = time.monotonic() + timeout
        while self.response is None and self.proto.state is State.CONNECTING and self._read_once(deadline):
            pass
        return self.status

    @property
    def status(self) -> int:
        assert self.response is not None
        return self.response.status_code

    @property
    def close_code(self) -> int | None:
        """The code of the close frame received from the gateway, if one was."""
        rcvd = self.proto.close_rcvd
        return None if rcvd is None else rcvd.code

    def _flush(self) -> None:
        data = b"".join(self.proto.data_to_send())  # one send: what was queued arrives together
        if data:
            try:
                self.sock.sendall(data)
            except OSError:
                return

    def _read_once(self, deadline: float) -> bool:
        """Read what is there (waiting until ``deadline``); False at EOF or timeout."""
        if self.eof:
            return False
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            return False
        except ConnectionResetError:
            data = b""
        if data:
            self.proto.receive_data(data)
        else:
            self.eof = True
            self.proto.receive_eof()
        for event in self.proto.events_received():
            if isinstance(event, Response):
                self.response = event
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.messages.append(json.loads(event.data))
        self._flush()  # pongs and the close reply, once this client reads at all
        return not self.eof

    def read_until(self, cond: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Read until ``cond(messages)`` holds, the connection ends, or the deadline passes."""
        deadline = time.monotonic() + timeout
        while not cond(self.messages) and time.monotonic() < deadline and self._read_once(deadline):
            pass
        return self.messages

    def read_to_end(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Read until the gateway closes (close frame or EOF)."""
        return self.read_until(lambda _: self.proto.close_rcvd is not None or self.eof, timeout)

    def send_text(self, text: str, times: int = 1) -> None:
        for _ in range(times):
            self.proto.send_text(text.encode())
        self._flush()

    def send_ping(self, data: bytes = b"", times: int = 1) -> None:
        for _ in range(times):
            self.proto.send_ping(data)
        self._flush()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        """A polite close: close frame, then FIN."""
        self.proto.send_close(1000)
        self._flush()
        self.sock.close()

    def abort(self) -> None:
        """Vanish without a close frame: the kernel sends RST (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def assert_covers(messages: list[dict[str, Any]], start: int, end: int) -> list[int]:
    """SPEC invariant: events and gap ranges cover ``start+1 .. end`` in order; returns the event seqs.

    ``messages`` is what one unfiltered client received after ``gateway.hello``
    (control messages other than seq-range gaps are ignored).
    """
    expected = start + 1
    seqs: list[int] = []
    for m in messages:
        if m.get("type") == "gateway.gap" and "from" in m:
            assert m["from"] == expected, f"gap {m} does not start at {expected}"
            expected = m["to"] + 1
        elif "seq" in m and not m.get("type", "").startswith("gateway."):
            assert m["seq"] == expected, f"event seq {m['seq']} where {expected} was due"
            seqs.append(m["seq"])
            expected += 1
    assert expected == end + 1, f"covered up to {expected - 1}, not {end}"
    return seqs
