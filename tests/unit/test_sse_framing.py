"""SSE framing of control messages (``gateway.http.sse``), without sockets.

Every ``gateway.gap`` that moves a client's cursor carries ``id: <epoch>:<to>``,
whoever built it: the subscription (resume gaps) or the hub (``slow_client``
gaps under ``drop-oldest``/``coalesce``), so a browser's reconnect resumes after it.
"""

from __future__ import annotations

from typing import Any

from gateway.core.filters import Filter
from gateway.core.protocol import encode as encode_control
from gateway.core.protocol import encode_upstream_gap
from gateway.http.sse import SseSubscriber


class Transport:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False


def subscriber(transport: Any) -> SseSubscriber:
    return SseSubscriber(transport, Filter(), "peer", "ep", None, chunked=False, close_timeout=1.0)


def test_a_range_gap_built_by_the_hub_carries_the_id_of_its_last_seq() -> None:
    sub = subscriber(Transport())
    gap = encode_control({"type": "gateway.gap", "reason": "slow_client", "from": 5, "to": 9})
    assert sub.control_bytes(gap) == b"id: ep:9\nevent: gateway.gap\ndata: " + gap + b"\n\n"


def test_an_upstream_gap_moves_no_cursor_and_carries_no_id() -> None:
    gap = encode_upstream_gap("p1", 3, 12)
    assert subscriber(Transport()).control_bytes(gap) == b"event: gateway.gap\ndata: " + gap + b"\n\n"


def test_send_control_frames_gaps_and_hello_the_same_way() -> None:
    transport = Transport()
    sub = subscriber(transport)
    sub.send_control({"type": "gateway.hello", "epoch": "ep", "seq": 4, "oldest": 1})
    sub.send_control({"type": "gateway.gap", "reason": "evicted", "from": 1, "to": 3})
    assert transport.data.startswith(b"id: ep:4\nevent: gateway.hello\n")
    assert b"id: ep:3\nevent: gateway.gap\n" in transport.data
