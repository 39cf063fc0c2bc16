"""Publishing what this node ingested: pending events → records → the stream, one at a time.

:meth:`RecordWriter.submit` (called by :meth:`Stream.ingest` on the event loop,
never blocking) appends validated events to a bounded pending buffer.  The
:meth:`RecordWriter.run` task plans a record on the state this node has
applied (``record.plan_record``) and publishes it with
``Nats-Expected-Last-Sequence`` = the applied stream sequence:

- accepted: the events leave the buffer; the next record is planned right
  after this one (pipelined: at most ``MAX_AHEAD`` records ahead of the reader),
  with the producer positions this one reached;
- wrong last sequence (another node won the position): wait for the reader to
  apply the newer records, plan again — events the winner already carried are
  now duplicates and drop;
- unreachable / timed out / no quorum: the node is degraded, the buffer keeps
  filling, publishing is retried with backoff (a publish that did land after a
  timeout shows up as a wrong-last-sequence conflict: no event twice).

Bounded: at most ``MAX_PENDING`` events wait; past that the newest are dropped
and counted (``pending_dropped``) — the producer's next accepted event then
reports them as an upstream gap, so nothing is lost silently.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from itertools import chain, islice
from typing import TYPE_CHECKING, Any

import structlog
from nats.js import api
from nats.js.errors import APIError

from emitter_sdk.wire import WireEvent
from gateway.engine.source import Rejected
from gateway.ports.cluster.record import Plan, Position, encode_record, plan_record

if TYPE_CHECKING:
    from gateway.ports.cluster.source import ClusterSource

log = structlog.get_logger("gateway.cluster")

MAX_PENDING = 200_000
RECORD_EVENTS = 4096
RECORD_BYTES = 512 << 10
WRONG_LAST_SEQUENCE = 10071
PUBLISH_TIMEOUT = 2.0
#: Records this node may have published beyond what its reader has applied (pipelining).
MAX_AHEAD = 8
#: Events the stream may hold beyond ``--cluster-max-events`` before records are purged.
TRIM_SLACK = 64


class RecordWriter:
    """The pending buffer and the publish loop of one node."""

    def __init__(self, source: ClusterSource) -> None:
        self.source = source
        #: Pending events as the batches ingest submitted, oldest first; the first
        #: ``_offset`` events of the first batch are already consumed.
        self._batches: deque[list[WireEvent | Rejected]] = deque()
        self._offset = 0
        self.pending = 0
        self.wake = asyncio.Event()
        self.problem: str | None = None
        self.records_published = 0
        self.events_published = 0
        self.conflicts = 0
        self.publish_errors = 0
        self.pending_dropped = 0
        #: This node's newest published record not yet applied here: (its stream seq, the next
        #: event seq, producer positions after it, epoch) — the next record is planned after it.
        self._ahead: tuple[int, int, dict[str, Position], str] | None = None

    def submit(self, events: list[WireEvent | Rejected]) -> None:
        """Queue validated events (and rejected ones, to take their ``pseq``) for the stream;
        never blocks (drops past ``MAX_PENDING``)."""
        room = MAX_PENDING - self.pending
        if room < len(events):
            self.pending_dropped += len(events) - max(room, 0)
            events = events[: max(room, 0)]
        if events:
            self._batches.append(events)
            self.pending += len(events)
            self.wake.set()

    def _pending(self) -> Iterator[WireEvent | Rejected]:
        """The pending events, oldest first."""
        batches = self._batches
        if not batches:
            return iter(())
        return chain(islice(batches[0], self._offset, None), chain.from_iterable(islice(batches, 1, None)))

    async def run(self) -> None:
        backoff = 0.05
        while True:
            if not self.pending:
                self.wake.clear()
                await self.wake.wait()
            source = self.source
            if source.js is None or source.sync_target is not None or source.created is None:
                await asyncio.sleep(0.05)  # not connected or not caught up: keep buffering
                continue
            if await self._publish_one():
                backoff = 0.05
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    def _project(self) -> tuple[int, int, dict[str, Position]]:
        """Where the next record goes: after this node's own records still in flight to the
        reader (pipelined), else after what it applied.  Returns (stream seq, first seq, positions)."""
        source = self.source
        stream = source.stream
        ahead = self._ahead
        if ahead is None or ahead[3] != stream.epoch or source.applied_sseq >= ahead[0]:
            return source.applied_sseq, stream.ring.head + 1, {}
        return ahead[0], ahead[1], ahead[2]

    async def _publish_one(self) -> bool:
        """Plan and publish one record; False when the stream could not take it (retry later)."""
        source = self.source
        stream = source.stream
        assert source.js is not None
        if self._ahead is not None and self._ahead[0] - source.applied_sseq > MAX_AHEAD:
            await source.wait_applied(self._ahead[0] - MAX_AHEAD, PUBLISH_TIMEOUT)
        base, first_seq, positions = self._project()
        plan = plan_record(
            self._pending(),
            stream.tracker,
            epoch=stream.epoch,
            first_seq=first_seq,
            max_events=RECORD_EVENTS,
            max_bytes=RECORD_BYTES,
            ahead=positions,
        )
        if not plan.record.events and not plan.record.skips:  # all carried by other nodes already
            self._consume(plan)
            self.problem = None
            return True
        try:
            ack = await source.js.publish(
                source.subject,
                encode_record(plan.record),
                timeout=PUBLISH_TIMEOUT,
                headers={api.Header.EXPECTED_LAST_SEQUENCE: str(base)},
            )
        except APIError as exc:
            self._ahead = None
            if exc.err_code == WRONG_LAST_SEQUENCE:  # the stream answered: another node won
                self.conflicts += 1
                self.problem = None
                await source.wait_applied(base + 1, PUBLISH_TIMEOUT)
                return True
            return self._failed(exc)
        except Exception as exc:  # noqa: BLE001 - any transport failure: degrade, keep the events, retry
            self._ahead = None
            return self._failed(exc)
        self._consume(plan)
        self.records_published += 1
        self.events_published += len(plan.record.events)
        self.problem = None
        source.last_sseq = max(source.last_sseq, ack.seq)
        self._ahead = (ack.seq, plan.record.last_seq + 1, {**positions, **plan.positions}, plan.record.epoch)
        await self._trim()
        return True

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
        """Drop the events ``plan`` accounted for from the pending batches; count its drops."""
        batches, taken = self._batches, plan.taken
        self.pending -= taken
        while taken:
            left = len(batches[0]) - self._offset
            if taken < left:
                self._offset += taken
                break
            batches.popleft()
            self._offset = 0
            taken -= left
        stream = self.source.stream
        stream.duplicates += plan.duplicates
        for reason in plan.rejected:
            stream.rejected[reason] += 1

    def _failed(self, exc: BaseException) -> bool:
        self.publish_errors += 1
        problem = f"cannot publish to JetStream: {exc or type(exc).__name__}"
        if problem != self.problem:
            log.warning("cluster.publish_failed", error=str(exc) or type(exc).__name__, pending=self.pending)
        self.problem = problem
        self.source.set_problem(problem)
        return False

    def statistics(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "pending_dropped": self.pending_dropped,
            "records_published": self.records_published,
            "events_published": self.events_published,
            "conflicts": self.conflicts,
            "publish_errors": self.publish_errors,
        }
