"""Publishing what this node ingested: pending events → records → the stream.

:meth:`RecordWriter.submit` (called by :meth:`Stream.ingest` on the event loop,
never blocking) appends validated events to the bounded :class:`Pending` buffer.
The :meth:`RecordWriter.run` task plans records (``record.plan_record``) and
publishes them, up to ``DEPTH`` at a time without waiting for their acks.  Each
record carries a ``Nats-Msg-Id`` unique to this writer; the first of a chain is
published with ``Nats-Expected-Last-Sequence`` = the stream sequence it was planned
on (what this node applied, or its last acknowledged record), each next one with
``Nats-Expected-Last-Msg-Id`` = the previous one's id, so JetStream stores a
record only right after the record it was planned after — the sequence stays the
one every node computes, however many are in flight.  Acks are taken oldest first:

- accepted: its events leave the buffer; the next records follow it (at most
  ``MAX_AHEAD`` acknowledged records ahead of the reader);
- wrong last sequence / msg id (another node's record came first): the rest of
  the chain is abandoned (it cannot land: each expects its predecessor), the
  reader applies the newer records, and the events are planned again — those the
  winner carried are now duplicates and drop;
- unreachable / timed out / no quorum: the chain is abandoned, the node is
  degraded, the buffer keeps filling, publishing is retried with backoff (a record
  that did land after all is applied by the reader; its events re-planned are
  duplicates: no event twice).

A published record is kept by its ``Nats-Msg-Id`` from the moment it is published (the stream may
deliver it to the reader before its ack arrives) until the reader applies it (at most
``MAX_AHEAD + DEPTH + 2``, oldest dropped first), so the reader does not decode what this node
encoded (:meth:`RecordWriter.own_record`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from nats.js import api
from nats.js.errors import APIError

from emitter_sdk.wire import WireEvent
from gateway.engine.source import Rejected
from gateway.ports.cluster.pending import Pending
from gateway.ports.cluster.record import Plan, Position, Record, encode_record, plan_record

if TYPE_CHECKING:
    from gateway.ports.cluster.source import ClusterSource

log = structlog.get_logger("gateway.cluster")

MAX_PENDING = 200_000
RECORD_EVENTS = 4096
RECORD_BYTES = 512 << 10
WRONG_LAST_MSG_ID = 10070
WRONG_LAST_SEQUENCE = 10071
PUBLISH_TIMEOUT = 2.0
#: Records published and not yet acknowledged (a chain).
DEPTH = 4
#: Acknowledged records this node may have beyond what its reader has applied.
MAX_AHEAD = 8
#: Events the stream may hold beyond ``--cluster-max-events`` before records are purged.
TRIM_SLACK = 64


@dataclass
class Flight:
    """A record published and not yet acknowledged."""

    plan: Plan
    msg_id: str
    #: Producer positions after this record (the next record of the chain is planned on them).
    positions: dict[str, Position]
    ack: asyncio.Task[api.PubAck]


def _retrieve(ack: asyncio.Task[api.PubAck]) -> None:
    """An abandoned flight's outcome is not needed: read it so asyncio does not report it."""
    if not ack.cancelled():
        ack.exception()


