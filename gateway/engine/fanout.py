"""Fan-out: every client is a cursor into the shared ring; nothing awaits a client.

Each event is encoded once (``Entry.frame``); a batch of events is joined once
per distinct (transport, filter) and written with one ``transport.write`` to
every client that is *live* (its cursor at the previous head and its socket
buffer under ``high_water``).  A client whose socket buffer is full is *lagging*:
nothing more is written to it until its buffer drains below ``low_water``, then
:meth:`Hub.pump` catches it up from the ring in chunks.  There are no
per-client queues: what a client has not yet received is the ring range
``cursor+1 .. head``, so a stalled socket costs memory only in its kernel and
transport buffers (≤ ``high_water`` + one batch).

A client's lag (events and frame bytes between its cursor and the head) is
bounded by ``queue_events`` / ``queue_bytes`` once it has caught up with the
head (a client replaying a long resume is bounded by the ring alone), and
always by the ring itself.  Past
that bound the slow-client policy applies:

- ``disconnect``: close 1013; the client resumes from the ring;
- ``drop-oldest``: skip to half the bound behind the head and send
  ``gateway.gap`` reason ``slow_client`` for the skipped range (upstream gaps
  carried by skipped events are still sent);
- ``coalesce``: while over the bound, skip events superseded by a newer event
  with the same ``(type, entity)`` for the configured state-like types (each
  skipped run reported as a ``slow_client`` gap); if even that cannot keep the
  lag under twice the bound, drop-oldest.

Invariant for every client: the seqs it is sent plus the ranges of the gap
messages it is sent cover every seq from its start cursor onwards, in order.

A client at the head (not lagging, transport open) is *live*: a member of one
:class:`~gateway.engine.groups.Group`, written each batch without Python code
per client (see there); :meth:`Hub.cursor` reads its position.
"""

from __future__ import annotations

import asyncio

from gateway.core.protocol import encode, gap
from gateway.core.ring import Entry, Ring
from gateway.engine.groups import LIVE, Group
from gateway.engine.subscriber import Subscriber

CATCH_UP_CHUNK = 512
#: Slow-client policies that skip events (reported as ``slow_client`` gaps); ``disconnect`` closes instead.
SKIPPING_POLICIES = ("drop-oldest", "coalesce")


