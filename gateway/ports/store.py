"""The state log (``--state-dir``): the epoch, the ring and producer positions survive a restart.

Layout of the directory:

- ``epoch``: the epoch string, written once (atomically) when the directory is new;
- ``segment-<first seq, 20 digits>.log``: append-only segments of framed records.

The parts: record framing (``gateway.ports.records``), restoring at start
(``gateway.ports.restore``), and here the segments and their fsyncs.

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
- At start, :meth:`StateLog.restore` reads every segment in order; a damaged
  tail is cut, never fatal (``gateway.ports.restore``).
- Every file is opened with ``O_NOFOLLOW`` and must be the gateway's alone
  (``gateway.ports.files.open_private``); so must the directory.
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
import stat
import time
from pathlib import Path
from typing import Any

import structlog

from gateway.core.ring import Entry, Ring
from gateway.core.sequencer import ProducerTracker
from gateway.ports.files import (
    check_private,
    fsync_and_close,
    fsync_dir,
    open_private,
    read_private,
    write_all,
    write_atomically,
)
from gateway.ports.records import ProducersRecord, entry_record, frame
from gateway.ports.restore import restore_segments, segment_name

log = structlog.get_logger("gateway.store")

EPOCH_RE = re.compile(r"[0-9A-Za-z_-]{1,64}")


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
        #: Where rotated segments and directory changes are fsynced.  None: at once, on this
        #: thread (``fsync_interval`` 0, or still restoring before :meth:`start`).  A loop:
        #: in its executor, with the timed fsyncs (:meth:`start` with ``fsync_interval`` > 0).
        self._fsync_executor: asyncio.AbstractEventLoop | None = None
        #: The directory changed (segment created or deleted) since the last timed fsync.
        self._dir_dirty = False

    # -- start ---------------------------------------------------------------------------

    def open(self) -> str:
        """Create the directory if needed and return its epoch (a new one when it has none)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        check_private(os.stat(self.dir), self.dir, stat.S_ISDIR)
        path = self.dir / "epoch"
        try:
            epoch = read_private(path).decode(errors="replace").strip()
        except FileNotFoundError:
            epoch = ""
        if EPOCH_RE.fullmatch(epoch):
            self.epoch_restored = True
        else:
            if epoch:
                log.warning("store.epoch_unreadable", path=str(path))
            epoch = secrets.token_hex(4)
            write_atomically(path, epoch.encode() + b"\n")
        self.epoch = epoch
        return epoch

    def restore(self, ring: Ring, coalesce_types: frozenset[str]) -> None:
        """Refill ``ring`` and the tracker from the segments (``gateway.ports.restore``), open for appends."""
        restored = restore_segments(self.dir, ring, self.tracker, coalesce_types)
        self.restored_entries = restored.entries
        self.tail_truncations = restored.tail_truncations
        self.truncated_bytes = restored.truncated_bytes
        self._segments = restored.segments
        self._head = ring.head
        if self._segments:
            self._fd = open_private(self._segments[-1][1], os.O_WRONLY | os.O_APPEND)
            self._in_segment = restored.in_last
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
            self._fsync_executor = loop
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
        loop.run_in_executor(None, fsync_and_close, fd, directory).add_done_callback(self._synced)

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
        data = b"".join(frame(entry_record(e)) for e in entries)
        try:
            write_all(self._fd, data)
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
        self._fsync_executor = None
        if self._fd >= 0:
            self.sync()
            if self._dir_dirty:
                fsync_dir(self.dir)
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
        self._fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC)
        self._sync_dir()
        self._segments.append((first, path))
        self._in_segment = 0
        write_all(self._fd, frame(ProducersRecord(self.tracker.positions())))
        self._dirty = True

    def _rotate(self) -> None:
        fd, self._fd = self._fd, -1
        if self._fsync_executor is None:
            fsync_and_close(fd)
        else:  # timed fsyncs: the finished segment is fsynced off the loop
            self._fsync_executor.run_in_executor(None, fsync_and_close, fd).add_done_callback(self._retired)
        self._new_segment()
        self._prune()

    def _retired(self, done: asyncio.Future[None]) -> None:
        exc = done.exception()
        if isinstance(exc, OSError):
            self._fail(exc)

    def _sync_dir(self) -> None:
        """Make a directory change durable: now, or with the next timed fsync."""
        if self._fsync_executor is None:
            fsync_dir(self.dir)
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

    def _fail(self, exc: OSError) -> None:
        self.write_errors += 1
        self.failed = True
        log.error("store.write_failed", dir=str(self.dir), error=str(exc), head=self._head)
        try:
            (self.dir / "epoch").unlink(missing_ok=True)
            fsync_dir(self.dir)
        except OSError as unlink_exc:
            log.error("store.epoch_remove_failed", dir=str(self.dir), error=str(unlink_exc))
