"""``gateway.codec`` without sockets: server frame bytes pinned, ingest validation, v1 encoding.

Frames are checked byte for byte at the RFC 6455 length boundaries (7-bit, 16-bit
and 64-bit lengths) and cross-checked with websockets' own sans-I/O frame parser,
an independent implementation.
"""

from __future__ import annotations

import gc
import json
import math
import struct
from collections.abc import Generator

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from emitter_sdk.wire import ENCODER, Entity, WireEvent
from gateway.core import codec
from gateway.core.cache import BoundedCache
from gateway.core.codec import decode_ingest, encode_event
from gateway.core.entries import build_entry
from gateway.core.protocol import TEXT_HEADERS, ws_frame


def parse(data: bytes) -> Frame:
    """Parse one server (unmasked) frame with websockets' reader."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    gen: Generator[None, None, Frame] = Frame.parse(reader.read_exact, mask=False, max_size=None)
    try:
        next(gen)
    except StopIteration as done:
        frame: Frame = done.value
    else:  # pragma: no cover - the reader had every byte, the parser must not wait
        raise AssertionError("parser wanted more bytes")
    return frame


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, b"\x81\x00"),
        (1, b"\x81\x01"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (127, b"\x81\x7e\x00\x7f"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (70000, b"\x81\x7f" + struct.pack("!Q", 70000)),
    ],
)
def test_text_frame_header_is_fin_text_unmasked_with_the_shortest_length(length: int, header: bytes) -> None:
    payload = bytes(i % 251 for i in range(length))
    frame = ws_frame(payload)
    assert frame[: len(header)] == header
    assert frame[len(header) :] == payload
    assert len(frame) == len(header) + length
    parsed = parse(frame)
    assert parsed.fin and parsed.opcode is Opcode.TEXT and parsed.data == payload
    # An entry's frame: the same bytes, its header looked up by length (twice: built, then remembered).
    for _ in range(2):
        entry = build_entry(1, "t.x", None, None, payload, "p", 1, b"", frozenset())
        assert entry.frame == frame and entry.json == payload
    assert TEXT_HEADERS[length] == header


def test_close_frame_opcode_and_payload() -> None:
    body = struct.pack("!H", 1013) + b"too slow to keep up"
    frame = ws_frame(body, opcode=0x8)
    assert frame == b"\x88" + bytes([len(body)]) + body
    parsed = parse(frame)
    assert parsed.opcode is Opcode.CLOSE and parsed.data == body


def test_frames_concatenate_into_a_batch_that_parses_back_in_order() -> None:
    payloads = [b"a" * 125, b"b" * 126, b"c" * 65535, b"d" * 65536, b"e"]
    batch = b"".join(ws_frame(p) for p in payloads)
    reader = StreamReader()
    reader.feed_data(batch)
    got = []
    for _ in payloads:
        gen = Frame.parse(reader.read_exact, mask=False, max_size=None)
        try:
            next(gen)
        except StopIteration as done:
            got.append(done.value.data)
    assert got == payloads


def wire(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "type": "task.progress",
        "ts": "2026-01-27T10:21:33.123Z",
        "source": "core",
        "entity": Entity("task", "abc"),
        "payload": {"progress": 42},
        "producer": "3f9c2a71",
        "pseq": 7,
    }
    fields.update(overrides)
    return ENCODER.encode(WireEvent(**fields))  # type: ignore[arg-type]


def test_decode_ingest_accepts_a_valid_event() -> None:
    event = decode_ingest([wire()], 1 << 20)
    assert isinstance(event, WireEvent)
    assert (event.type, event.entity, event.payload, event.producer, event.pseq) == (
        "task.progress",
        Entity("task", "abc"),
        {"progress": 42},
        "3f9c2a71",
        7,
    )


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([], "frames"),
        ([b"x", b"y"], "frames"),
        ([b"\x00" * 2000], "oversized"),
        ([b"\xc1garbage"], "decode"),
        ([ENCODER.encode(["task.progress"])], "decode"),
        ([wire(type="Task.Progress")], "type"),
        ([wire(type="nodot")], "type"),
        ([wire(type="task.started\n")], "type"),
        ([wire(type="\ntask.started")], "type"),
        ([wire(type="a." + "b" * 99)], "type"),
        ([msgspec.msgpack.encode(["task.progress", "t", "core", None, [1, 2], "p1", 1])], "payload"),
        (
            [
                msgspec.msgpack.encode(
                    ["task.progress", "t", "core", None, {"t": msgspec.msgpack.Ext(-1, b"")}, "p1", 1]
                )
            ],
            "payload",
        ),
        ([wire(payload={"x": math.nan})], "payload"),  # JSON has no NaN: it would reach clients as null
        ([wire(payload={"x": [1.5, {"y": -math.inf}]})], "payload"),
        ([b"\x97\xa3a.b\xa1t\xa4core\xc0\x81\xa1x\xca\x7f\x80\x00\x00\xa2p1\x01"], "payload"),  # float32 +Inf
        ([wire(type="gateway.hello")], "reserved"),
        ([wire(type="pong")], "reserved"),
        ([wire(entity=Entity("", "abc"))], "entity"),
        ([wire(entity=Entity("task", "x" * 257))], "entity"),
        ([wire(producer="")], "producer"),
        ([wire(pseq=0)], "producer"),
        ([wire(ts="x" * 41)], "ts"),
    ],
)
def test_decode_ingest_rejects_with_a_fixed_reason(frames: list[bytes], reason: str) -> None:
    assert decode_ingest(frames, 1000) == reason
    assert codec.well_formed(frames, 1000) is None  # the hot path accepts none of them
    assert reason in codec.REJECT_REASONS


def test_a_type_of_one_hundred_characters_is_accepted_and_longer_ones_never_reach_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(codec, "_TYPE_VERDICTS", BoundedCache())
    assert isinstance(decode_ingest([wire(type="a." + "b" * 98)], 1 << 20), WireEvent)
    for n in range(200):
        assert decode_ingest([wire(type=f"a.{n}" + "b" * 200)], 1 << 20) == "type"
        assert codec.well_formed([wire(type=f"a.{n}" + "c" * 200)], 1 << 20) is None
    assert list(codec._TYPE_VERDICTS) == ["a." + "b" * 98]


@pytest.mark.parametrize("value", [0xCB7FF00000000000, 0xCA7F8000, 1.5, "\x7f\x7f"])
def test_bytes_that_only_look_like_a_non_finite_float_are_accepted(value: object) -> None:
    event = decode_ingest([wire(payload={"n": value})], 1 << 20)
    assert isinstance(event, WireEvent) and event.payload == {"n": value}


def test_a_payload_without_a_json_form_raises_an_encode_error() -> None:
    event = decode_ingest([msgspec.msgpack.encode(["a.b", "t", "core", None, {"x": {(1, 2): 1}}, "p1", 1])], 1 << 20)
    assert isinstance(event, WireEvent)
    with pytest.raises(codec.ENCODE_ERRORS):
        encode_event(event, 1)


def test_type_verdicts_stay_right_when_the_cache_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "_TYPE_VERDICTS", BoundedCache(2))
    for _ in range(2):
        for name, reason in [("a.b", None), ("Bad", "type"), ("gateway.x", "reserved"), ("c.d", None)]:
            got = decode_ingest([wire(type=name)], 1 << 20)
            assert (got if isinstance(got, str) else None) == reason
    assert len(codec._TYPE_VERDICTS) <= 2


def test_encode_event_is_the_v1_json_with_seq_and_id() -> None:
    event = decode_ingest([wire(payload={"progress": 42, "message": 'quote " and \n'})], 1 << 20)
    assert isinstance(event, WireEvent)
    data = json.loads(encode_event(event, 1042))
    assert data == {
        "type": "task.progress",
        "ts": "2026-01-27T10:21:33.123Z",
        "source": "core",
        "entity": {"kind": "task", "id": "abc"},
        "payload": {"progress": 42, "message": 'quote " and \n'},
        "seq": 1042,
        "id": "3f9c2a71:7",
    }
    no_entity = decode_ingest([wire(entity=None)], 1 << 20)
    assert isinstance(no_entity, WireEvent)
    assert json.loads(encode_event(no_entity, 1))["entity"] is None


def near(limit: int) -> st.SearchStrategy[str]:
    """Strings around a length limit (empty included)."""
    return st.sampled_from([0, 1, limit - 1, limit, limit + 1]).map(lambda n: "a" * n)


@given(
    type_=st.sampled_from(["task.progress", "a." + "b" * 98, "a." + "b" * 99, "Task.x", "gateway.x", "pong"]),
    ts=near(40),
    source=near(256),
    entity=st.none() | st.tuples(near(256), near(256)),
    payload=st.sampled_from([{}, {"x": 1.5}, {"x": math.nan}, {"x": [math.inf]}, {"x": msgspec.msgpack.Ext(1, b"")}]),
    producer=near(64),
    pseq=st.sampled_from([-1, 0, 1, 2**64 - 1]),
)
def test_well_formed_accepts_exactly_what_decode_ingest_accepts(
    type_: str,
    ts: str,
    source: str,
    entity: tuple[str, str] | None,
    payload: dict[str, object],
    producer: str,
    pseq: int,
) -> None:
    frames = [msgspec.msgpack.encode([type_, ts, source, entity, payload, producer, pseq])]
    judged, fast = decode_ingest(frames, 1 << 20), codec.well_formed(frames, 1 << 20)
    if isinstance(judged, WireEvent):
        assert fast is not None and fields(fast) == fields(judged)
    else:
        assert fast is None


def fields(e: WireEvent) -> tuple[object, ...]:
    ent = None if e.entity is None else (e.entity.kind, e.entity.id)
    return e.type, e.ts, e.source, ent, e.payload, e.producer, e.pseq


def test_events_decoded_by_well_formed_are_not_tracked_by_the_cycle_collector() -> None:
    """An accepted event (and its entity) is a tree decoded from msgpack: no cycle, nothing to collect.

    Tracked, each event waiting to be sequenced counted towards the collector's next run.
    """
    event = codec.well_formed([wire(payload={"nested": {"list": [1, 2.5, "x"]}})], 1 << 20)
    assert event is not None and event.entity is not None
    assert not gc.is_tracked(event)
    assert not gc.is_tracked(event.entity)
    messages = [[wire()] for _ in range(1000)]
    gc.disable()  # no collection resets the count meanwhile
    try:
        before = gc.get_count()[0]
        kept = [codec.well_formed(frames, 1 << 20) for frames in messages]
        allocated = gc.get_count()[0] - before
    finally:
        gc.enable()
    assert all(e is not None for e in kept)
    # Each payload dict counts (unless a free one is reused); tracked, each event and entity would too: 3000.
    assert allocated <= 1100