class Hub:
    """The set of subscribers and the logic that feeds them from the ring."""

    def __init__(
        self,
        ring: Ring,
        *,
        policy: str = "disconnect",
        queue_events: int = 5_000,
        queue_bytes: int = 8 << 20,
        high_water: int = 256 << 10,
        low_water: int = 64 << 10,
    ) -> None:
        self.ring = ring
        self.policy = policy
        self.queue_events = queue_events
        self.queue_bytes = queue_bytes
        self.high_water = high_water
        self.low_water = low_water
        self.subscribers: dict[Subscriber, None] = {}
        #: The live subscribers by ``(cache_key, transport type)`` (``cache_key``: transport
        #: kind, filter, framing): a batch is rendered once per group.  No empty groups; the
        #: members of a group share one ``cache_key`` object.
        self.groups: dict[tuple[object, ...], Group] = {}
        #: The last seq written to every live client (their cursor).
        self.sent = ring.head
        #: Subscribers per remote address (``--max-clients-per-ip``); no zero entries.
        self.per_peer: dict[str, int] = {}
        self.lagging: dict[Subscriber, None] = {}
        self.deliveries = 0
        self.drops: dict[str, int] = dict.fromkeys((*SKIPPING_POLICIES, "disconnect"), 0)
        self.slow_disconnects = 0
        self._pump_task: asyncio.Task[None] | None = None

    # -- membership --------------------------------------------------------------------

    def add(self, sub: Subscriber, start: int) -> None:
        """Register ``sub`` with its cursor at ``start``; it catches up from the ring."""
        if sub.cursor == LIVE:
            self._leave_group(sub)
        sub.cursor = start
        sub.caught_up = start >= self.ring.head
        if sub not in self.subscribers:
            self.per_peer[sub.peer] = self.per_peer.get(sub.peer, 0) + 1
            self.subscribers[sub] = None
        if start < self.ring.head:
            self._set_lagging(sub)
            self.pump(sub)
        else:
            self._join_group(sub)

    def cursor(self, sub: Subscriber) -> int:
        """The last seq ``sub`` has accounted for (sent, or inside a gap sent to it)."""
        return self.sent if sub.cursor == LIVE else sub.cursor

    def _join_group(self, sub: Subscriber) -> None:
        """Make ``sub`` live if it is at the head and open: from now on it gets every batch."""
        head = self.ring.head
        if sub.cursor != head or sub.closed or sub.transport.is_closing():
            return
        self._resync(head)
        key = (sub.cache_key, type(sub.transport))
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(sub.cache_key, type(sub.transport))
        else:  # share the group's key: one key (and filter key) tuple per group, not per client
            sub.cache_key = group.key
        group.join(sub)

    def _resync(self, head: int) -> None:
        """If the ring moved without a broadcast (a reset), live clients catch up from where they are."""
        if self.sent != head:
            for sub in [s for group in self.groups.values() for s in group.live]:
                self._set_lagging(sub)
            self.sent = head

    def _leave_group(self, sub: Subscriber, cursor: int | None = None) -> None:
        """``sub`` (live) gets no more batches; its cursor (``sent`` unless given) and count are its own again."""
        key = (sub.cache_key, type(sub.transport))
        group = self.groups[key]
        group.leave(sub, self.sent if cursor is None else cursor)
        if not group.live:
            del self.groups[key]

    def close(self, sub: Subscriber, code: int, reason: str) -> None:
        """Stop feeding ``sub`` and close it with ``code`` (its transport's way)."""
        self.remove(sub)
        if sub.close_code is None:
            sub.close_code, sub.close_reason = code, reason
        sub.kick(code, reason)

    def remove(self, sub: Subscriber) -> None:
        """Forget ``sub``; idempotent."""
        sub.closed = True
        if sub in self.subscribers:
            if sub.cursor == LIVE:
                self._leave_group(sub)
            del self.subscribers[sub]
            left = self.per_peer[sub.peer] - 1
            if left:
                self.per_peer[sub.peer] = left
            else:
                del self.per_peer[sub.peer]
        self.lagging.pop(sub, None)

    def count_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for sub in self.subscribers:
            out[sub.kind] = out.get(sub.kind, 0) + 1
        return out

    # -- the hot path --------------------------------------------------------------------

    def broadcast(self, entries: list[Entry]) -> None:
        """Deliver a batch just appended to the ring to every live client.  Never awaits.

        The batch is rendered once per group of live clients (same ``cache_key``:
        transport kind, filter, framing) into the exact bytes each of them is written
        (:meth:`Subscriber.wire`), then handed to each one's transport with one
        ``write``: a burst of events that arrived while the loop was busy costs one
        syscall per client, a lone event costs no added latency.  A member whose
        transport is closing is skipped and leaves the group (nothing more is written to
        it); after the write, one whose buffer is over ``high_water`` becomes lagging (at
        most ``high_water`` + one batch stays buffered).  Both checks are C-level ``map``
        passes over the group's transports: no Python code per client.
        """
        if not entries:
            return
        before = entries[0].seq - 1
        last = entries[-1].seq
        self._resync(before)
        high = self.high_water
        delivered = 0
        for group in list(self.groups.values()):
            first = next(iter(group.live))
            data, count = self.render(first, entries)
            if not data:  # nothing for this group (its filter): its members' cursors move all the same
                continue
            written = group.write(first.wire(data))
            if written < len(group.live):
                for sub in group.closing():  # gone or going (its handler removes it): it never gets this batch
                    self._leave_group(sub)
            group.total += count
            delivered += count * written
            for sub in group.buffering():  # it has this batch; the next ones wait until it drains
                if sub.transport.get_write_buffer_size() > high:
                    self._set_lagging(sub, last)
        self.sent = last
        self.deliveries += delivered
        if self.lagging:
            for sub in list(self.lagging):
                self._enforce_bound(sub)

    def render(self, sub: Subscriber, entries: list[Entry]) -> tuple[bytes, int]:
        """``entries`` as ``sub`` receives them (its filter, its transport, upstream gaps kept), and the event count."""
        flt = sub.filter
        parts: list[bytes] = []
        if flt.matches_all:
            for e in entries:
                if e.upstream_gap:
                    parts.append(sub.control_bytes(e.upstream_gap))
                parts.append(sub.entry_bytes(e))
            return b"".join(parts), len(entries)
        count = 0
        for e in entries:
            if e.upstream_gap:
                parts.append(sub.control_bytes(e.upstream_gap))
            if flt.matches(e.type, e.kind, e.eid):
                parts.append(sub.entry_bytes(e))
                count += 1
        return b"".join(parts), count

    # -- lagging clients -------------------------------------------------------------------

    def _set_lagging(self, sub: Subscriber, cursor: int | None = None) -> None:
        """No more batches to ``sub`` (if live: its cursor is ``cursor``, else ``sent``); the pump catches it up."""
        if sub.cursor == LIVE:
            self._leave_group(sub, cursor)
        sub.lagging = True
        self.lagging[sub] = None
        if self._pump_task is None or self._pump_task.done():
            try:
                self._pump_task = asyncio.get_running_loop().create_task(self._pump_loop())
            except RuntimeError:  # no loop: pure unit tests drive pump() by hand
                self._pump_task = None

    def _enforce_bound(self, sub: Subscriber) -> None:
        ring = self.ring
        head = ring.head
        lag = head - sub.cursor
        oldest = ring.oldest or head + 1
        evicted = sub.cursor + 1 < oldest
        lag_bytes = ring.bytes_between(sub.cursor, head) if sub.caught_up else 0
        over = sub.caught_up and (lag > self.queue_events or lag_bytes > self.queue_bytes)
        if not (over or evicted):
            return
        if self.policy == "disconnect":
            self.slow_disconnects += 1
            self.drops["disconnect"] += 1
            self.close(sub, 1013, "too slow to keep up")
            return
        if (
            self.policy == "coalesce"
            and not evicted
            and lag <= 2 * self.queue_events
            and lag_bytes <= 2 * self.queue_bytes
        ):
            sub.coalescing = True
            return
        target = max(sub.cursor, head - self.queue_events // 2, oldest - 1)
        while target < head and ring.bytes_between(target, head) > self.queue_bytes // 2:
            target += max(1, (head - target) // 2)
        self._skip(sub, target, "drop-oldest")

    def _skip(self, sub: Subscriber, upto: int, policy: str) -> None:
        """Move ``sub`` past ``cursor+1 .. upto`` and say so with one ``slow_client`` gap.

        Upstream gaps carried by skipped entries still held are forwarded, so the
        client's accounting of upstream losses stays whole.
        """
        if upto <= sub.cursor:
            return
        sub.send_control(gap("slow_client", sub.cursor + 1, upto))
        for e in self.ring.after(sub.cursor, upto - sub.cursor):  # starts at oldest when cursor was evicted
            if e.seq > upto:
                break
            if e.upstream_gap:
                sub.send_control_json(e.upstream_gap)
        missed = upto - sub.cursor
        sub.dropped += missed
        self.drops[policy] += missed
        sub.cursor = upto

    def pump(self, sub: Subscriber) -> None:
        """Catch ``sub`` up from the ring while its socket buffer has room; at the head it is live again."""
        ring = self.ring
        if sub.cursor == LIVE:
            return
        while not sub.closed and sub.cursor < ring.head:
            if sub.transport.is_closing():
                return
            if sub.buffered() > self.low_water:
                return
            oldest = ring.oldest or ring.head + 1
            if sub.cursor + 1 < oldest:
                self._enforce_bound(sub)
                if sub.closed:
                    return
                continue
            chunk = ring.after(sub.cursor, CATCH_UP_CHUNK)
            if sub.coalescing:
                data, count = self._render_coalesced(sub, chunk)
            else:
                data, count = self.render(sub, chunk)
            if data:
                sub.write(data)
            sub.cursor = chunk[-1].seq
            sub.delivered += count
            self.deliveries += count
        if sub.cursor >= ring.head:
            sub.caught_up = True
            sub.lagging = False
            sub.coalescing = False
            self.lagging.pop(sub, None)
            self._join_group(sub)

    def _render_coalesced(self, sub: Subscriber, chunk: list[Entry]) -> tuple[bytes, int]:
        """Like ``render`` but skipping superseded entries, each skipped run reported."""
        ring, flt = self.ring, sub.filter
        parts: list[bytes] = []
        count = 0
        run_from = 0
        skipped = 0
        for e in chunk:
            if ring.is_superseded(e):
                run_from = run_from or e.seq
                skipped += 1
                if e.upstream_gap:  # the upstream loss is reported even when its event is not
                    parts.append(sub.control_bytes(e.upstream_gap))
                continue
            if run_from:
                parts.append(self._gap_bytes(sub, run_from, e.seq - 1))
                run_from = 0
            if e.upstream_gap:
                parts.append(sub.control_bytes(e.upstream_gap))
            if flt.matches(e.type, e.kind, e.eid):
                parts.append(sub.entry_bytes(e))
                count += 1
        if run_from:
            parts.append(self._gap_bytes(sub, run_from, chunk[-1].seq))
        sub.dropped += skipped
        self.drops["coalesce"] += skipped
        return b"".join(parts), count

    @staticmethod
    def _gap_bytes(sub: Subscriber, first: int, last: int) -> bytes:
        return sub.control_bytes(encode(gap("slow_client", first, last)))

    async def _pump_loop(self) -> None:
        while self.lagging:
            await asyncio.sleep(0.005)
            for sub in list(self.lagging):
                self.pump(sub)
