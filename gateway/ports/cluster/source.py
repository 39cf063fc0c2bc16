"""A gateway as one node of a cluster: the JetStream stream is the source of sequenced events.

:class:`ClusterSource` keeps one NATS connection and three tasks:

- the **reader** applies records from an ordered push consumer, in stream order,
  into :meth:`Stream.commit` — every node, the writer included, sees the same
  records in the same order, so ``seq``, entries and gap messages are identical;
- the **writer** (``writer.RecordWriter``) publishes what this node ingested;
- the **monitor** probes the stream twice a second: its last sequence (lag),
  its identity (``created``: a re-created stream is a new epoch), and health.

The epoch is derived from the stream's name and creation time, the same on
every node.  When it changes every client is closed (1012) so it resumes with
its old epoch and is told with an ``epoch`` gap; the ring, producer positions
and applied position restart from the new stream's first record.

Health: :attr:`problem` is None while the stream answers and this node has
applied what it saw at start; otherwise it names the reason (``/status``,
``/healthz`` 503, systemd STATUS).  Nothing here ever blocks ingest or fan-out:
the loop only awaits NATS in these tasks.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

import msgspec
import nats
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from emitter_sdk.wire import WireEvent
from gateway.core.sequencer import ProducerTracker
from gateway.engine.fanout import Hub
from gateway.engine.stream import Stream
from gateway.engine.subscriber import Subscriber
from gateway.ports.cluster.history import replay_then_join
from gateway.ports.cluster.record import Record, decode_record, record_entries
from gateway.ports.cluster.writer import RecordWriter

log = structlog.get_logger("gateway.cluster")

PROBE_INTERVAL = 0.5
REQUEST_TIMEOUT = 2.0
#: Probes without progress, with records waiting, before the reader is restarted.
STALL_PROBES = 6
#: Errors of the NATS client and of the connection under it (timeouts included).
NATS_ERRORS = (nats.errors.Error, asyncio.TimeoutError, OSError)


@dataclass(frozen=True)
class ClusterSettings:
    """The ``--cluster*`` options a node needs (built from the daemon's Config)."""

    servers: list[str]
    stream: str
    replicas: int
    max_events: int
    max_age_s: float
    #: This node's name in ``/status`` (host and HTTP port).
    node: str


def stream_epoch(name: str, created: object) -> str:
    """The epoch of a stream incarnation: same on every node, new when it is re-created."""
    return hashlib.sha256(f"{name}\0{created}".encode()).hexdigest()[:8]


class ClusterSource:
    """Applies the shared stream to this node's :class:`Stream`; publishes its ingest."""

    def __init__(self, settings: ClusterSettings, stream: Stream, hub: Hub) -> None:
        self.settings = settings
        self.stream = stream
        self.hub = hub
        self.servers = settings.servers
        self.name = settings.stream
        self.subject = f"{self.name}.records"
        self.node = settings.node
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.writer = RecordWriter(self)
        #: Stream sequence of the last record applied here (0: none).
        self.applied_sseq = 0
        #: The stream's last sequence as last seen (probe or publish ack).
        self.last_sseq = 0
        self.first_sseq = 0
        self.created: object = None
        self.problem: str | None = "connecting to NATS"
        #: Stream seq this node must apply before it serves (set at each (re)start of the reader).
        self.sync_target: int | None = None
        self.records_applied = 0
        self.bad_records = 0
        self.epoch_changes = 0
        #: First event seq and stream seq of every applied record still in the stream (history reads).
        self.index_seq: array[int] = array("q")
        self.index_sseq: array[int] = array("q")
        self.applied = asyncio.Event()
        self._sub: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._replays: set[asyncio.Task[None]] = set()
        self._last_probe_applied = 0
        self._still = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stream.source = self
        self._tasks = [loop.create_task(self._run()), loop.create_task(self.writer.run())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.close(), 1.0)
            except (*NATS_ERRORS, asyncio.CancelledError):
                pass

    @property
    def ok(self) -> bool:
        return self.problem is None

    def set_problem(self, problem: str | None) -> None:
        if problem != self.problem:
            if problem is None:
                log.info("cluster.healthy", stream=self.name, applied=self.applied_sseq)
            else:
                log.warning("cluster.degraded", stream=self.name, reason=problem)
        self.problem = problem

    async def _run(self) -> None:
        while self.nc is None:
            try:
                self.nc = await nats.connect(
                    servers=self.servers,
                    name=f"event-gateway {self.node}",
                    connect_timeout=2,
                    reconnect_time_wait=0.5,
                    max_reconnect_attempts=-1,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                )
            except NATS_ERRORS as exc:
                self.set_problem(f"cannot reach NATS ({', '.join(self.servers)}): {exc or type(exc).__name__}")
                await asyncio.sleep(1.0)
        self.js = self.nc.jetstream(timeout=REQUEST_TIMEOUT)
        while True:
            try:
                await self._probe()
            except NATS_ERRORS as exc:
                self.set_problem(f"JetStream unavailable: {exc or type(exc).__name__}")
            await asyncio.sleep(PROBE_INTERVAL)

    async def _on_disconnected(self) -> None:
        self.set_problem("disconnected from NATS")

    async def _on_reconnected(self) -> None:
        log.info(
            "cluster.reconnected", server=str(self.nc.connected_url.netloc if self.nc and self.nc.connected_url else "")
        )

    async def _on_error(self, exc: Exception) -> None:
        log.warning("cluster.nats_error", error=str(exc) or type(exc).__name__)

    # -- the monitor --------------------------------------------------------------------

    async def _probe(self) -> None:
        """Stream info: create the stream if missing, follow its identity, measure lag."""
        assert self.js is not None
        try:
            info = await self.js.stream_info(self.name)
        except NotFoundError:
            info = await self._create_stream()
        if info.created != self.created or self._sub is None or self._stalled(info.state.last_seq):
            await self._follow(info)
        self.last_sseq = max(self.last_sseq, info.state.last_seq)
        self._trim_index(info.state.first_seq)
        if self.sync_target is not None and self.applied_sseq >= self.sync_target:
            self.sync_target = None
        if self.sync_target is not None:
            self.set_problem(f"catching up with the stream (applied {self.applied_sseq} of {self.sync_target})")
        else:
            self.set_problem(self.writer.problem)

    def _stalled(self, last_sseq: int) -> bool:
        """True when the stream has records this node has not applied and its reader has not
        moved for ``STALL_PROBES`` probes (the reader is then restarted from the applied position)."""
        if last_sseq <= self.applied_sseq or self.applied_sseq != self._last_probe_applied:
            self._last_probe_applied, self._still = self.applied_sseq, 0
            return False
        self._still += 1
        if self._still < STALL_PROBES:
            return False
        log.warning("cluster.reader_stalled", stream=self.name, applied=self.applied_sseq, last=last_sseq)
        self._still = 0
        return True

    async def _create_stream(self) -> api.StreamInfo:
        assert self.js is not None
        settings = self.settings
        info = await self.js.add_stream(
            name=self.name,
            subjects=[self.subject],
            num_replicas=settings.replicas,
            max_msgs=settings.max_events,
            max_age=settings.max_age_s,
            allow_direct=True,
            storage=api.StorageType.FILE,
        )
        log.info("cluster.stream_created", stream=self.name, replicas=settings.replicas)
        return info

    async def _follow(self, info: api.StreamInfo) -> None:
        """(Re)start the reader on stream incarnation ``info``; a new one is a new epoch."""
        assert self.js is not None
        epoch = stream_epoch(self.name, info.created)
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except NATS_ERRORS:
                pass
            self._sub = None
        if epoch != self.stream.epoch:
            self._new_epoch(epoch)
        self.created = info.created
        self.sync_target = info.state.last_seq
        self._sub = await self.js.subscribe(
            self.subject,
            stream=self.name,
            cb=self._on_record,
            ordered_consumer=True,
            idle_heartbeat=1.0,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.applied_sseq + 1,
            ),
        )

    def _new_epoch(self, epoch: str) -> None:
        old = self.stream.epoch
        for sub in list(self.hub.subscribers):
            self.hub.close(sub, 1012, "epoch changed")
        self.stream.epoch = epoch
        self.stream.ring.reset(0)
        self.stream.tracker = ProducerTracker()
        self.applied_sseq = self.last_sseq = 0
        self.index_seq, self.index_sseq = array("q"), array("q")
        if self.created is None and self.records_applied == 0:
            log.info("cluster.joined", stream=self.name, epoch=epoch, node=self.node)
            return
        self.epoch_changes += 1
        log.warning("cluster.epoch", stream=self.name, epoch=epoch, previous=old)

    def _trim_index(self, first_sseq: int) -> None:
        self.first_sseq = first_sseq
        cut = bisect_right(self.index_sseq, first_sseq - 1)
        if cut > 4096 or (cut and cut * 2 > len(self.index_sseq)):
            del self.index_seq[:cut]
            del self.index_sseq[:cut]

    # -- the reader -----------------------------------------------------------------------

    async def _on_record(self, msg: Msg) -> None:
        sseq = msg.metadata.sequence.stream
        if sseq <= self.applied_sseq:
            return
        try:
            record = decode_record(msg.data)
        except msgspec.DecodeError:
            self.bad_records += 1
            self.applied_sseq = sseq
            log.error("cluster.bad_record", sseq=sseq)
            return
        self.apply(record, sseq)

    def apply(self, record: Record, sseq: int) -> None:
        """Append ``record`` (stream sequence ``sseq``) to the ring and fan it out."""
        stream = self.stream
        if record.epoch != stream.epoch:
            log.warning("cluster.foreign_record", sseq=sseq, epoch=record.epoch)
            self.created = None  # the next probe re-reads the stream's identity
            return
        head = stream.ring.head
        if record.first_seq != head + 1 and not (self.applied_sseq == 0 and head == 0):
            if record.first_seq <= head:
                self.applied_sseq = sseq
                return
            log.error("cluster.hole", sseq=sseq, expected=head + 1, got=record.first_seq)
            for sub in list(self.hub.subscribers):  # they resume and are told with a gap
                self.hub.close(sub, 1013, "cluster node fell behind the stream")
        if record.first_seq != head + 1:
            stream.ring.reset(record.first_seq - 1)
        now = time.time()
        admit = stream.tracker.admit
        for ev in record.events:
            admit(ev.producer, ev.pseq, now)
        entries = record_entries(record, stream.coalesce_types, lambda p, m, s: stream.upstream_gap(p, m, s, now))
        stream.commit(entries)
        self.applied_sseq = sseq
        self.last_sseq = max(self.last_sseq, sseq)
        self.records_applied += 1
        self.index_seq.append(record.first_seq)
        self.index_sseq.append(sseq)
        self.applied.set()
        self.applied.clear()

    async def wait_applied(self, sseq: int, timeout: float) -> bool:
        """Wait until the record at ``sseq`` (or later) has been applied here."""
        deadline = time.monotonic() + timeout
        while self.applied_sseq < sseq:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self.applied.wait(), left)
            except TimeoutError:
                return False
        return True

    def locate(self, seq: int) -> int | None:
        """Stream sequence of the record holding event ``seq``, if this node has applied it."""
        i = bisect_right(self.index_seq, seq) - 1
        if i < 0 or self.index_sseq[i] < self.first_sseq:
            return None
        return int(self.index_sseq[i])

    def oldest_seq(self) -> int | None:
        """The oldest event seq the stream still holds (as far as this node knows)."""
        i = bisect_right(self.index_sseq, self.first_sseq - 1)
        return int(self.index_seq[i]) if i < len(self.index_seq) else None

    def oldest_held(self, ring_oldest: int | None) -> int | None:
        """The oldest seq a client may resume from here: the stream's, else the ring's."""
        held = self.oldest_seq()
        if held is None or (ring_oldest is not None and ring_oldest < held):
            return ring_oldest
        return held

    def submit(self, events: list[WireEvent], received: float) -> None:
        """The port's entry: events ingested here go to the writer, to come back in the stream's order."""
        self.writer.submit(events)

    def join(self, sub: Subscriber, cursor: int) -> None:
        """Start ``sub`` at ``cursor``: replayed from the stream first when the ring lacks ``cursor+1``."""
        ring = self.stream.ring
        if cursor + 1 >= (ring.oldest or ring.head + 1):
            self.hub.add(sub, cursor)
            return
        task = asyncio.get_running_loop().create_task(replay_then_join(self, sub, cursor))
        self._replays.add(task)
        task.add_done_callback(self._replays.discard)

    def statistics(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "stream": self.name,
            "servers": self.servers,
            "replicas": self.settings.replicas,
            "connected": bool(self.nc is not None and self.nc.is_connected),
            "problem": self.problem,
            "stream_last_seq": self.last_sseq,
            "applied_seq": self.applied_sseq,
            "lag": max(0, self.last_sseq - self.applied_sseq),
            "records_applied": self.records_applied,
            "bad_records": self.bad_records,
            "epoch_changes": self.epoch_changes,
            "oldest_seq": self.oldest_seq(),
            "replaying_clients": len(self._replays),
            **self.writer.statistics(),
        }
