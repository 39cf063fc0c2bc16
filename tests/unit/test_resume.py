"""Resume arithmetic (``gateway.resume``) and replay through the real ``Stream``/``Hub``, without sockets.

The property tests drive the data path (``Stream.ingest`` → ring → ``Hub``) and
``subscription.start_subscription`` with the in-memory transport of ``tests.support`` (it records
bytes and reports a buffer size we choose), then check every client's account:
delivered seqs and gap ranges cover its span contiguously with no duplicate.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from emitter_sdk.wire import ENCODER, Entity, WireEvent
from gateway.core.filters import Filter
from gateway.core.protocol import hello
from gateway.core.resume import plan_resume
from gateway.core.ring import Ring
from gateway.engine.fanout import Hub
from gateway.engine.source import LocalSequencer
from gateway.engine.stream import Stream
from gateway.engine.subscriber import Subscriber
from gateway.http.subscription import start_subscription
from tests.support import FakeTransport, RecordingSubscriber, ws_messages

EPOCH = "e1"


def plan(oldest: int | None, head: int, since: int | None, client_epoch: str | None = None) -> Any:
    return plan_resume(oldest=oldest, head=head, epoch=EPOCH, since=since, client_epoch=client_epoch)


def test_no_since_starts_live() -> None:
    assert plan(10, 20, None) == (20, None)


def test_since_inside_the_ring_replays_from_the_next_seq() -> None:
    assert plan(10, 20, 15) == (15, None)
    assert plan(10, 20, 9) == (9, None)  # since + 1 == oldest: nothing missed


def test_since_older_than_the_ring_is_an_evicted_gap() -> None:
    start, gap = plan(201, 300, 5)
    assert start == 200
    assert gap == {"type": "gateway.gap", "reason": "evicted", "from": 6, "to": 200}


def test_since_beyond_head_is_clamped() -> None:
    assert plan(1, 20, 99) == (20, None)
    assert plan(None, 0, 3) == (0, None)


def test_foreign_epoch_is_an_epoch_gap_then_the_whole_ring() -> None:
    assert plan(201, 300, 250, "other") == (
        200,
        {"type": "gateway.gap", "reason": "epoch", "from": 1, "to": 200},
    )
    # The ring still holds seq 1: nothing of ours was missed, to < from says so.
    assert plan(1, 5, 3, "other") == (0, {"type": "gateway.gap", "reason": "epoch", "from": 1, "to": 0})
    assert plan(None, 0, 3, "other")[0] == 0


def test_hello_shape() -> None:
    assert hello(EPOCH, 7, 3) == {"type": "gateway.hello", "epoch": EPOCH, "seq": 7, "oldest": 3}


@given(
    oldest=st.integers(1, 50),
    fill=st.integers(0, 50),
    since=st.none() | st.integers(0, 120),
    foreign=st.booleans(),
)
def test_plan_accounts_for_every_seq_once(oldest: int, fill: int, since: int | None, foreign: bool) -> None:
    """Seqs the client had (≤ since), the gap range and the replay (start, head] partition 1..head."""
    head = oldest + fill - 1
    held_oldest = oldest if fill else None
    start, gap = plan(held_oldest, head, since, "other" if foreign else None)
    first_held = held_oldest if held_oldest is not None else head + 1
    assert first_held - 1 <= start <= head  # replay only what the ring holds
    if foreign:
        assert gap is not None and gap["reason"] == "epoch" and (gap["from"], gap["to"]) == (1, first_held - 1)
        return
    if since is None:
        assert (start, gap) == (head, None)
        return
    covered = min(since, head)
    if gap is not None:
        assert gap["reason"] == "evicted" and gap["from"] == since + 1 and gap["to"] == start
        covered = gap["to"]
    assert covered == start  # no hole and no duplicate between what the client had and the replay


# -- the real data path with an in-memory transport ------------------------------------------------


def wire(producer: str, pseq: int, kind: str = "task", eid: str = "a") -> list[bytes]:
    return [ENCODER.encode(WireEvent("task.progress", "t", "core", Entity(kind, eid), {}, producer, pseq))]


class Client:
    def __init__(self, state: Any, flt: Filter, since: int | None, epoch: str | None) -> None:
        self.transport = FakeTransport()
        self.hub = state.stream.hub
        self.sub = RecordingSubscriber(self.transport, flt)
        self.since = since
        start_subscription(state.stream, self.sub, since, epoch)

    def check_account(self, head: int) -> list[dict[str, Any]]:
        """Hello first; then every seq after the start is delivered or inside exactly one gap, in order."""
        msgs = ws_messages(self.transport.data)
        assert msgs[0]["type"] == "gateway.hello"
        cursor = msgs[0]["seq"] if self.since is None else min(self.since, msgs[0]["seq"])
        for m in msgs[1:]:
            if m["type"] == "gateway.gap" and m["reason"] in ("evicted", "slow_client"):
                assert m["from"] == cursor + 1, (m, cursor)
                cursor = m["to"]
            elif m["type"] == "gateway.gap" and m["reason"] == "epoch":
                cursor = m["to"]
            elif m["type"] == "task.progress":
                assert m["seq"] > cursor, (m, cursor)  # in order, never twice
                if self.sub.filter.matches_all:
                    assert m["seq"] == cursor + 1, (m, cursor)  # and no hole
                cursor = m["seq"]
        if self.sub.kicked is None:
            assert self.hub.cursor(self.sub) == head
            assert cursor == head or not self.sub.filter.matches_all
        return msgs


actions = st.lists(
    st.one_of(
        st.tuples(st.just("emit"), st.integers(1, 40)),
        st.tuples(st.just("connect"), st.none() | st.integers(0, 200), st.booleans()),
        st.tuples(st.just("stall"), st.integers(0, 7)),
        st.tuples(st.just("drain"), st.integers(0, 7)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(actions=actions, capacity=st.integers(5, 60), policy=st.sampled_from(["disconnect", "drop-oldest"]))
def test_any_interleaving_of_appends_and_resumes_is_contiguous_and_duplicate_free(
    actions: list[Any], capacity: int, policy: str
) -> None:
    ring = Ring(capacity)
    hub = Hub(ring, policy=policy, queue_events=8, queue_bytes=1 << 20, high_water=100, low_water=10)
    stream = Stream(ring, hub, EPOCH)
    state = SimpleNamespace(stream=stream, hub=hub, cluster=None)
    clients: list[Client] = []
    pseq = 0
    for action in actions:
        if action[0] == "emit":
            batch = []
            for _ in range(action[1]):
                pseq += 1
                batch.append(wire("p", pseq))
            stream.ingest(batch)
        elif action[0] == "connect":
            clients.append(Client(state, Filter(), action[1], "old" if action[2] else None))
        elif clients:
            client = clients[action[1] % len(clients)]
            client.transport.backlog = 10_000 if action[0] == "stall" else 0
            hub.pump(client.sub)
    for client in clients:
        client.transport.backlog = 0
        hub.pump(client.sub)
        client.check_account(ring.head)


@settings(max_examples=60, deadline=None)
@given(
    plan_=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 3)), min_size=1, max_size=60),
    since=st.integers(0, 30),
    join_at=st.integers(0, 60),
)
def test_filters_apply_to_replay_and_live_alike_and_upstream_gaps_reach_everyone(
    plan_: list[tuple[str, int]], since: int, join_at: int
) -> None:
    """Events before the client joins are replayed, later ones live; pseq jumps are upstream gaps for all."""
    ring = Ring(1000)
    hub = Hub(ring)
    stream = Stream(ring, hub, EPOCH)
    state = SimpleNamespace(stream=stream, hub=hub, cluster=None)
    pseq = 0
    expected: list[tuple[int, str, int]] = []  # (seq, entity id, events missed before it)
    client, start = None, 0
    for i, (eid, step) in enumerate(plan_):
        if i == join_at:
            client, start = Client(state, Filter(entities=(("task", "a"),)), since, None), min(since, ring.head)
        pseq += step
        stream.ingest([wire("p", pseq, eid=eid)])
        expected.append((i + 1, eid, step - 1 if i else 0))  # the first event sets the baseline
    if client is None:
        client, start = Client(state, Filter(entities=(("task", "a"),)), since, None), min(since, ring.head)
    msgs = client.check_account(ring.head)
    assert [m["seq"] for m in msgs if m["type"] == "task.progress"] == [
        seq for seq, eid, _ in expected if seq > start and eid == "a"
    ]
    upstream = [(m["seq"], m["missed"]) for m in msgs if m.get("reason") == "upstream"]
    assert upstream == [(seq, missed) for seq, _, missed in expected if seq > start and missed]


class HistorySource(LocalSequencer):
    """A source that keeps history back to seq 1 (as a cluster's stream does) and records where clients start."""

    def __init__(self, stream: Stream) -> None:
        super().__init__(stream)
        self.joined: list[int] = []

    def oldest_held(self, ring_oldest: int | None) -> int | None:
        return 1

    def join(self, sub: Subscriber, start: int) -> None:
        self.joined.append(start)


def test_the_source_of_sequenced_events_decides_how_far_back_a_resume_reaches() -> None:
    ring = Ring(10)
    stream = Stream(ring, Hub(ring), EPOCH)
    stream.ingest([wire("p", pseq) for pseq in range(1, 31)])  # the ring holds 21..30
    local = Client(SimpleNamespace(stream=stream), Filter(), 5, None)
    sent = ws_messages(local.transport.data)  # the local sequencer's history is the ring
    assert sent[:2] == [hello(EPOCH, 30, 21), {"type": "gateway.gap", "reason": "evicted", "from": 6, "to": 20}]
    assert [m["seq"] for m in sent[2:]] == list(range(21, 31))
    stream.source = history = HistorySource(stream)
    resumed = Client(SimpleNamespace(stream=stream), Filter(), 5, None)
    assert ws_messages(resumed.transport.data) == [hello(EPOCH, 30, 1)]  # no gap: the source has 6..20
    assert history.joined == [5]
