"""The state log (``gateway.store``) on a temp dir, without sockets: round trip, rotation, damaged tails."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from emitter_sdk.wire import Entity, WireEvent
from gateway.core.codec import encode_event
from gateway.core.entries import build_entry
from gateway.core.ring import Entry, Ring
from gateway.core.sequencer import ProducerTracker
from gateway.ports.records import frame, read_records
from gateway.ports.store import StateDirError, StateLog, open_state

COALESCE = frozenset({"task.progress"})


def event(producer: str, pseq: int, eid: str = "a") -> WireEvent:
    return WireEvent(
        "task.progress", "2026-01-01T00:00:00.000Z", "core", Entity("task", eid), {"i": pseq}, producer, pseq
    )


class Gateway:
    """Ring + tracker + state log, as ``daemon.build`` wires them (no sockets)."""

    def __init__(self, directory: Path, capacity: int = 50, segment_events: int | None = None, fsync: float = 1.0):
        self.ring = Ring(capacity)
        self.tracker = ProducerTracker()
        self.log = StateLog(
            directory, ring_capacity=capacity, fsync_interval=fsync, tracker=self.tracker, segment_events=segment_events
        )
        self.epoch = self.log.open()
        self.log.restore(self.ring, COALESCE)

    def emit(self, producer: str, pseqs: range, gap: bytes = b"") -> list[Entry]:
        entries = []
        for pseq in pseqs:
            missed = self.tracker.admit(producer, pseq, 1.0)
            if missed >= 0:
                seq = self.ring.head + len(entries) + 1
                ev = event(producer, pseq)
                kind, eid = (ev.entity.kind, ev.entity.id) if ev.entity else (None, None)
                json = encode_event(ev, seq)
                entries.append(build_entry(seq, ev.type, kind, eid, json, producer, pseq, gap, COALESCE))
        self.log.append(entries)
        for e in entries:
            self.ring.append(e)
        return entries


def same(a: Entry, b: Entry) -> bool:
    fields = ("seq", "type", "kind", "eid", "json", "frame", "producer", "pseq", "upstream_gap", "coalesce_key")
    return all(getattr(a, f) == getattr(b, f) for f in fields)


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("segment-*.log"))


def test_restart_restores_epoch_ring_and_producer_positions(tmp_path: Path) -> None:
    gw = Gateway(tmp_path)
    gw.emit("p", range(1, 31))
    gw.emit("q", range(5, 9), gap=b'{"type":"gateway.gap"}')
    gw.log.close()
    again = Gateway(tmp_path)
    assert again.epoch == gw.epoch and again.log.epoch_restored
    assert len(again.ring) == 34 and all(same(a, b) for a, b in zip(gw.ring, again.ring, strict=True))
    assert again.ring.latest_by_key == gw.ring.latest_by_key
    assert again.tracker.admit("p", 30, 2.0) == -1  # a re-send after the restart is a duplicate
    assert again.tracker.admit("q", 9, 2.0) == 0
    assert again.emit("p", range(31, 32))[0].seq == 35


def test_without_a_log_each_directory_is_a_new_epoch(tmp_path: Path) -> None:
    a = Gateway(tmp_path / "a")
    b = Gateway(tmp_path / "b")
    assert a.epoch != b.epoch and not a.log.epoch_restored


def test_disk_is_bounded_by_the_ring_plus_one_segment(tmp_path: Path) -> None:
    gw = Gateway(tmp_path, capacity=50, segment_events=10)
    for start in range(1, 1001, 7):
        gw.emit("p", range(start, start + 7))
        on_disk = sum(1 for p in segments(tmp_path) for r in read_records(p.read_bytes())[0] if hasattr(r, "seq"))
        assert on_disk <= 50 + 10 + 7
    gw.log.close()
    again = Gateway(tmp_path, capacity=50, segment_events=10)
    assert [e.seq for e in again.ring] == list(range(952, 1002))
    # The producer's position survives even though its first segments are gone.
    assert again.tracker.admit("p", 5, 0.0) == -1


def test_other_producers_positions_survive_pruning(tmp_path: Path) -> None:
    gw = Gateway(tmp_path, capacity=20, segment_events=5)
    gw.emit("early", range(1, 4))
    for start in range(1, 200, 5):
        gw.emit("busy", range(start, start + 5))
    gw.log.close()
    again = Gateway(tmp_path, capacity=20, segment_events=5)
    assert all(e.producer == "busy" for e in again.ring)
    assert again.tracker.admit("early", 3, 0.0) == -1


def test_truncated_tail_is_cut_logged_counted_and_not_fatal(tmp_path: Path) -> None:
    gw = Gateway(tmp_path)
    gw.emit("p", range(1, 11))
    gw.log.close()
    last = segments(tmp_path)[-1]
    size = last.stat().st_size
    with last.open("r+b") as fh:
        fh.truncate(size - 5)
    with capture_logs() as logs:
        again = Gateway(tmp_path)
    assert [e.seq for e in again.ring] == list(range(1, 10))
    assert again.log.tail_truncations == 1
    assert again.log.statistics()["tail_truncations"] == 1
    cut = [entry for entry in logs if entry["event"] == "store.tail_truncated"]
    assert len(cut) == 1 and cut[0]["cut_bytes"] > 0
    assert again.emit("p", range(10, 12))[0].seq == 10  # the cut seq is assigned again: no client saw it
    again.log.close()
    assert [e.seq for e in Gateway(tmp_path).ring] == [*range(1, 10), 10, 11]


def test_corrupt_record_in_an_older_segment_keeps_the_newer_ones(tmp_path: Path) -> None:
    gw = Gateway(tmp_path, capacity=100, segment_events=10)
    for start in range(1, 41, 10):
        gw.emit("p", range(start, start + 10))
    gw.log.close()
    first = segments(tmp_path)[0]
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.write_bytes(bytes(data))
    again = Gateway(tmp_path, capacity=100, segment_events=10)
    assert again.log.tail_truncations == 1
    held = [e.seq for e in again.ring]
    assert held[-1] == 40 and held == list(range(held[0], 41)) and held[0] > 1
    assert again.emit("p", range(41, 42))[0].seq == 41  # seqs are never reused


def test_fsync_interval_zero_fsyncs_every_batch_before_returning(tmp_path: Path) -> None:
    gw = Gateway(tmp_path, fsync=0)
    before = gw.log.fsyncs
    gw.emit("p", range(1, 4))
    gw.emit("p", range(4, 6))
    assert gw.log.fsyncs == before + 2


def test_write_failure_disables_the_log_and_forgets_the_epoch(tmp_path: Path) -> None:
    gw = Gateway(tmp_path)
    gw.emit("p", range(1, 3))
    os.close(gw.log._fd)  # the disk goes away under us
    with capture_logs() as logs:
        gw.emit("p", range(3, 5))
    assert gw.log.failed and gw.log.write_errors == 1
    assert any(entry["event"] == "store.write_failed" for entry in logs)
    assert not (tmp_path / "epoch").exists()
    gw.log._fd = -1
    assert Gateway(tmp_path).epoch != gw.epoch  # the next start tells clients the epoch changed


def test_unusable_directory_is_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateDirError, match="cannot use --state-dir"):
        open_state(str(blocker / "sub"), Ring(5), ProducerTracker(), fsync_interval=1.0, coalesce_types=COALESCE)


def plant(directory: Path, how: str, elsewhere: Path) -> None:
    """Damage a state directory the way a local attacker or a careless operator might."""
    segment = segments(directory)[0]
    if how == "epoch-link":
        (directory / "epoch").unlink()
        (directory / "epoch").symlink_to(elsewhere)
    elif how == "segment-link":
        segment.unlink()
        segment.symlink_to(elsewhere)
    elif how == "foreign-epoch":
        os.chown(directory / "epoch", 65534, 65534)
    elif how == "writable-segment":
        segment.chmod(0o666)
    else:
        directory.chmod(0o777)


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("epoch-link", "epoch is a symbolic link"),
        ("segment-link", "is a symbolic link"),
        ("foreign-epoch", "epoch is owned by uid 65534"),
        ("writable-segment", "writable by group or others"),
        ("writable-dir", "writable by group or others"),
    ],
)
def test_planted_symlinks_foreign_or_writable_files_stop_startup(tmp_path: Path, how: str, why: str) -> None:
    """The state directory's files are opened with O_NOFOLLOW and must be the gateway's alone."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("0123abcd\n")
    directory = tmp_path / "state"
    gw = Gateway(directory)
    gw.emit("p1", range(1, 4))
    gw.log.close()
    plant(directory, how, elsewhere)
    with pytest.raises(StateDirError) as info:
        open_state(str(directory), Ring(5), ProducerTracker(), fsync_interval=1.0, coalesce_types=COALESCE)
    message = str(info.value)
    assert why in message and "cannot use --state-dir" in message and "\n" not in message
    assert elsewhere.read_text() == "0123abcd\n"  # nothing written through a link


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10_000), flip=st.none() | st.integers(0, 10_000))
def test_any_damage_to_the_log_restores_a_valid_prefix(
    tmp_path_factory: pytest.TempPathFactory, cut: int, flip: int | None
) -> None:
    directory = tmp_path_factory.mktemp("log")
    gw = Gateway(directory, capacity=200)
    gw.emit("p", range(1, 41))
    gw.log.close()
    path = segments(directory)[-1]
    data = bytearray(path.read_bytes())
    if flip is not None and data:
        data[flip % len(data)] ^= 0x55
    path.write_bytes(bytes(data[: cut % (len(data) + 1)]))
    again = Gateway(directory, capacity=200)
    held = [e for e in again.ring]
    assert [e.seq for e in held] == list(range(1, len(held) + 1))
    assert all(same(a, b) for a, b in zip(held, gw.ring, strict=False))


