"""RedisAdapter: several engineio_min servers act as one, over a real redis-server.

Each "node" is a Server with its own port and RedisAdapter in this process; clients are the
stock python-socketio AsyncClient over WebSocket; Redis is the session's private
redis-server (tests/services.py). One test runs a node in a separate process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis.asyncio
import socketio

from engineio_min import Server, Socket
from engineio_min.redis_adapter import Broadcast, Envelope, RedisAdapter
from tests.services import RedisServer

ROOT = Path(__file__).resolve().parents[3]


class Node:
    """One server of the cluster, its adapter, and what its hooks saw."""

    def __init__(self, node_id: str, url: str) -> None:
        self.node_id = node_id
        self.redis = redis.asyncio.Redis.from_url(url)
        self.server = Server(
            allowed_origins="*", node_id=node_id,
            adapter_factory=lambda nsp: RedisAdapter(nsp, self.redis, node_id, unsubscribe_delay=0.05,
                                                     backoff_base=0.02, backoff_cap=0.2),
        )  # fmt: skip
        self.nsp = self.server.of("/")
        self.adapter = self.nsp.adapter
        assert isinstance(self.adapter, RedisAdapter)
        self.server_messages: list[object] = []
        self.resyncs = 0
        self.adapter.on_server_message = self.server_messages.append
        self.adapter.on_request = lambda message: {"node": node_id, "echo": message}

        def resynced() -> None:
            self.resyncs += 1

        self.adapter.on_resync = resynced
        nsp = self.nsp

        @nsp.on("join")
        def join(sock: Socket, room: str) -> str:
            sock.join(room)
            return sock.sid

        @nsp.on("leave")
        def leave(sock: Socket, room: str) -> None:
            sock.leave(room)

        @nsp.on("say")
        def say(sock: Socket, to: Any, text: str, skip_me: bool = False) -> int:
            rooms = to if to is None or isinstance(to, str) else list(to)
            return nsp.emit("said", text, to=rooms, exclude=sock if skip_me else None)

    async def start(self) -> None:
        await self.server.start("127.0.0.1", 0)

    async def stop(self) -> None:
        await self.server.shutdown()
        await self.redis.aclose()


class Client:
    """A stock python-socketio client that records every ``said`` it gets."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.said: list[Any] = []
        self.sid = ""
        self.sio.on("said", self.said.append)

    async def connect(self, node: Node) -> Client:
        await self.sio.connect(f"http://127.0.0.1:{node.server.port}", transports=["websocket"])
        return self

    async def join(self, room: str) -> None:
        self.sid = await self.sio.call("join", room)

    async def close(self) -> None:
        await self.sio.disconnect()


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def settle(*nodes: Node) -> None:
    """Every subscription change made so far is in effect in Redis."""
    await asyncio.gather(*(n.adapter.sync() for n in nodes))