class RecordWriter:
    """The pending buffer and the publish loop of one node."""

    def __init__(self, source: ClusterSource) -> None:
        self.source = source
        self.buffer = Pending(MAX_PENDING)
        self.wake = asyncio.Event()
        self.problem: str | None = None
        self.records_published = 0
        self.events_published = 0
        self.conflicts = 0
        #: Conflicts on a chained link (``Nats-Expected-Last-Msg-Id``, not a chain's first record).
        self.links_refused = 0
        #: Chains dropped before all their records were acknowledged (a conflict or a failed publish).
        self.chains_abandoned = 0
        self.publish_errors = 0
        #: This node's newest acknowledged record not yet applied here: (its stream seq, the next
        #: event seq, producer positions after it, epoch) — the next chain is planned after it.
        self._ahead: tuple[int, int, dict[str, Position], str] | None = None
        self._flights: deque[Flight] = deque()
        #: Pending events the flights carry (the oldest ones).
        self._flying = 0
        #: Stream seq the oldest flight follows (its expected last sequence, or its predecessor's ack).
        self._after_sseq = 0
        self._id = uuid.uuid4().hex[:12]
        self._serial = 0
        #: Records this node published and its reader has not applied yet, by ``Nats-Msg-Id``, oldest
        #: first, so the reader takes them as they are instead of decoding their bytes.
        self._published: dict[str, Record] = {}

    def submit(self, events: list[WireEvent | Rejected]) -> None:
        """Queue validated events (and rejected ones, to take their ``pseq``) for the stream;
        never blocks (drops past ``MAX_PENDING``)."""
        if self.buffer.add(events):
            self.wake.set()

    def own_record(self, msg_id: str | None) -> Record | None:
        """The record this node published with ``Nats-Msg-Id`` ``msg_id`` in the current epoch, if it
        still has it (else the reader decodes the bytes it received: the same record)."""
        record = self._published.pop(msg_id, None) if msg_id else None
        return record if record is not None and record.epoch == self.source.stream.epoch else None

    async def run(self) -> None:
        backoff = 0.05
        while True:
            if not self._flights and not self.buffer:
                self.wake.clear()
                await self.wake.wait()
            source = self.source
            if source.js is None or source.sync_target is not None or source.created is None:
                await asyncio.sleep(0.05)  # not connected or not caught up: keep buffering
                continue
            if len(self.buffer) > self._flying and len(self._flights) < DEPTH and await self._launch():
                continue
            if not self._flights:
                continue
            if await self._land():
                backoff = 0.05
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    def _project(self) -> tuple[int, int, dict[str, Position]]:
        """Where a new chain goes: after this node's own acknowledged records still on their way
        to the reader, else after what it applied.  Returns (stream seq, first seq, positions)."""
        source = self.source
        stream = source.stream
        ahead = self._ahead
        if ahead is None or ahead[3] != stream.epoch or source.applied_sseq >= ahead[0]:
            return source.applied_sseq, stream.ring.head + 1, {}
        return ahead[0], ahead[1], ahead[2]

    async def _launch(self) -> bool:
        """Plan the next record after the flights (or start a chain) and publish it without
        waiting for its ack.  False when nothing was launched (then the oldest flight is awaited)."""
        source, stream = self.source, self.source.stream
        assert source.js is not None
        headers: dict[str, str] = {}
        if self._flights:
            last = self._flights[-1]
            if last.plan.record.epoch != stream.epoch:
                return False
            first_seq, positions = last.plan.record.last_seq + 1, last.positions
            headers[api.Header.EXPECTED_LAST_MSG_ID] = last.msg_id
        else:
            if self._ahead is not None and self._ahead[0] - source.applied_sseq > MAX_AHEAD:
                await source.wait_applied(self._ahead[0] - MAX_AHEAD, PUBLISH_TIMEOUT)
            base, first_seq, positions = self._project()
            headers[api.Header.EXPECTED_LAST_SEQUENCE] = str(base)
            self._after_sseq = base
        plan = plan_record(
            self.buffer.after(self._flying),
            stream.tracker,
            epoch=stream.epoch,
            first_seq=first_seq,
            max_events=RECORD_EVENTS,
            max_bytes=RECORD_BYTES,
            ahead=positions,
        )
        if not plan.record.events and not plan.record.skips:  # all carried by other nodes already
            if self._flights:
                return False
            self._consume(plan)
            self.problem = None
            return True
        self._serial += 1
        msg_id = headers[api.Header.MSG_ID] = f"{self._id}.{self._serial}"
        publish = source.js.publish(
            source.subject, encode_record(plan.record), timeout=PUBLISH_TIMEOUT, headers=headers
        )
        ack = asyncio.ensure_future(publish)
        published = self._published
        published[msg_id] = plan.record
        if len(published) > MAX_AHEAD + DEPTH + 2:
            del published[next(iter(published))]
        ack.add_done_callback(_retrieve)
        flight = Flight(plan, msg_id, {**positions, **plan.positions}, ack)
        self._flights.append(flight)
        self._flying += plan.taken
        return True

    async def _land(self) -> bool:
        """Take the oldest flight's ack; False when the stream could not take it (retry later)."""
        source = self.source
        flight = self._flights[0]
        try:
            ack = await flight.ack
        except APIError as exc:
            self._abandon()
            if exc.err_code in (WRONG_LAST_SEQUENCE, WRONG_LAST_MSG_ID):  # another node's record came first
                self.conflicts += 1
                if exc.err_code == WRONG_LAST_MSG_ID:  # a later link: its predecessor is not the last record
                    self.links_refused += 1
                self.problem = None
                await source.wait_applied(self._after_sseq + 1, PUBLISH_TIMEOUT)
                return True
            return self._failed(exc)
        except Exception as exc:  # noqa: BLE001 - any transport failure: degrade, keep the events, retry
            self._abandon()
            return self._failed(exc)
        self._flights.popleft()
        self._flying -= flight.plan.taken
        self._after_sseq = ack.seq
        plan = flight.plan
        self._consume(plan)
        self.records_published += 1
        self.events_published += len(plan.record.events)
        self.problem = None
        source.last_sseq = max(source.last_sseq, ack.seq)
        self._ahead = (ack.seq, plan.record.last_seq + 1, flight.positions, plan.record.epoch)
        await self._trim()
        return True

    def _abandon(self) -> None:
        """Drop the chain: its events stay pending, to be planned again after what the reader applies."""
        for flight in self._flights:
            flight.ack.cancel()
        self.chains_abandoned += 1
        self._flights.clear()
        self._flying = 0
        self._ahead = None

    async def _trim(self) -> None:
        """Keep about ``max_events`` events in the stream: once it holds ``TRIM_SLACK`` more,
        purge the whole records older than the newest ``max_events``.

        Any node may do it (a purge below a sequence is idempotent); a failure is left for the
        next record.  JetStream's own ``max_msgs`` (records) and ``max_age`` bound it meanwhile.
        """
        source = self.source
        head, limit = source.stream.ring.head, source.settings.max_events
        oldest = source.oldest_seq()
        if oldest is None or head - oldest + 1 <= limit + max(TRIM_SLACK, limit // 16) or source.js is None:
            return
        sseq = source.locate(head - limit + 1)
        if sseq is None or sseq <= source.first_sseq:
            return
        try:
            await source.js.purge_stream(source.name, seq=sseq)
            source.first_sseq = sseq
        except Exception as exc:  # noqa: BLE001 - retention is retried after the next records
            log.warning("cluster.trim_failed", error=str(exc) or type(exc).__name__)

    def _consume(self, plan: Plan) -> None:
        """Drop the events ``plan`` accounted for from the buffer; count its drops."""
        self.buffer.pop(plan.taken)
        stream = self.source.stream
        stream.duplicates += plan.duplicates
        for reason in plan.rejected:
            stream.rejected[reason] += 1

    def _failed(self, exc: BaseException) -> bool:
        self.publish_errors += 1
        problem = f"cannot publish to JetStream: {exc or type(exc).__name__}"
        if problem != self.problem:
            log.warning("cluster.publish_failed", error=str(exc) or type(exc).__name__, pending=len(self.buffer))
        self.problem = problem
        self.source.set_problem(problem)
        return False

    def statistics(self) -> dict[str, Any]:
        return {
            "pending": len(self.buffer),
            "pending_dropped": self.buffer.dropped,
            "records_published": self.records_published,
            "events_published": self.events_published,
            "conflicts": self.conflicts,
            "links_refused": self.links_refused,
            "chains_abandoned": self.chains_abandoned,
            "publish_errors": self.publish_errors,
        }
