"""The slow-client policies of ``gateway.fanout.Hub`` without sockets.

A fake transport stands in for the socket: a *reading* client's bytes leave at
once, a *stalled* client's pile up in its write buffer until the test drains it.
Events enter through a real :class:`Stream`, so sequencing, the ring and the
coalesce keys are the production ones.  Every test checks the SPEC invariant on
what each client finally received.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from emitter_sdk.wire import ENCODER, Entity, WireEvent
from gateway.core.filters import Filter
from gateway.core.ring import Ring
from gateway.engine.fanout import Hub
from gateway.engine.stream import Stream
from gateway.engine.subscriber import Subscriber
from tests.rawws import assert_covers
from tests.support import FakeTransport

PAYLOAD = {"blob": "x" * 200}


class LineSubscriber(Subscriber):
    """One JSON document per line instead of WebSocket frames, to read back easily."""

    kind = "lines"

    def __init__(self, transport: Any, flt: Filter, peer: str, on_kick: Callable[[int, str], None]) -> None:
        super().__init__(transport, flt, peer)
        self.on_kick = on_kick

    def kick(self, code: int, reason: str) -> None:
        self.on_kick(code, reason)

    def entry_bytes(self, entry: Any) -> bytes:
        return bytes(entry.json) + b"\n"

    def control_bytes(self, json: bytes) -> bytes:
        return json + b"\n"


class Client:
    def __init__(self, hub: Hub, reading: bool = True, peer: str = "10.0.0.1") -> None:
        self.transport = FakeTransport(reading)
        self.kicked: tuple[int, str] | None = None
        self.sub = LineSubscriber(self.transport, Filter((), ()), peer, self._kick)
        self.start = hub.ring.head
        hub.add(self.sub, self.start)

    def _kick(self, code: int, reason: str) -> None:
        self.kicked = (code, reason)
        self.transport.closing = True

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.transport.received.splitlines()]


def make(policy: str, *, ring: int = 2_000, queue: int = 100) -> tuple[Hub, Stream]:
    r = Ring(ring)
    hub = Hub(r, policy=policy, queue_events=queue, queue_bytes=1 << 30, high_water=4096, low_water=1024)
    return hub, Stream(r, hub, "e1", coalesce_types=["task.progress"])


def emit(stream: Stream, n: int, *, entities: int = 4, producer: str = "p1", first_pseq: int = 1) -> None:
    """``n`` task.progress events over ``entities`` tasks, in batches of 50 (like ingest)."""
    msgs = [
        [
            ENCODER.encode(
                WireEvent(
                    "task.progress", "t", "core", Entity("task", f"t{i % entities}"), PAYLOAD, producer, first_pseq + i
                )
            )
        ]
        for i in range(n)
    ]
    for i in range(0, n, 50):
        stream.ingest(msgs[i : i + 50])


def catch_up(hub: Hub, client: Client) -> None:
    """The stalled client starts reading: drain and pump until it is at the head."""
    client.transport.reading = True
    for _ in range(10_000):
        client.transport.drain()
        if client.sub.closed or hub.cursor(client.sub) >= hub.ring.head:
            break
        hub.pump(client.sub)
    client.transport.drain()


def test_disconnect_closes_the_stalled_client_with_1013_and_spares_the_others() -> None:
    hub, stream = make("disconnect")
    fast, slow = Client(hub), Client(hub, reading=False)
    emit(stream, 1_000)
    assert fast.kicked is None and slow.kicked == (1013, "too slow to keep up")
    assert slow.sub not in hub.subscribers and hub.slow_disconnects == 1
    assert assert_covers(fast.messages(), 0, 1_000) == list(range(1, 1_001))
    slow.transport.drain()
    seqs = assert_covers(slow.messages(), 0, slow.sub.cursor)  # a prefix, no hole; it resumes from the ring
    assert seqs and seqs[-1] < 1_000


def test_drop_oldest_reports_the_skipped_range_as_slow_client_gaps() -> None:
    hub, stream = make("drop-oldest")
    fast, slow = Client(hub), Client(hub, reading=False)
    emit(stream, 1_000)
    assert slow.kicked is None and hub.drops["drop-oldest"] > 0
    assert slow.transport.get_write_buffer_size() < 4096 + 50 * 400, "the stalled buffer stays bounded"
    catch_up(hub, slow)
    assert assert_covers(fast.messages(), 0, 1_000) == list(range(1, 1_001))
    msgs = slow.messages()
    seqs = assert_covers(msgs, 0, 1_000)
    gaps = [m for m in msgs if m.get("reason") == "slow_client"]
    assert gaps and len(seqs) + sum(g["to"] - g["from"] + 1 for g in gaps) == 1_000
    assert slow.sub.dropped == hub.drops["drop-oldest"] == 1_000 - len(seqs)


def test_coalesce_keeps_the_newest_per_entity_and_reports_what_was_superseded() -> None:
    hub, stream = make("coalesce")
    fast, slow = Client(hub), Client(hub, reading=False)
    emit(stream, 180, entities=4)  # lag 180 > queue 100 but < 2 × queue: coalesce, no drop-oldest
    assert slow.sub.coalescing and hub.drops["drop-oldest"] == 0
    catch_up(hub, slow)
    msgs = slow.messages()
    seqs = assert_covers(msgs, 0, 180)
    assert hub.drops["coalesce"] > 0 and seqs[-4:] == [177, 178, 179, 180], "the newest per entity arrives"
    assert assert_covers(fast.messages(), 0, 180) == list(range(1, 181))


def test_coalesce_falls_back_to_drop_oldest_past_twice_the_bound() -> None:
    hub, stream = make("coalesce")
    slow = Client(hub, reading=False)
    emit(stream, 1_000)
    assert hub.drops["drop-oldest"] > 0
    catch_up(hub, slow)
    assert_covers(slow.messages(), 0, 1_000)


def test_upstream_gap_inside_a_skipped_range_is_still_reported() -> None:
    hub, stream = make("drop-oldest")
    slow = Client(hub, reading=False)
    emit(stream, 500, first_pseq=1)
    emit(stream, 500, first_pseq=510)  # the producer lost pseq 501..509 upstream, reported at seq 501
    catch_up(hub, slow)
    msgs = slow.messages()
    assert 501 not in assert_covers(msgs, 0, 1_000), "seq 501 was skipped"
    upstream = [m for m in msgs if m.get("reason") == "upstream"]
    assert upstream == [{"type": "gateway.gap", "reason": "upstream", "producer": "p1", "missed": 9, "seq": 501}]


def test_upstream_gaps_reach_a_client_evicted_while_replaying_once_each_in_place() -> None:
    hub, stream = make("drop-oldest", ring=100, queue=1_000)
    slow = Client(hub, reading=False)
    slow.sub.caught_up = False  # replaying: only the ring bounds it, so it falls out of the ring
    for k in range(30):  # every tenth event follows an upstream loss of one pseq
        emit(stream, 9, first_pseq=1 + 10 * k)
    catch_up(hub, slow)
    msgs = slow.messages()
    delivered = set(assert_covers(msgs, 0, 270))
    lossy = {9 * k + 1 for k in range(1, 30)}  # the seqs that follow an upstream loss
    upstream = [m["seq"] for m in msgs if m.get("reason") == "upstream"]
    assert upstream == sorted(set(upstream)), "each upstream gap at most once, in seq order"
    assert lossy & delivered <= set(upstream) <= lossy, "every delivered lossy seq had its gap, none invented"
    position = {m.get("seq"): i for i, m in enumerate(msgs) if "payload" in m}
    for i, m in enumerate(msgs):  # a gap right before its event, never ahead of the skipped range
        if m.get("reason") == "upstream" and m["seq"] in position:
            assert position[m["seq"]] == i + 1


@pytest.mark.parametrize("policy", ["disconnect", "drop-oldest", "coalesce"])
def test_a_client_evicted_from_the_ring_while_replaying_gets_the_policy(policy: str) -> None:
    hub, stream = make(policy, ring=300)
    slow = Client(hub, reading=False)
    slow.sub.caught_up = False  # as if it were replaying a resume: only the ring bounds it
    emit(stream, 1_000)
    if policy == "disconnect":
        assert slow.kicked is not None and slow.kicked[0] == 1013
    else:
        catch_up(hub, slow)
        assert_covers(slow.messages(), 0, 1_000)


def test_per_peer_counts_follow_membership() -> None:
    hub, _ = make("disconnect")
    a, b, c = Client(hub, peer="1.1.1.1"), Client(hub, peer="1.1.1.1"), Client(hub, peer="2.2.2.2")
    assert hub.per_peer == {"1.1.1.1": 2, "2.2.2.2": 1}
    hub.remove(a.sub)
    hub.remove(a.sub)  # idempotent
    hub.remove(c.sub)
    assert hub.per_peer == {"1.1.1.1": 1}
    hub.remove(b.sub)
    assert hub.per_peer == {} and not hub.subscribers


def test_a_batch_is_rendered_once_per_group_and_groups_follow_membership() -> None:
    hub, stream = make("disconnect")
    a, b = Client(hub), Client(hub)
    odd = LineSubscriber(FakeTransport(), Filter((), (("task", "t1"),)), "10.0.0.2", lambda code, reason: None)
    hub.add(odd, hub.ring.head)
    assert len(hub.groups) == 2 and a.sub.cache_key is b.sub.cache_key  # one key object per group
    emit(stream, 8)
    assert a.transport.writes[-1] is b.transport.writes[-1]  # one rendering, shared by the group
    assert [json.loads(line)["entity"]["id"] for line in odd.transport.received.splitlines()] == ["t1", "t1"]
    assert_covers(a.messages(), 0, 8)
    hub.remove(a.sub)
    hub.remove(odd)
    assert [(g.key, list(g.live)) for g in hub.groups.values()] == [(b.sub.cache_key, [b.sub])]
    hub.remove(b.sub)
    assert hub.groups == {}


def test_live_clients_positions_and_counts_stay_exact_through_lagging_and_closing() -> None:
    """A live client's cursor and count are kept by its group; they are exact again once it leaves it."""
    hub, stream = make("disconnect", queue=10_000)
    steady, stalled, closing = Client(hub), Client(hub, reading=False), Client(hub)
    emit(stream, 50)
    closing.transport.closing = True  # its peer went away; its handler has not removed it yet
    emit(stream, 50, first_pseq=51)  # FakeTransport.write fails on a write after close
    assert hub.cursor(closing.sub) == 50 and hub.cursor(steady.sub) == 100
    assert stalled.sub in hub.lagging and hub.cursor(stalled.sub) < 100
    catch_up(hub, stalled)
    assert hub.cursor(stalled.sub) == 100 and stalled.sub not in hub.lagging
    assert [list(g.live) for g in hub.groups.values()] == [[steady.sub, stalled.sub]]
    emit(stream, 50, first_pseq=101)
    for client in (steady, stalled, closing):
        hub.remove(client.sub)
        events = [m for m in client.messages() if m["type"] == "task.progress"]
        assert client.sub.delivered == len(events) and client.sub.cursor == events[-1]["seq"]
    assert [c.sub.delivered for c in (steady, stalled, closing)] == [150, 150, 50]
    assert hub.deliveries == 350 and hub.groups == {}
