"""The state log's record framing: one record is ``<u32 length><u32 crc32>`` then ``length`` bytes of msgpack.

A record is an :class:`EntryRecord` (one accepted event: seq, producer, pseq,
type, entity, its v1 JSON and the upstream-gap message sent before it) or a
:class:`ProducersRecord` (every tracked producer's last pseq), which opens each
segment so that deleting old segments never forgets a producer.  Pure: bytes in,
records out; :func:`read_records` stops at the first record that is short,
fails its CRC or does not decode, and says how long the valid prefix is.
"""

from __future__ import annotations

import struct
import zlib

import msgspec

from gateway.core.ring import Entry

HEADER = struct.Struct("<II")


class EntryRecord(msgspec.Struct, frozen=True, array_like=True, tag_field="record", tag=1):
    seq: int
    producer: str
    pseq: int
    type: str
    kind: str | None
    eid: str | None
    json: bytes
    upstream_gap: bytes


class ProducersRecord(msgspec.Struct, frozen=True, array_like=True, tag_field="record", tag=2):
    #: ``(producer, last pseq, last seen)``, least recently seen first.
    producers: list[tuple[str, int, float]]


Record = EntryRecord | ProducersRecord

_ENCODER = msgspec.msgpack.Encoder()
_DECODER: msgspec.msgpack.Decoder[Record] = msgspec.msgpack.Decoder(Record)


def frame(record: Record) -> bytes:
    """One framed record: length, CRC32 of the payload, payload."""
    payload = _ENCODER.encode(record)
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_records(data: bytes) -> tuple[list[Record], int]:
    """Decode framed records from ``data``; returns them and the length of the valid prefix."""
    records: list[Record] = []
    pos, end = 0, len(data)
    while pos + HEADER.size <= end:
        length, crc = HEADER.unpack_from(data, pos)
        start = pos + HEADER.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        try:
            records.append(_DECODER.decode(payload))
        except msgspec.DecodeError:
            break
        pos = start + length
    return records, pos


def entry_record(e: Entry) -> EntryRecord:
    return EntryRecord(e.seq, e.producer, e.pseq, e.type, e.kind, e.eid, e.json, e.upstream_gap)