@pytest.fixture
async def cluster(fresh_redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    nodes: list[Node] = []
    clients: list[Client] = []

    async def make(count: int) -> list[Node]:
        for _ in range(count):
            node = Node(f"n{len(nodes) + 1}", fresh_redis_url)
            await node.start()
            nodes.append(node)
        return nodes[-count:]

    async def client(node: Node, *rooms: str) -> Client:
        c = await Client().connect(node)
        clients.append(c)
        for room in rooms:
            await c.join(room)
        return c

    make.client = client  # type: ignore[attr-defined]
    yield make
    for c in clients:
        with contextlib.suppress(Exception):
            await c.close()
    for node in nodes:
        await node.stop()


async def quiet() -> None:
    """Long enough for a stray (wrong) delivery to show up."""
    await asyncio.sleep(0.15)


async def test_room_broadcast_reaches_members_on_every_node_once(cluster: Any) -> None:
    n1, n2, n3 = await cluster(3)
    a = await cluster.client(n1, "room")
    b = await cluster.client(n2, "room")
    outsider = await cluster.client(n2, "elsewhere")
    c = await cluster.client(n3)
    await settle(n1, n2, n3)
    encoded_on_n2 = n2.server.encode_count
    assert await a.sio.call("say", ("room", "hello")) == 1  # the origin counts its own sockets
    await until(lambda: b.said == ["hello"] and a.said == ["hello"])
    await quiet()
    assert (a.said, b.said, outsider.said, c.said) == (["hello"], ["hello"], [], [])
    assert n2.server.encode_count == encoded_on_n2, "a receiving node frames, never re-encodes"
    assert n1.adapter.stats["received"] == 0, "a node ignores its own publications"


async def test_order_is_kept_across_nodes(cluster: Any) -> None:
    n1, n2 = await cluster(2)
    await cluster.client(n1, "room")
    b = await cluster.client(n2, "room")
    await settle(n1, n2)
    for i in range(300):  # in one loop turn: one pipeline on n1, coalesced writes on n2
        n1.nsp.emit("said", i, to="room")
    await until(lambda: len(b.said) == 300)
    assert b.said == list(range(300))


class RedisWatcher:
    """Stands in the Flusher's list like a member's session, marked dirty before the broadcast: when
    its turn to be written comes, it reads (blocking: Redis is another process) what a plain Redis
    subscriber has received so far."""

    def __init__(self, raw: socket.socket) -> None:
        self.raw = raw
        self.seen = b""

    def flush_pending(self) -> None:
        self.raw.settimeout(2.0)
        with contextlib.suppress(TimeoutError):
            while b"second" not in self.seen:
                self.seen += self.raw.recv(4096)


async def test_a_turns_broadcasts_are_in_redis_before_the_local_fan_out_is_written(
    cluster: Any, fresh_redis_url: str
) -> None:
    """The other nodes' clients must not wait for this node's own fan-out: the turn's publications
    are written (together) before any session of this node, even one marked dirty before them."""
    (n1,) = await cluster(1)
    a = await cluster.client(n1, "room")
    url = urllib.parse.urlsplit(fresh_redis_url)
    raw = socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=5.0)
    try:
        raw.sendall(b"*2\r\n$10\r\nSSUBSCRIBE\r\n$9\r\nrc#/#room\r\n")
        assert b"ssubscribe" in raw.recv(4096)
        watcher = RedisWatcher(raw)
        n1.server.flusher.mark_dirty(watcher)  # first in the turn's list of sessions
        n1.nsp.emit("said", "first", to="room")
        n1.nsp.emit("said", "second", to="room")
        assert a.said == [] and watcher.seen == b""
        await until(lambda: a.said == ["first", "second"])
        assert b"first" in watcher.seen and b"second" in watcher.seen, watcher.seen
        await until(lambda: n1.adapter.stats["published"] == 2)
    finally:
        raw.close()


async def test_multi_room_broadcast_reaches_each_socket_exactly_once(cluster: Any) -> None:
    n1, n2 = await cluster(2)
    both = await cluster.client(n2, "red", "blue")
    red = await cluster.client(n2, "red")
    blue = await cluster.client(n2, "blue")
    green = await cluster.client(n2, "green")
    local = await cluster.client(n1, "blue", "red")
    await settle(n1, n2)
    n1.nsp.emit("said", "rb", to=["red", "blue"])
    n1.nsp.emit("said", "br", to=("blue", "red", "blue"))
    await until(lambda: len(both.said) == 2 and len(red.said) == 2 and len(blue.said) == 2)
    await quiet()
    assert both.said == red.said == blue.said == local.said == ["rb", "br"]
    assert green.said == []


async def test_exclusion_and_sid_rooms_cross_nodes(cluster: Any) -> None:
    n1, n2 = await cluster(2)
    sender = await cluster.client(n1, "room")
    other_local = await cluster.client(n1, "room")
    remote = await cluster.client(n2, "room")
    await settle(n1, n2)
    await sender.sio.call("say", ("room", "not to me", True))
    await until(lambda: remote.said == ["not to me"] and other_local.said == ["not to me"])
    # A socket's sid names a room of its own, on whichever node holds it.
    assert remote.sid.startswith("n2.") and sender.sid.startswith("n1.")
    await sender.sio.call("say", (remote.sid, "just you"))
    # Several rooms, one of them a sid of another node that is also in the other room.
    await sender.sio.call("say", ([remote.sid, "room"], "once"))
    await until(lambda: remote.said == ["not to me", "just you", "once"])
    await quiet()
    assert sender.said == ["once"] and other_local.said == ["not to me", "once"]
    assert remote.said == ["not to me", "just you", "once"]

    # Exclusions travel as sids: an excluded socket of the receiving node is skipped there.
    excluded = n2.nsp.sockets[remote.sid]
    n2.adapter._deliver(Broadcast(["room"], 0, [excluded.sid], False, '42["said","skipped"]', None))
    await quiet()
    assert remote.said[-1] == "once"


