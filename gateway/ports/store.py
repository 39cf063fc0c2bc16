"""The state log (``--state-dir``): the epoch, the ring and producer positions survive a restart.

Layout of the directory:

- ``epoch``: the epoch string, written once (atomically) when the directory is new;
- ``segment-<first seq, 20 digits>.log``: append-only segments of framed records.

A record is ``<u32 length><u32 crc32>`` (little endian) followed by ``length``
bytes of msgpack: either an :class:`EntryRecord` (one accepted event: seq,
producer, pseq, type, entity, its v1 JSON and the upstream-gap message sent
before it) or a :class:`ProducersRecord` (every tracked producer's last pseq),
which opens each segment so that deleting old segments never forgets a producer.

Invariants and behaviour under pressure:

- :meth:`StateLog.append` writes a whole batch with ``os.write`` *before* the
  stream fans it out, so whatever a client was sent is in the kernel's page
  cache and survives ``kill -9``.  With ``fsync_interval == 0`` it is also
  fsynced before fan-out (survives power loss); otherwise a timer fsyncs every
  ``fsync_interval`` seconds off the event loop, and a machine crash may lose
  that window.  With a timer, nothing fsyncs on the loop: a rotated segment is
  fsynced and closed in the executor, and directory changes (a new segment, a
  pruned one) are fsynced with the next timed fsync.
- Segments rotate at batch boundaries once they hold ``segment_events``
  entries; a segment is deleted once every entry in it has left the ring, so
  the disk holds at most the ring plus one segment (plus one batch).
- At start, :meth:`StateLog.restore` reads every segment in order.  The first
  record that is short, fails its CRC or does not decode ends that segment: the
  rest is cut (``store.tail_truncated``, counted), never fatal.  A hole in the
  seqs (a damaged older segment) restarts the ring after it; seqs are never reused.
- A write error (disk full, I/O error) is logged (``store.write_failed``) and
  disables the log for the rest of the run; the epoch file is removed so the
  next start is a new epoch and clients are told, rather than resuming into seqs
  the log does not hold.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import msgspec
import structlog

from gateway.core.entries import build_entry
from gateway.core.ring import Entry, Ring
from gateway.core.sequencer import ProducerTracker

log = structlog.get_logger("gateway.store")

HEADER = struct.Struct("<II")
SEGMENT_RE = re.compile(r"^segment-(\d{20})\.log$")
EPOCH_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


class StateDirError(RuntimeError):
    """The state directory cannot be used; the message is one line for the operator."""


def open_state(
    directory: str,
    ring: Ring,
    tracker: ProducerTracker,
    *,
    fsync_interval: float,
    coalesce_types: frozenset[str],
) -> StateLog:
    """Open (or create) ``directory``, restore ``ring`` and ``tracker`` from it, ready for appends."""
    store = StateLog(directory, ring_capacity=ring.capacity, fsync_interval=fsync_interval, tracker=tracker)
    try:
        store.open()
        store.restore(ring, coalesce_types)
    except OSError as exc:
        raise StateDirError(f"cannot use --state-dir {directory}: {exc.strerror or exc}") from None
    return store


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


def segment_name(first_seq: int) -> str:
    return f"segment-{first_seq:020d}.log"


class StateLog:
    """The append-only state log of one ``--state-dir``; implements ``stream.EntrySink``."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        ring_capacity: int,
        fsync_interval: float,
        tracker: ProducerTracker,
        segment_events: int | None = None,
    ) -> None:
        self.dir = Path(directory)
        self.ring_capacity = ring_capacity
        self.fsync_interval = fsync_interval
        self.tracker = tracker
        # Half a ring per segment: the disk holds at most 1.5 rings, and a flood rotates
        # (new file, fsync in the executor, prune) every ring/2 events, not every ring/8
        # (rotation was 14 % of the gateway's busy time at 150k ev/s, docs/benchmarks.md).
        self.segment_events = segment_events or max(64, ring_capacity // 2)
        self.epoch = ""
        self.epoch_restored = False
        self.restored_entries = 0
        self.tail_truncations = 0
        self.truncated_bytes = 0
        self.write_errors = 0
        self.fsyncs = 0
        self.last_fsync_at = 0.0
        self.failed = False
        #: ``(first seq, path)`` of every segment, oldest first; the last one is open.
        self._segments: list[tuple[int, Path]] = []
        self._fd = -1
        self._in_segment = 0
        self._head = 0
        self._dirty = False
        self._syncing = False
        self._timer: asyncio.TimerHandle | None = None
        #: Set by :meth:`start` when fsyncs are timed: then they all run in its executor.
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The directory changed (segment created or deleted) since the last timed fsync.
        self._dir_dirty = False

    # -- start ---------------------------------------------------------------------------

    def open(self) -> str:
        """Create the directory if needed and return its epoch (a new one when it has none)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "epoch"
        try:
            epoch = path.read_text().strip()
        except FileNotFoundError:
            epoch = ""
        if EPOCH_RE.match(epoch):
            self.epoch_restored = True
        else:
            if epoch:
                log.warning("store.epoch_unreadable", path=str(path))
            epoch = secrets.token_hex(4)
            _write_atomically(path, epoch.encode() + b"\n")
        self.epoch = epoch
        return epoch

    def restore(self, ring: Ring, coalesce_types: frozenset[str]) -> None:
        """Refill ``ring`` and the tracker from the segments, cut any damaged tail, open for appends."""
        found = sorted(
            (int(m.group(1)), self.dir / name)
            for name in os.listdir(self.dir)
            if (m := SEGMENT_RE.match(name)) is not None
        )
        in_last = 0
        for first, path in found:
            data = path.read_bytes()
            records, valid = read_records(data)
            if valid < len(data):
                self._cut(path, valid, len(data) - valid)
            in_last = 0
            for record in records:
                if isinstance(record, ProducersRecord):
                    for producer, last_pseq, last_seen in record.producers:
                        self.tracker.restore(producer, last_pseq, last_seen)
                    continue
                if record.seq <= ring.head:
                    continue  # cannot happen in a log this module wrote; never reuse a seq
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
                self.tracker.restore(record.producer, record.pseq, 0.0)
                self.restored_entries += 1
                in_last += 1
            self._segments.append((first, path))
        self._head = ring.head
        if self._segments:
            self._fd = os.open(self._segments[-1][1], os.O_WRONLY | os.O_APPEND)
            self._in_segment = in_last
        else:
            self._new_segment()
        self._prune()
        log.info(
            "store.restored",
            dir=str(self.dir),
            epoch=self.epoch,
            epoch_restored=self.epoch_restored,
            entries=self.restored_entries,
            head=ring.head,
            oldest=ring.oldest,
            producers=len(self.tracker),
            segments=len(self._segments),
        )

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fsync on a timer (every ``fsync_interval`` s) when the interval is not 0.

        The timed fsync runs in the loop's default executor on a duplicate of the
        segment's fd (a rotation may close the original meanwhile), one at a time,
        so a slow disk never stalls fan-out.
        """
        if self.fsync_interval > 0:
            self._loop = loop
            self._timer = loop.call_later(self.fsync_interval, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = loop.call_later(self.fsync_interval, self._tick, loop)
        if not self._dirty or self.failed or self._syncing or self._fd < 0:
            return
        try:
            fd = os.dup(self._fd)
        except OSError as exc:
            self._fail(exc)
            return
        directory, self._dir_dirty = (self.dir if self._dir_dirty else None), False
        self._dirty = False
        self._syncing = True
        loop.run_in_executor(None, _fsync_and_close, fd, directory).add_done_callback(self._synced)

    def _synced(self, done: asyncio.Future[None]) -> None:
        self._syncing = False
        exc = done.exception()
        if isinstance(exc, OSError):
            self._fail(exc)
        elif exc is None:
            self.fsyncs += 1
            self.last_fsync_at = time.time()

    # -- the data path -------------------------------------------------------------------

    def append(self, entries: list[Entry]) -> None:
        """Write one batch (one ``write``) before it is fanned out; rotate and prune after it."""
        if self.failed or not entries:
            return
        data = b"".join(
            frame(EntryRecord(e.seq, e.producer, e.pseq, e.type, e.kind, e.eid, e.json, e.upstream_gap))
            for e in entries
        )
        try:
            _write_all(self._fd, data)
            self._dirty = True
            self._head = entries[-1].seq
            self._in_segment += len(entries)
            if self.fsync_interval == 0:
                self.sync()
            if self._in_segment >= self.segment_events:
                self._rotate()
        except OSError as exc:
            self._fail(exc)

    def sync(self) -> None:
        """Fsync the open segment if anything was written since the last fsync."""
        if not self._dirty or self.failed:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._fail(exc)
            return
        self._dirty = False
        self.fsyncs += 1
        self.last_fsync_at = time.time()

    def close(self) -> None:
        """Fsync and close (on shutdown).  Idempotent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None
        if self._fd >= 0:
            self.sync()
            if self._dir_dirty:
                _fsync_dir(self.dir)
                self._dir_dirty = False
            os.close(self._fd)
            self._fd = -1
            log.info("store.closed", dir=str(self.dir), head=self._head, fsyncs=self.fsyncs)

    def statistics(self) -> dict[str, Any]:
        return {
            "dir": str(self.dir),
            "epoch_restored": self.epoch_restored,
            "restored_entries": self.restored_entries,
            "segments": len(self._segments),
            "segment_events": self.segment_events,
            "bytes": sum(p.stat().st_size for _first, p in self._segments if p.exists()),
            "fsync_interval": self.fsync_interval,
            "fsyncs": self.fsyncs,
            "last_fsync_at": self.last_fsync_at or None,
            "tail_truncations": self.tail_truncations,
            "truncated_bytes": self.truncated_bytes,
            "write_errors": self.write_errors,
            "failed": self.failed,
        }

    # -- internals -----------------------------------------------------------------------

    def _new_segment(self) -> None:
        first = self._head + 1
        path = self.dir / segment_name(first)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o640)
        self._sync_dir()
        self._segments.append((first, path))
        self._in_segment = 0
        _write_all(self._fd, frame(ProducersRecord(self.tracker.positions())))
        self._dirty = True

    def _rotate(self) -> None:
        fd, self._fd = self._fd, -1
        if self._loop is None:
            _fsync_and_close(fd)
        else:  # timed fsyncs: the finished segment is fsynced off the loop
            self._loop.run_in_executor(None, _fsync_and_close, fd).add_done_callback(self._retired)
        self._new_segment()
        self._prune()

    def _retired(self, done: asyncio.Future[None]) -> None:
        exc = done.exception()
        if isinstance(exc, OSError):
            self._fail(exc)

    def _sync_dir(self) -> None:
        """Make a directory change durable: now, or with the next timed fsync."""
        if self._loop is None:
            _fsync_dir(self.dir)
        else:
            self._dir_dirty = self._dirty = True

    def _prune(self) -> None:
        """Delete segments whose every entry is older than the ring's oldest seq."""
        keep_from = self._head - self.ring_capacity + 1
        removed = False
        while len(self._segments) > 1 and self._segments[1][0] <= keep_from:
            _first, path = self._segments.pop(0)
            path.unlink(missing_ok=True)
            removed = True
        if removed:
            self._sync_dir()

    def _cut(self, path: Path, valid: int, cut: int) -> None:
        os.truncate(path, valid)
        self.tail_truncations += 1
        self.truncated_bytes += cut
        log.warning("store.tail_truncated", path=str(path), kept_bytes=valid, cut_bytes=cut)

    def _fail(self, exc: OSError) -> None:
        self.write_errors += 1
        self.failed = True
        log.error("store.write_failed", dir=str(self.dir), error=str(exc), head=self._head)
        try:
            (self.dir / "epoch").unlink(missing_ok=True)
            _fsync_dir(self.dir)
        except OSError as unlink_exc:
            log.error("store.epoch_remove_failed", dir=str(self.dir), error=str(unlink_exc))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_and_close(fd: int, directory: Path | None = None) -> None:
    """Fsync and close ``fd``; then fsync ``directory`` too, if given."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if directory is not None:
        _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
