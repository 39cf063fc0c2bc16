"""A gateway as one node of a cluster: the JetStream stream is the source of sequenced events.

:class:`ClusterSource` is the engine's port (:class:`~gateway.engine.source.SequencedSource`)
on a cluster node: it keeps one NATS connection, this node's position in the
stream (what the writer, history reads and ``/status`` read) and three tasks:

- the **monitor** (``monitor.StreamMonitor``) connects, probes the stream twice a
  second (identity, lag, horizon) and keeps the node's health;
- the **reader** (``reader.StreamReader``) applies records from an ordered push
  consumer, in stream order, into :meth:`Stream.commit` — every node, the writer
  included, sees the same records in the same order;
- the **writer** (``writer.RecordWriter``) publishes what this node ingested.

Health: :attr:`problem` is None while the stream answers and this node has
applied what it saw at start; otherwise it names the reason (``/status``,
``/healthz`` 503, systemd STATUS).  Nothing here ever blocks ingest or fan-out:
the loop only awaits NATS in these tasks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from emitter_sdk.wire import WireEvent
from gateway.engine.fanout import Hub
from gateway.engine.source import Rejected
from gateway.engine.stream import Stream
from gateway.engine.subscriber import Subscriber
from gateway.ports.cluster.history import replay_then_join
from gateway.ports.cluster.monitor import NATS_ERRORS, StreamMonitor
from gateway.ports.cluster.reader import StreamReader
from gateway.ports.cluster.writer import RecordWriter

log = structlog.get_logger("gateway.cluster")

#: Why a node is degraded, as a label from a fixed set (``event_gateway_cluster_degraded{reason}``):
#: how :attr:`ClusterSource.problem` starts → the reason.  Anything else is ``other``.
DEGRADED_REASONS = {
    "connecting to NATS": "connecting",
    "cannot reach NATS": "unreachable",
    "disconnected from NATS": "disconnected",
    "JetStream unavailable": "jetstream_unavailable",
    "catching up": "catching_up",
    "cannot publish": "publish_failed",
    "": "other",
}


def degraded_reason(problem: str | None) -> str | None:
    """``problem`` as one of the ``DEGRADED_REASONS`` labels (None: healthy)."""
    if problem is None:
        return None
    return next(label for start, label in DEGRADED_REASONS.items() if problem.startswith(start))


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
        #: Stream sequence of the last record applied here (0: none).
        self.applied_sseq = 0
        #: The stream's last sequence as last seen (probe or publish ack).
        self.last_sseq = 0
        #: The stream incarnation followed (its ``created``; None: to be (re)read by the monitor).
        self.created: object = None
        self.problem: str | None = "connecting to NATS"
        #: Stream seq this node must apply before it serves (set at each (re)start of the reader).
        self.sync_target: int | None = None
        self.reader = StreamReader(self)
        self.monitor = StreamMonitor(self)
        self.writer = RecordWriter(self)
        self._tasks: list[asyncio.Task[None]] = []
        self._replays: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stream.source = self
        self._tasks = [loop.create_task(self.monitor.run()), loop.create_task(self.writer.run())]

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

    @property
    def degraded_reason(self) -> str | None:
        """:attr:`problem` as one of the ``DEGRADED_REASONS`` labels (None: healthy)."""
        return degraded_reason(self.problem)

    def set_problem(self, problem: str | None) -> None:
        if problem != self.problem:
            if problem is None:
                log.info("cluster.healthy", stream=self.name, applied=self.applied_sseq)
            else:
                log.warning("cluster.degraded", stream=self.name, reason=problem)
        self.problem = problem

    # -- the position in the stream (the writer and history reads) ------------------------

    @property
    def first_sseq(self) -> int:
        """The stream's first sequence as last seen (probe, or this node's own purge)."""
        return self.reader.index.first_sseq

    @first_sseq.setter
    def first_sseq(self, sseq: int) -> None:
        self.reader.index.first_sseq = sseq

    async def wait_applied(self, sseq: int, timeout: float) -> bool:
        """Wait until the record at ``sseq`` (or later) has been applied here."""
        return await self.reader.wait_applied(sseq, timeout)

    def locate(self, seq: int) -> int | None:
        """Stream sequence of the record holding event ``seq``, if this node has applied it."""
        return self.reader.index.locate(seq)

    def oldest_seq(self) -> int | None:
        """The oldest event seq the stream still holds (as far as this node knows)."""
        return self.reader.index.oldest_seq()

    # -- the engine's port ----------------------------------------------------------------

    def oldest_held(self, ring_oldest: int | None) -> int | None:
        """The oldest seq a client may resume from here: the stream's, else the ring's."""
        held = self.oldest_seq()
        if held is None or (ring_oldest is not None and ring_oldest < held):
            return ring_oldest
        return held

    def submit(self, items: list[WireEvent | Rejected], received: float) -> None:
        """The port's entry: events ingested here (and rejected ones, to take their ``pseq``) go to
        the writer, to come back in the stream's order."""
        self.writer.submit(items)

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
        reader = self.reader
        return {
            "node": self.node,
            "stream": self.name,
            "servers": self.servers,
            "replicas": self.settings.replicas,
            "connected": bool(self.nc is not None and self.nc.is_connected),
            "problem": self.problem,
            "stream_first_seq": self.first_sseq,
            "stream_last_seq": self.last_sseq,
            "applied_seq": self.applied_sseq,
            "lag": max(0, self.last_sseq - self.applied_sseq),
            "records_applied": reader.records_applied,
            "records_decoded": reader.records_decoded,
            "bad_records": reader.bad_records,
            "epoch_changes": reader.epoch_changes,
            "oldest_seq": self.oldest_seq(),
            "replaying_clients": len(self._replays),
            **self.writer.statistics(),
        }