async def test_namespace_wide_broadcast_and_local_only(cluster: Any) -> None:
    n1, n2, n3 = await cluster(3)
    clients = [await cluster.client(n) for n in (n1, n2, n2, n3)]
    await settle(n1, n2, n3)
    assert n1.nsp.emit("said", "everyone") == 1
    assert n1.nsp.emit("said", "just n1", local=True) == 1
    await until(lambda: all(c.said for c in clients))
    await quiet()
    assert clients[0].said == ["everyone", "just n1"]
    assert [c.said for c in clients[1:]] == [["everyone"]] * 3


async def test_binary_packets_cross_nodes(cluster: Any) -> None:
    n1, n2 = await cluster(2)
    b = await cluster.client(n2, "room")
    await settle(n1, n2)
    payload = bytes(range(256)) * 4
    n1.nsp.emit("said", {"blob": payload, "n": 1}, to="room")
    await until(lambda: len(b.said) == 1)
    assert b.said == [{"blob": payload, "n": 1}]


async def test_server_publish_goes_to_nodes_with_members(cluster: Any) -> None:
    n1, n2, n3 = await cluster(3)
    await cluster.client(n2, "room")
    await cluster.client(n3, "other")
    await settle(n1, n2, n3)
    n1.adapter.server_publish("room", {"ban": "u1"})
    n1.adapter.server_publish(None, ["all", 2])
    await until(lambda: len(n2.server_messages) == 2 and len(n3.server_messages) == 1)
    await quiet()
    assert n2.server_messages == [{"ban": "u1"}, ["all", 2]]
    assert n3.server_messages == [["all", 2]]
    assert n1.server_messages == []
    with pytest.raises(TypeError, match="cannot send"):
        n1.adapter.server_publish(None, object())


async def test_request_collects_replies_and_returns_early(cluster: Any) -> None:
    n1, n2, n3 = await cluster(3)
    await cluster.client(n2, "room")
    await settle(n1, n2, n3)
    started = time.monotonic()
    replies = await n1.adapter.request(None, "q", timeout=5.0)
    assert time.monotonic() - started < 2.0, "every node answered: no waiting for the timeout"
    assert sorted(r["node"] for r in replies) == ["n2", "n3"]
    assert all(r["echo"] == "q" for r in replies)
    assert [r["node"] for r in await n1.adapter.request("room", 1, timeout=5.0)] == ["n2"]
    assert await n1.adapter.request("nobody-here", 1, timeout=5.0) == []


async def test_request_timeout_keeps_the_replies_that_came(cluster: Any) -> None:
    n1, n2, n3 = await cluster(3)

    async def slow(message: object) -> object:
        await asyncio.sleep(1.0)
        return "late"

    n3.adapter.on_request = slow
    n2.adapter.on_request = None  # a node without a handler answers "nothing" at once
    await settle(n1, n2, n3)
    n1.adapter.on_request = lambda m: "never asked"  # a node does not ask itself
    started = time.monotonic()
    replies = await n1.adapter.request(None, "q", timeout=0.3)
    elapsed = time.monotonic() - started
    assert replies == [] and 0.3 <= elapsed < 0.9
    n2.adapter.on_request = lambda m: "fast"
    assert await n1.adapter.request(None, "q", timeout=0.3) == ["fast"]


