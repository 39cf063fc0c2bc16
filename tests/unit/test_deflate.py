"""``gateway.deflate`` without sockets: compressed frames decoded by websockets' own extension.

websockets' ``PerMessageDeflate`` (an independent RFC 7692 implementation) inflates
every frame, configured as a client that accepted ``server_no_context_takeover``: it
resets its inflater before each message, so a frame that leaned on an earlier
message's history would fail to decode.  Frame lengths are pinned at the RFC 6455
boundaries of the *compressed* payload (125/126, 65535/65536).
"""

from __future__ import annotations

import json
import random
from collections.abc import Generator

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from gateway.core.deflate import deflate, deflate_frame, extension_header
from gateway.core.entries import build_entry
from gateway.core.filters import Filter
from gateway.core.protocol import ws_frame
from gateway.core.ring import Ring
from gateway.engine.fanout import Hub
from gateway.http.ws import DeflateWsSubscriber, WsSubscriber


def client_extension(wbits: int) -> PerMessageDeflate:
    return PerMessageDeflate(
        remote_no_context_takeover=True,
        local_no_context_takeover=False,
        remote_max_window_bits=wbits,
        local_max_window_bits=15,
    )


def read_frames(data: bytes, ext: PerMessageDeflate) -> list[Frame]:
    """Every frame in ``data``, decoded by websockets (RSV1 frames inflated by ``ext``)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        gen: Generator[None, None, Frame] = Frame.parse(reader.read_exact, mask=False, max_size=None, extensions=[ext])
        try:
            next(gen)
        except StopIteration as done:
            frames.append(done.value)
        else:  # pragma: no cover - the reader had every byte
            raise AssertionError("parser wanted more bytes")
    return frames


def text_of_length(compressed: int, wbits: int) -> bytes:
    """Pseudo-random hex whose compressed payload is exactly ``compressed`` bytes long."""
    rng = random.Random(compressed)
    pool = "".join(rng.choice("0123456789abcdef") for _ in range(4 * compressed + 64)).encode()
    lo, hi = 1, len(pool)
    while lo < hi:  # the shortest prefix that compresses to at least the target
        mid = (lo + hi) // 2
        if len(deflate(pool[:mid], wbits)) < compressed:
            lo = mid + 1
        else:
            hi = mid
    for n in range(max(1, lo - 64), min(len(pool), lo + 64)):
        if len(deflate(pool[:n], wbits)) == compressed:
            return pool[:n]
    raise AssertionError(f"no prefix compresses to {compressed} bytes")


@pytest.mark.parametrize(
    ("compressed", "header"),
    [
        (125, b"\xc1\x7d"),
        (126, b"\xc1\x7e\x00\x7e"),
        (65535, b"\xc1\x7e\xff\xff"),
        (65536, b"\xc1\x7f" + (65536).to_bytes(8, "big")),
    ],
)
@pytest.mark.parametrize("wbits", [15, 10])
def test_compressed_frames_at_the_length_boundaries_inflate_to_the_input(
    compressed: int, header: bytes, wbits: int
) -> None:
    data = text_of_length(compressed, wbits)
    frame = deflate_frame(data, ws_frame(data), wbits)
    assert frame.startswith(header)  # FIN + RSV1 + text, then the length in its shortest form
    assert len(frame) == len(header) + compressed
    (parsed,) = read_frames(frame, client_extension(wbits))
    assert parsed.opcode == Opcode.TEXT and parsed.data == data


def test_each_message_inflates_alone_and_one_batch_of_frames_reads_back_in_order() -> None:
    events = [
        json.dumps({"seq": i, "payload": {"message": "Indexing documents " * (i % 5 + 1)}}).encode() for i in range(50)
    ]
    batch = b"".join(deflate_frame(e, ws_frame(e), 15) for e in events)
    ext = client_extension(15)
    assert [f.data for f in read_frames(batch, ext)] == events
    # The last message alone, to a fresh inflater: it does not depend on the 49 before it.
    last = deflate_frame(events[-1], ws_frame(events[-1]), 15)
    assert [f.data for f in read_frames(last, client_extension(15))] == [events[-1]]


def test_a_message_that_would_not_shrink_goes_out_plain() -> None:
    data = b'{"a":1}'
    plain = ws_frame(data)
    assert deflate_frame(data, plain, 15) is plain
    assert plain[0] & 0x40 == 0


def test_the_response_header_always_carries_server_no_context_takeover() -> None:
    assert extension_header(15) == "permessage-deflate; server_no_context_takeover"
    assert extension_header(12) == "permessage-deflate; server_no_context_takeover; server_max_window_bits=12"


class Transport:
    def __init__(self) -> None:
        self.data = bytearray()
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.data += data

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


def test_hub_compresses_each_event_once_per_window_and_plain_clients_share_the_ring() -> None:
    ring = Ring(100)
    hub = Hub(ring)
    plain, z15a, z15b, z10 = Transport(), Transport(), Transport(), Transport()
    hub.add(WsSubscriber(plain, Filter(), "a", 1.0), 0)
    hub.add(DeflateWsSubscriber(z15a, Filter(), "b", 1.0, 15), 0)
    hub.add(DeflateWsSubscriber(z15b, Filter(), "c", 1.0, 15), 0)
    hub.add(DeflateWsSubscriber(z10, Filter(), "d", 1.0, 10), 0)
    jsons = [json.dumps({"seq": i, "message": "Processing documents, please wait " * 3}).encode() for i in (1, 2, 3)]
    entries = [
        build_entry(i, "task.progress", "task", "t1", j, "p", i, b"", frozenset()) for i, j in enumerate(jsons, 1)
    ]
    for e in entries:
        ring.append(e)
    hub.broadcast(entries)
    # One write per client; the two clients with the same window got the very same bytes object.
    assert len(plain.writes) == len(z15a.writes) == len(z15b.writes) == len(z10.writes) == 1
    assert z15a.writes[0] is z15b.writes[0]
    assert bytes(plain.data) == b"".join(e.frame for e in entries)
    assert all(e.deflated is not None and sorted(e.deflated) == [10, 15] for e in entries)
    assert len(z15a.data) < len(plain.data)
    for transport, wbits in ((z15a, 15), (z10, 10)):
        frames = read_frames(bytes(transport.data), client_extension(wbits))
        assert [f.data for f in frames] == jsons
