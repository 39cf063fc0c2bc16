"""Restoring the ring and the producer positions from the state log's segments, at start.

:func:`restore_segments` reads every ``segment-<first seq>.log`` of a directory
in order.  The first record that is short, fails its CRC or does not decode ends
that segment: the rest is cut off the file (``store.tail_truncated``, counted),
never fatal.  A hole in the seqs (a damaged older segment) restarts the ring
after it; seqs are never reused.  Producers get back their last pseq, so a
producer's re-send after the restart is recognised as a duplicate.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from gateway.core.entries import build_entry
from gateway.core.ring import Ring
from gateway.core.sequencer import ProducerTracker
from gateway.ports.files import open_private, read_private
from gateway.ports.records import ProducersRecord, read_records

SEGMENT_RE = re.compile(r"segment-(\d{20})\.log")

log = structlog.get_logger("gateway.store")


def segment_name(first_seq: int) -> str:
    return f"segment-{first_seq:020d}.log"


@dataclass
class Restored:
    """What a restore found: the segments (first seq, path) oldest first, and what it counted."""

    segments: list[tuple[int, Path]] = field(default_factory=list)
    entries: int = 0
    #: Entries in the last segment (the one appends continue).
    in_last: int = 0
    tail_truncations: int = 0
    truncated_bytes: int = 0


def restore_segments(directory: Path, ring: Ring, tracker: ProducerTracker, coalesce_types: frozenset[str]) -> Restored:
    """Refill ``ring`` and ``tracker`` from the segments of ``directory``, cutting any damaged tail."""
    found = sorted(
        (int(m.group(1)), directory / name)
        for name in os.listdir(directory)
        if (m := SEGMENT_RE.fullmatch(name)) is not None
    )
    out = Restored()
    for first, path in found:
        data = read_private(path)
        records, valid = read_records(data)
        if valid < len(data):
            _cut(path, valid, len(data) - valid, out)
        out.in_last = 0
        for record in records:
            if isinstance(record, ProducersRecord):
                for producer, last_pseq, last_seen in record.producers:
                    tracker.restore(producer, last_pseq, last_seen)
                continue
            if record.seq <= ring.head:
                continue  # cannot happen in a log the store wrote; never reuse a seq
            if record.seq != ring.head + 1:
                ring.reset(record.seq - 1)
            ring.append(
                build_entry(
                    record.seq,
                    record.type,
                    record.kind,
                    record.eid,
                    record.json,
                    record.producer,
                    record.pseq,
                    record.upstream_gap,
                    coalesce_types,
                )
            )
            tracker.restore(record.producer, record.pseq, 0.0)
            out.entries += 1
            out.in_last += 1
        out.segments.append((first, path))
    return out


def _cut(path: Path, valid: int, cut: int, out: Restored) -> None:
    fd = open_private(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, valid)
    finally:
        os.close(fd)
    out.tail_truncations += 1
    out.truncated_bytes += cut
    log.warning("store.tail_truncated", path=str(path), kept_bytes=valid, cut_bytes=cut)