async def test_no_firehose_a_node_subscribes_only_to_rooms_it_has(cluster: Any, fresh_redis_url: str) -> None:
    n1, n2 = await cluster(2)
    probe = redis.asyncio.Redis.from_url(fresh_redis_url)
    channel = n1.adapter.room_channel("room")

    async def subscribers() -> int:
        counts = await probe.execute_command("PUBSUB", "SHARDNUMSUB", channel)
        return int(counts[1])

    try:
        a = await cluster.client(n1, "room")
        await settle(n1, n2)
        assert await subscribers() == 1
        shard_channels = {c.decode() for c in await probe.execute_command("PUBSUB", "SHARDCHANNELS")}
        assert shard_channels == {"rc#/", "rc#/#room", "rc#node#n1", "rc#node#n2"}
        b = await cluster.client(n2, "room")
        await settle(n1, n2)
        assert await subscribers() == 2
        await b.sio.emit("leave", "room")
        await asyncio.sleep(0.2)  # the unsubscribe delay (0.05 s here)
        await settle(n1, n2)
        assert await subscribers() == 1
        n1.nsp.emit("said", "after leave", to="room")
        await until(lambda: a.said == ["after leave"])
        await quiet()
        assert b.said == [] and n2.adapter.stats["received"] == 0
    finally:
        await probe.aclose()


async def test_a_quick_rejoin_keeps_the_subscription(cluster: Any, fresh_redis_url: str) -> None:
    (n1,) = await cluster(1)
    n1.adapter.unsubscribe_delay = 5.0
    a = await cluster.client(n1, "room")
    await a.sio.emit("leave", "room")
    await a.join("room")
    await settle(n1)
    probe = redis.asyncio.Redis.from_url(fresh_redis_url)
    try:
        counts = await probe.execute_command("PUBSUB", "SHARDNUMSUB", n1.adapter.room_channel("room"))
        assert int(counts[1]) == 1 and not n1.adapter._unsubscribe_timers
    finally:
        await probe.aclose()


async def test_message_format_is_a_versioned_msgpack_envelope(cluster: Any, fresh_redis_url: str) -> None:
    (n1,) = await cluster(1)
    sender = await cluster.client(n1, "room")
    probe = redis.asyncio.Redis.from_url(fresh_redis_url)
    pubsub = probe.pubsub()
    try:
        await pubsub.ssubscribe("rc#/#room")
        confirmed = await pubsub.get_message(timeout=5.0)
        assert confirmed is not None and confirmed["type"] == "ssubscribe"
        await sender.sio.call("say", ("room", "hi", True))
        message = None
        for _ in range(100):
            message = await pubsub.get_message(timeout=0.05)
            if message is not None and message["type"] == "smessage":
                break
        assert message is not None and message["type"] == "smessage"
        raw = msgspec.msgpack.decode(message["data"])
        assert raw == [1, "n1", "/", [1, ["room"], 0, [sender.sid], False, '42["said","hi"]', None]]
        assert msgspec.msgpack.decode(message["data"], type=Envelope).body == Broadcast(
            ["room"], 0, [sender.sid], False, '42["said","hi"]', None
        )
    finally:
        await pubsub.aclose()
        await probe.aclose()


async def test_malformed_messages_are_counted_and_ignored(cluster: Any, fresh_redis_url: str) -> None:
    n1, n2 = await cluster(2)
    b = await cluster.client(n2, "room")
    await settle(n1, n2)
    probe = redis.asyncio.Redis.from_url(fresh_redis_url)
    try:
        await probe.execute_command("SPUBLISH", "rc#/#room", b"\xc1 not msgpack")
        future = msgspec.msgpack.encode([99, "n9", "/", [1, ["room"], 0, [], False, '42["said","v99"]', None]])
        await probe.execute_command("SPUBLISH", "rc#/#room", future)
        bad_index = msgspec.msgpack.encode([1, "n9", "/", [1, ["room"], 5, [], False, '42["said","x"]', None]])
        await probe.execute_command("SPUBLISH", "rc#/#room", bad_index)
        await until(lambda: n2.adapter.stats["malformed"] == 3)
        n1.nsp.emit("said", "still fine", to="room")
        await until(lambda: b.said == ["still fine"])
    finally:
        await probe.aclose()