def test_frame_round_trip() -> None:
    from gateway.ports.records import ProducersRecord

    records = [ProducersRecord([("p", 3, 1.5)])]
    data = b"".join(frame(r) for r in records)
    assert read_records(data) == (records, len(data))
    assert read_records(data[:-1]) == ([], 0)


async def until(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Let the event loop run until ``cond()`` holds; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def test_timed_fsync_runs_off_the_loop_and_only_when_something_was_written(tmp_path: Path) -> None:
    gw = Gateway(tmp_path, fsync=0.01)
    gw.log.start(asyncio.get_running_loop())
    try:
        gw.emit("p", range(1, 4))
        await until(lambda: gw.log.fsyncs > 0, "a timed fsync")
        synced, timers = gw.log.fsyncs, [gw.log._timer]

        def ticked() -> bool:  # each tick re-arms the timer with a new handle (kept here, so ids stay distinct)
            if gw.log._timer is not timers[-1]:
                timers.append(gw.log._timer)
            return len(timers) > 10

        await until(ticked, "ten idle ticks")
        assert gw.log.fsyncs == synced and gw.log.last_fsync_at is not None  # nothing new written, no fsync
    finally:
        gw.log.close()


async def test_with_timed_fsync_rotation_and_pruning_never_fsync_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow disk never stalls fan-out: rotated segments and the directory are fsynced in the executor."""
    loop_thread, fsync_threads = threading.get_ident(), []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        fsync_threads.append(threading.get_ident())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    gw = Gateway(tmp_path, capacity=20, segment_events=5, fsync=0.01)
    gw.log.start(asyncio.get_running_loop())
    fsync_threads.clear()  # opening the directory fsyncs before the loop serves anyone
    try:
        for first in range(1, 100, 5):  # twenty rotations, most of them pruning a segment
            gw.emit("p", range(first, first + 5))
        assert fsync_threads.count(loop_thread) == 0, "an fsync ran on the event loop"
        await until(lambda: gw.log.fsyncs > 0 and not gw.log._dir_dirty, "a timed fsync of file and directory")
        assert loop_thread not in fsync_threads and len(fsync_threads) >= 20
    finally:
        gw.log.close()
    restored = Gateway(tmp_path, capacity=20, segment_events=5)
    assert restored.ring.head == 100 and restored.ring.oldest == 81
