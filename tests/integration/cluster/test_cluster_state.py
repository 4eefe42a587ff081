"""ClusterState against a real redis-server: two "nodes" in one process sharing one Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from redis.asyncio import Redis

from realcast.cluster import ClusterState, Kind, PresenceResult
from realcast.history import ChatHistory, ChatMessage
from realcast.live import StreamState, StreamStatus
from tests.services import RedisServer


class Node:
    def __init__(self, url: str, node_id: str, clock: list[float]) -> None:
        self.client = Redis.from_url(url)
        self.results: list[tuple[str, Kind, PresenceResult]] = []
        self.reaped: list[tuple[str, Kind, PresenceResult]] = []
        self.local: dict[tuple[str, Kind], dict[str, str]] = {}
        self.states: dict[str, StreamState] = {}
        self.clock = clock
        self.cluster = ClusterState(
            self.client,
            node_id,
            on_presence=lambda state, kind, result: self.results.append((state.stream_id, kind, result)),
            on_reap=lambda app, stream, kind, result: self.reaped.append((stream, kind, result)),
            local_presence=self._local,
            wall=lambda: clock[0],
        )

    async def _fake_server_ms(self) -> int:
        return int(self.clock[0] * 1000)

    def _local(self) -> Iterable[tuple[StreamState, Kind, dict[str, str]]]:
        for (stream, kind), users in self.local.items():
            yield self.state(stream), kind, users

    def state(self, stream: str) -> StreamState:
        if stream not in self.states:
            self.states[stream] = StreamState("app", stream, ChatHistory())
        return self.states[stream]

    def arrive(self, stream: str, user: str, kind: Kind = "v") -> None:
        self.local.setdefault((stream, kind), {})[user] = user.title()
        self.cluster.presence(self.state(stream), kind, user, user.title(), True)

    def depart(self, stream: str, user: str, kind: Kind = "v") -> None:
        self.local.get((stream, kind), {}).pop(user, None)
        self.cluster.presence(self.state(stream), kind, user, user.title(), False)

    async def flush(self) -> None:
        await self.cluster.viewers("app", "x")  # a round trip after everything queued before it

    async def settle(self) -> PresenceResult:
        await self.flush()
        return self.results[-1][2]


@pytest.fixture
async def nodes(fresh_redis_url: str) -> AsyncIterator[tuple[Node, Node, list[float]]]:
    clock = [1_000_000.0]
    a, b = Node(fresh_redis_url, "n1", clock), Node(fresh_redis_url, "n2", clock)
    for node in (a, b):  # heartbeats on the test's clock instead of Redis's, to jump in time
        node.cluster._server_ms = node._fake_server_ms  # type: ignore[method-assign]
    await a.cluster.start()
    await b.cluster.start()
    yield a, b, clock
    for node in (a, b):
        await node.cluster.close()
        await node.client.aclose()


async def test_a_user_on_two_nodes_is_one_viewer(nodes: tuple[Node, Node, list[float]]) -> None:
    a, b, _ = nodes
    a.arrive("s1", "alice")
    result = await a.settle()
    assert (result.count, [t.delta for t in result.transitions]) == (1, [1])
    b.arrive("s1", "alice")
    b.arrive("s1", "bob")
    await b.settle()
    assert [r.count for _, _, r in b.results] == [1, 2]
    assert b.results[0][2].transitions == ()  # alice was already watching on n1
    assert await a.cluster.viewers("app", "s1") == 2
    a.depart("s1", "alice")
    result = await a.settle()
    assert (result.count, result.transitions) == (2, ())  # still watching on n2
    b.depart("s1", "alice")
    result = await b.settle()
    assert result.count == 1 and [(t.user_id, t.username, t.delta) for t in result.transitions] == [
        ("alice", "Alice", -1)
    ]
    assert result.version > a.results[-1][2].version  # later changes carry later versions


async def test_analytics_over_the_cluster(nodes: tuple[Node, Node, list[float]]) -> None:
    a, b, clock = nodes
    a.arrive("s1", "alice")
    b.arrive("s1", "bob")
    for _ in range(3):
        a.cluster.count("app", "s1", "m")
    b.cluster.count("app", "s1", "m")
    b.cluster.count("app", "s1", "r")
    await a.settle()
    await b.settle()
    await a.flush()  # the expiry is queued once the first count of a second has come back
    assert 0 < await a.client.ttl("rc:{app|s1}:r") <= 120  # an idle stream's rate buckets go by themselves
    clock[0] += 10
    b.depart("s1", "bob")
    await b.settle()
    clock[0] += 10
    snap = await a.cluster.snapshot("app", "s1")
    assert (snap.viewers, snap.peak_viewers, snap.messages_per_minute, snap.reactions_per_minute) == (1, 2, 4, 1)
    assert snap.average_watch_time == 15.0  # alice 20 s ongoing, bob 10 s ended
    clock[0] += 61
    later = await b.cluster.snapshot("app", "s1")
    assert (later.messages_per_minute, later.reactions_per_minute) == (0, 0)


async def test_a_dead_node_is_reaped_and_a_resync_heals(nodes: tuple[Node, Node, list[float]]) -> None:
    a, b, clock = nodes
    a.arrive("s1", "alice")
    a.arrive("s1", "carol", kind="c")
    b.arrive("s1", "bob")
    await a.settle()
    await b.settle()
    # n2 stops beating; n1's heartbeat, later than NODE_DEAD_AFTER, reaps it.
    for task in b.cluster._tasks:
        task.cancel()
    clock[0] += 6
    await a.cluster._beat()
    assert await a.cluster.viewers("app", "s1") == 1
    viewers = [result for stream, kind, result in a.reaped if (stream, kind) == ("s1", "v")]
    assert [(r.count, [t.user_id for t in r.transitions]) for r in viewers] == [(1, ["bob"])]
    # Redis loses everything (a restart): n1 re-asserts what its clients are doing.
    await a.client.flushall()
    await a.cluster.resync()
    await a.settle()
    assert await a.cluster.viewers("app", "s1") == 1
    assert await a.cluster.chat_members("app", "s1") == 1


async def test_history_delete_slow_mode_and_status(nodes: tuple[Node, Node, list[float]]) -> None:
    a, b, _ = nodes
    a.cluster._retain = b.cluster._retain = 3
    for i in range(5):
        node = a if i % 2 else b
        node.cluster.remember("app", "s1", ChatMessage(f"m{i}", "s1", "u", "U", f"hello {i}", "t"))
        await node.flush()
    assert [m["message_id"] for m in await a.cluster.recent("app", "s1", 50)] == ["m2", "m3", "m4"]
    assert [m["message"] for m in await b.cluster.recent("app", "s1", 2)] == ["hello 3", "hello 4"]
    message: dict[str, Any] | None = await b.cluster.message("app", "s1", "m3")
    assert message is not None and message["user_id"] == "u"
    assert await b.cluster.forget_message("app", "s1", "m3") is True
    assert await a.cluster.forget_message("app", "s1", "m3") is False
    assert [m["message_id"] for m in await a.cluster.recent("app", "s1", 50)] == ["m2", "m4"]

    assert await a.cluster.slow_mode_wait("app", "s1", "u", 5) == 0.0
    wait = await b.cluster.slow_mode_wait("app", "s1", "u", 5)
    assert 4.0 < wait <= 5.0
    assert await b.cluster.slow_mode_wait("app", "s1", "other", 5) == 0.0

    state = a.state("s1")
    state.go_live("Title", 1234.5)
    await a.cluster.save_status(state)
    other = b.state("s1")
    await b.cluster.load_status(other)
    assert (other.status, other.title, other.started_at) == (StreamStatus.LIVE, "Title", 1234.5)


async def test_a_redis_restart_loses_changes_then_the_node_resyncs(
    nodes: tuple[Node, Node, list[float]], redis_server: RedisServer
) -> None:
    a, _, _ = nodes
    a.arrive("s1", "alice")
    await a.settle()
    redis_server.stop()
    a.arrive("s1", "bob")
    with pytest.raises(ConnectionError):
        await a.cluster.viewers("app", "s1")
    assert a.cluster.out_of_sync and not a.cluster.redis_ok
    redis_server.start()  # empty: no persistence
    await a.cluster._beat()
    assert not a.cluster.out_of_sync and a.cluster.redis_ok
    assert await a.cluster.viewers("app", "s1") == 2


async def test_a_node_that_was_reaped_while_alive_re_asserts_its_presence(
    nodes: tuple[Node, Node, list[float]],
) -> None:
    a, b, clock = nodes
    b.arrive("s1", "bob")
    await b.settle()
    b.cluster._tasks[1].cancel()  # its heartbeat stops; its pipeline worker goes on
    clock[0] += 6
    await a.cluster._beat()  # n2 looks dead: reaped
    assert await a.cluster.viewers("app", "s1") == 0
    await b.cluster._beat()  # n2 was only paused: it finds itself missing and resyncs
    await b.flush()
    assert await a.cluster.viewers("app", "s1") == 1