async def test_subscriber_killed_reconnects_resubscribes_and_resyncs(cluster: Any, fresh_redis_url: str) -> None:
    n1, n2 = await cluster(2)
    a = await cluster.client(n1, "room")
    b = await cluster.client(n2, "room")
    await settle(n1, n2)
    probe = redis.asyncio.Redis.from_url(fresh_redis_url)
    try:
        killed = await probe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        assert int(killed) == 2
        await until(lambda: not n2.adapter.healthy or n2.adapter.stats["reconnects"] > 0, 2.0)
        # Local clients are served meanwhile.
        await a.sio.call("say", ("room", "local during outage"))
        await until(lambda: "local during outage" in a.said)
        await until(lambda: n1.adapter.healthy and n2.adapter.healthy and n2.resyncs == 1 and n1.resyncs == 1)
        counts = await probe.execute_command("PUBSUB", "SHARDNUMSUB", "rc#/#room")
        assert int(counts[1]) == 2, "every room is subscribed again"
        await a.sio.call("say", ("room", "after"))
        await until(lambda: b.said[-1:] == ["after"])
    finally:
        await probe.aclose()


async def test_redis_restart_drops_messages_meanwhile_then_delivery_resumes(
    cluster: Any, redis_server: RedisServer
) -> None:
    n1, n2 = await cluster(2)
    a = await cluster.client(n1, "room")
    b = await cluster.client(n2, "room")
    await settle(n1, n2)
    redis_server.stop()
    try:
        await until(lambda: not n1.adapter.healthy and not n2.adapter.healthy)
        await a.sio.call("say", ("room", "lost"))
        await until(lambda: n1.adapter.stats["dropped"] >= 1)
        assert a.said == ["lost"], "local clients are still served"
        assert (await n1.adapter.request(None, "q", timeout=1.0)) == [], "no answers while cut off"
    finally:
        redis_server.start()
    await until(lambda: n1.adapter.healthy and n2.adapter.healthy, 10.0)
    assert n1.resyncs == 1 and n2.resyncs == 1
    await a.sio.call("say", ("room", "back"))
    await until(lambda: b.said == ["back"])


async def test_start_fails_clearly_without_redis() -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    server = Server(node_id="n1", adapter_factory=lambda nsp: RedisAdapter(nsp, client, "n1"))
    server.of("/").adapter.start = _with_timeout(server.of("/").adapter, 0.5)  # type: ignore[method-assign]
    with pytest.raises(ConnectionError, match="did not accept the subscriptions"):
        await server.start("127.0.0.1", 0)
    await server.shutdown()
    await client.aclose()


def _with_timeout(adapter: Any, timeout: float) -> Any:
    original = adapter.start

    async def start() -> None:
        await original(timeout=timeout)

    return start


def test_bad_node_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="node_id"):
        Server(node_id="a.b")
    client = redis.asyncio.Redis()
    with pytest.raises(ValueError, match="differs"):
        Server(node_id="n1", adapter_factory=lambda nsp: RedisAdapter(nsp, client, "n2")).of("/")


NODE_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    import redis.asyncio
    from engineio_min import Server
    from engineio_min.redis_adapter import RedisAdapter

    async def main() -> None:
        client = redis.asyncio.Redis.from_url(sys.argv[1])
        server = Server(allowed_origins="*", node_id="p2",
                        adapter_factory=lambda nsp: RedisAdapter(nsp, client, "p2"))
        nsp = server.of("/")
        nsp.on("join")(lambda sock, room: sock.join(room))
        nsp.adapter.on_request = lambda message: ["p2", message]
        port = await server.start("127.0.0.1", 0)
        print(port, flush=True)
        await server.serve_forever()

    asyncio.run(main())
    """
)


async def test_a_node_in_another_process(cluster: Any, fresh_redis_url: str) -> None:
    (n1,) = await cluster(1)
    proc = subprocess.Popen(
        [sys.executable, "-c", NODE_PROCESS, fresh_redis_url], stdout=subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        remote = Client()
        await remote.sio.connect(f"http://127.0.0.1:{int(line)}", transports=["websocket"])
        await remote.sio.call("join", "room")
        replies: list[Any] = []
        for _ in range(100):  # the other process's subscription is in place once it answers
            replies = await n1.adapter.request("room", "ping", timeout=0.5)
            if replies:
                break
        assert replies == [["p2", "ping"]]
        n1.nsp.emit("said", "to the other process", to="room")
        await until(lambda: remote.said == ["to the other process"])
        await remote.sio.disconnect()
    finally:
        proc.terminate()
        proc.wait(10)
