"""The reader: the stream's records applied to this node's :class:`Stream`, in stream order.

One ordered push consumer per stream incarnation delivers every record, the
ones this node wrote included, into :meth:`Stream.commit` — so ``seq``,
entries and gap messages are identical on every node.  A record is applied
once (stream sequences at or below the applied one are skipped); bytes that
are not a record are skipped and counted; a record of another epoch is not
applied (the monitor re-reads the stream's identity).  A record that starts
after the ring's head means records this node never applied left the stream
(a hole): its clients are closed with 1013 so they resume and are told.

The epoch is derived from the stream's name and creation time, the same on
every node.  When it changes every client is closed (1012) so it resumes with
its old epoch and is told with an ``epoch`` gap; the ring, producer positions
and applied position restart from the new stream's first record.

Nothing here blocks: a record is applied synchronously in the consumer's callback.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.js import api

from gateway.core.sequencer import RESET, ProducerTracker
from gateway.ports.cluster.index import RecordIndex
from gateway.ports.cluster.monitor import NATS_ERRORS
from gateway.ports.cluster.record import Record, decode_record, record_entries, take_positions

if TYPE_CHECKING:
    from gateway.ports.cluster.source import ClusterSource

log = structlog.get_logger("gateway.cluster")


def stream_epoch(name: str, created: object) -> str:
    """The epoch of a stream incarnation: same on every node, new when it is re-created."""
    return hashlib.sha256(f"{name}\0{created}".encode()).hexdigest()[:8]


class StreamReader:
    """Follows one stream incarnation and applies its records; counts what it applied or skipped."""

    def __init__(self, source: ClusterSource) -> None:
        self.source = source
        self.records_applied = 0
        #: Records decoded from their bytes: other nodes' (this node's own are taken as published).
        self.records_decoded = 0
        self.bad_records = 0
        self.epoch_changes = 0
        #: First event seq and stream seq of every applied record still in the stream (history reads).
        self.index = RecordIndex()
        #: Set, and replaced by a new one, after each stream message applied or skipped: what
        #: :meth:`wait_applied` waits on (a waiter holds the event it began with, so no pulse is missed).
        self.applied = asyncio.Event()
        self._sub: Any = None

    @property
    def following(self) -> bool:
        return self._sub is not None

    async def follow(self, info: api.StreamInfo) -> None:
        """(Re)start the consumer on stream incarnation ``info``; a new one is a new epoch."""
        source = self.source
        assert source.js is not None
        epoch = stream_epoch(source.name, info.created)
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except NATS_ERRORS:
                pass
            self._sub = None
        if epoch != source.stream.epoch:
            self._new_epoch(epoch)
        source.created = info.created
        source.sync_target = info.state.last_seq
        self._sub = await source.js.subscribe(
            source.subject,
            stream=source.name,
            cb=self._on_record,
            ordered_consumer=True,
            idle_heartbeat=1.0,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=source.applied_sseq + 1,
            ),
        )

    def _new_epoch(self, epoch: str) -> None:
        source, stream, hub = self.source, self.source.stream, self.source.hub
        old = stream.epoch
        for sub in list(hub.subscribers):
            hub.close(sub, 1012, "epoch changed")
        stream.epoch = epoch
        stream.ring.reset(0)
        stream.tracker = ProducerTracker()
        source.applied_sseq = source.last_sseq = 0
        self.index.clear()
        if source.created is None and self.records_applied == 0:
            log.info("cluster.joined", stream=source.name, epoch=epoch, node=source.node)
            return
        self.epoch_changes += 1
        log.warning("cluster.epoch", stream=source.name, epoch=epoch, previous=old)

    async def _on_record(self, msg: Msg) -> None:
        sseq = msg.metadata.sequence.stream
        if sseq <= self.source.applied_sseq:
            return
        headers = msg.headers
        record = self.source.writer.own_record(headers.get(api.Header.MSG_ID) if headers else None)
        try:
            if record is None:
                record = decode_record(msg.data)
                self.records_decoded += 1
        except msgspec.DecodeError:
            self.bad_records += 1
            self._passed(sseq)
            log.error("cluster.bad_record", sseq=sseq)
            return
        self.apply(record, sseq)

    def apply(self, record: Record, sseq: int) -> None:
        """Append ``record`` (stream sequence ``sseq``) to the ring and fan it out."""
        source, stream, hub = self.source, self.source.stream, self.source.hub
        if record.epoch != stream.epoch:
            log.warning("cluster.foreign_record", sseq=sseq, epoch=record.epoch)
            source.created = None  # the next probe re-reads the stream's identity
            return
        head = stream.ring.head
        if record.first_seq != head + 1 and not (source.applied_sseq == 0 and head == 0):
            if record.first_seq <= head:
                self._passed(sseq)
                return
            log.error("cluster.hole", sseq=sseq, expected=head + 1, got=record.first_seq)
            for sub in list(hub.subscribers):  # they resume and are told with a gap
                hub.close(sub, 1013, "cluster node fell behind the stream")
        if record.first_seq != head + 1:
            stream.ring.reset(record.first_seq - 1)
        now = time.time()
        take_positions(record, stream.tracker, now)
        entries = record_entries(
            record,
            stream.coalesce_types,
            lambda p, m, s: stream.producer_reset(p, s, now) if m == RESET else stream.upstream_gap(p, m, s, now),
        )
        stream.commit(entries)
        source.last_sseq = max(source.last_sseq, sseq)
        self.records_applied += 1
        if record.events:  # a record of skips only holds no seq
            self.index.add(record.first_seq, sseq)
        self._passed(sseq)

    def _passed(self, sseq: int) -> None:
        """The stream message at ``sseq`` is applied or skipped: wake whoever waits for it."""
        self.source.applied_sseq = sseq
        self.applied.set()
        self.applied = asyncio.Event()

    async def wait_applied(self, sseq: int, timeout: float) -> bool:
        """Wait until the stream message at ``sseq`` (or a later one) has been applied or skipped here."""
        deadline = time.monotonic() + timeout
        while self.source.applied_sseq < sseq:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self.applied.wait(), left)
            except TimeoutError:
                return False
        return True
