"""Resume from the stream: a client whose ``since`` is older than this node's ring.

:func:`replay_then_join` sends such a client the events ``since+1 ..`` read
from JetStream (the records this node applied, located by its index, fetched
with direct gets, several at a time), paced by the client's socket buffer, and
joins it to the hub once the next seq it needs is in the ring — the join is
synchronous after the last read, so replay and live delivery meet with no hole
and no duplicate.  Filters, upstream gaps and byte formats are the hub's own
(:meth:`Hub.render`).

Bounded: at most ``READ_AHEAD`` records are held per reading client; the client
is not in the hub meanwhile (it receives no live writes).  If the stream no
longer holds a range — older than the stream at the start, or trimmed by
JetStream while it is read — it is reported with a ``gateway.gap`` reason
``evicted`` up to the stream's oldest record (the ring's only when the stream
holds nothing older), and the replay goes on from there;
if JetStream cannot be read the client is closed with 1013 (it resumes, from
another node if need be).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec
import structlog
from nats.js.errors import NotFoundError

from gateway.core.protocol import gap
from gateway.core.ring import Entry
from gateway.engine.subscriber import Subscriber
from gateway.ports.cluster.record import decode_record, record_entries

if TYPE_CHECKING:
    from gateway.ports.cluster.source import ClusterSource

log = structlog.get_logger("gateway.cluster")

READ_AHEAD = 32


async def read_after(source: ClusterSource, after: int) -> list[Entry]:
    """Entries with seq > ``after`` from up to ``READ_AHEAD`` records, oldest first ([] if none held)."""
    sseq = source.locate(after + 1)
    if sseq is None or source.js is None:
        return []
    last = min(source.applied_sseq, sseq + READ_AHEAD - 1)
    js, name = source.js, source.name
    results = await asyncio.gather(
        *(js.get_msg(name, s, direct=True) for s in range(sseq, last + 1)), return_exceptions=True
    )
    entries: list[Entry] = []
    for result in results:
        if isinstance(result, NotFoundError):
            if not entries:  # trimmed meanwhile: where the stream starts now decides the gap
                info = await js.stream_info(name)
                source.first_sseq = max(source.first_sseq, info.state.first_seq)
            break
        if isinstance(result, BaseException):
            raise result
        try:
            record = decode_record(result.data or b"")
        except msgspec.DecodeError:
            break
        if record.epoch != source.stream.epoch:
            break
        entries.extend(record_entries(record, source.stream.coalesce_types))
    return [e for e in entries if e.seq > after]


def held_from(source: ClusterSource, cursor: int, first_held: int) -> int:
    """The first seq readable after ``cursor`` when the stream no longer holds ``cursor+1``:
    the stream's oldest record (it was trimmed), else the ring's oldest."""
    oldest = source.oldest_seq()
    return oldest if oldest is not None and cursor + 1 < oldest < first_held else first_held


async def replay_then_join(source: ClusterSource, sub: Subscriber, cursor: int) -> None:
    """Catch ``sub`` up from the stream from ``cursor`` on, then hand it to the hub."""
    hub, stream = source.hub, source.stream
    ring, epoch = stream.ring, stream.epoch
    try:
        while not sub.closed:
            first_held = ring.oldest or ring.head + 1
            if cursor + 1 >= first_held:
                break
            entries = [e for e in await read_after(source, cursor) if e.seq < first_held]
            if stream.epoch != epoch:
                break
            if not entries or entries[0].seq != cursor + 1:
                upto = (entries[0].seq if entries else held_from(source, cursor, first_held)) - 1
                sub.send_control(gap("evicted", cursor + 1, upto))
                cursor = upto
                continue
            data, count = hub.render(sub, entries)
            if data and not sub.closed:
                sub.write(data)
            sub.delivered += count
            hub.deliveries += count
            cursor = entries[-1].seq
            while not sub.closed and sub.buffered() > hub.low_water:
                await asyncio.sleep(0.005)
    except Exception as exc:  # noqa: BLE001 - any failure to read the stream: the client resumes elsewhere
        log.warning("cluster.replay_failed", peer=sub.peer, error=str(exc) or type(exc).__name__)
        hub.close(sub, 1013, "cannot read the cluster stream")
        return
    if sub.closed:
        return
    if stream.epoch != epoch:
        hub.close(sub, 1012, "epoch changed")
        return
    hub.add(sub, cursor)
