"""Rooms and broadcast across processes ("nodes") over Redis 7 sharded pub/sub.

Layer: socketio (a ``LocalAdapter`` subclass, see adapter.py); talks to Redis with redis-py's
asyncio client.

Channels (``{p}`` is the prefix, ``rc`` by default):
- ``{p}#{nsp}#{room}``: a room. A node subscribes (``SSUBSCRIBE``) only while it has local
  members in the room, and a short while after the last one left (``unsubscribe_delay``,
  against join/leave churn): no node receives traffic that none of its clients needs.
- ``{p}#{nsp}``: the namespace; every node subscribes. Namespace-wide broadcasts, and
  ``server_publish(None, ...)`` / ``request(None, ...)``.
- ``{p}#node#{node_id}``: one node; replies to requests, and emits to a socket sid of that
  node (sids start with ``"{node_id}."``, so any node can tell whose socket it is).
Sharded channels hash to slots like keys, so on a Redis Cluster the rooms spread over the
shards (this client speaks to one Redis; every command names a single channel).

A broadcast is encoded once on the node that makes it, then published once per target
channel (one for a room, one per room for several rooms) as one msgpack ``Envelope``
(format in docs/design/server-api.md). Each receiving node frames it once and delivers it
to its local members through ``LocalAdapter.broadcast_text`` (the same coalesced write
path as a local broadcast). Several rooms reach each socket once: the message on the
channel of ``rooms[i]`` goes to members of ``rooms[i]`` that are in none of
``rooms[0:i]``. A node ignores its own publications.

Publishing never waits on the caller's path, and goes out before the local fan-out: the
``SPUBLISH`` commands of a loop turn are written to a dedicated publishing connection in one
write at the end of the turn, by the Flusher, before it writes to any local member
(``Flusher.flush_first``), so the other nodes start their own fan-out while this node still
writes to its members, and a receiving node gets the turn's broadcasts together (one write per
member). Commands are pipelined without waiting for earlier replies; a task reads the replies
(receiver counts) in order.

Delivery across nodes is at most once. While the link to Redis is down (the subscriber
connection is killed, Redis restarts) each node keeps serving its local clients;
``healthy`` is False; the subscriber reconnects with capped, jittered exponential backoff,
resubscribes every current channel, and only then is ``healthy`` True again and
``on_resync`` called (the application reloads state it may have missed). Messages
published meanwhile are lost for the nodes that were cut off; failed publishes are
counted in ``stats["dropped"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import math
import random
from typing import TYPE_CHECKING, Any, Final

import msgspec
import redis.asyncio
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

from .adapter import Excluded, LocalAdapter, Rooms

if TYPE_CHECKING:
    from .socketio import Namespace, Socket

__all__ = ["FORMAT_VERSION", "Broadcast", "Envelope", "RedisAdapter", "Reply", "Request", "ServerMessage"]

logger = logging.getLogger("engineio_min.redis_adapter")

FORMAT_VERSION: Final = 1
# A Socket.IO sid is "{node_id}." + 20 URL-safe characters (socketio.py, secrets.token_urlsafe(15)).
SID_TOKEN_LENGTH: Final = 20
# Publications written but not yet answered while Redis is slow; beyond this they are dropped.
MAX_QUEUED: Final = 100_000
# Bytes of publications the kernel has not taken yet (Redis is slow); beyond this they are dropped.
MAX_UNSENT_BYTES: Final = 64 * 1024 * 1024
RESYNC_MARKER: Final = b"rc-resync"
KEEPALIVE_MARKER: Final = b"rc-keepalive"


class Broadcast(msgspec.Struct, array_like=True, tag=1):
    """A packet for the local members of ``rooms[index]`` (``rooms`` None: the whole namespace)."""

    rooms: list[str] | None
    index: int
    exclude: list[str]  # socket sids
    droppable: bool
    text: str  # the Engine.IO text packet "42..."; with attachments, the Socket.IO header
    attachments: list[bytes] | None


class ServerMessage(msgspec.Struct, array_like=True, tag=2):
    """An application message for ``on_server_message``."""

    message: Any


class Request(msgspec.Struct, array_like=True, tag=3):
    """A question for ``on_request``; the answer goes to the origin node's channel."""

    request_id: int
    message: Any


class Reply(msgspec.Struct, array_like=True, tag=4):
    """An answer to a request (``answered`` False: that node has no ``on_request``, or it failed)."""

    request_id: int
    answered: bool
    message: Any


class Envelope(msgspec.Struct, array_like=True):
    version: int
    node: str  # the node that published it
    namespace: str
    body: Broadcast | ServerMessage | Request | Reply


def spublish_command(channel: str, data: bytes) -> bytes:
    """``SPUBLISH channel data`` as the RESP bytes Redis reads."""
    name = channel.encode()
    return b"*3\r\n$8\r\nSPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(name), name, len(data), data)


class _PendingRequest:
    __slots__ = ("answers", "done", "expected", "replies")

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.expected: int | None = None  # known once SPUBLISH said how many received it
        self.answers = 0
        self.replies: list[Any] = []

    def check(self) -> None:
        if self.expected is not None and self.answers >= self.expected and not self.done.done():
            self.done.set_result(None)


class RedisAdapter(LocalAdapter):
    """A namespace's rooms, shared with the other nodes through Redis (see the module docstring).

    Args:
        namespace: the namespace (the adapter factory receives it).
        client: a ``redis.asyncio.Redis``; publishes and requests go through its pool, the
            subscriber gets a dedicated connection built from the pool's settings.
        node_id: this node's name, unique in the cluster (same as ``Server(node_id=...)``).
        prefix: channel name prefix (several clusters can share one Redis).
        unsubscribe_delay: seconds a room's channel stays subscribed after its last local
            member left.
        keepalive_interval: seconds between PINGs on the subscriber connection; no answer
            within three intervals counts as a lost link.
        backoff_base, backoff_cap: reconnect delays, seconds (doubling, capped, jittered).
    """

    def __init__(
        self,
        namespace: Namespace,
        client: redis.asyncio.Redis,
        node_id: str,
        *,
        prefix: str = "rc",
        unsubscribe_delay: float = 1.0,
        keepalive_interval: float = 5.0,
        backoff_base: float = 0.05,
        backoff_cap: float = 2.0,
    ) -> None:
        super().__init__(namespace)
        if not node_id or "#" in node_id or "." in node_id:
            raise ValueError(f"node_id must be non-empty without '#' or '.', got {node_id!r}")
        server_node = getattr(namespace.server, "node_id", None)
        if server_node not in (None, node_id):
            raise ValueError(f"node_id {node_id!r} differs from the server's {server_node!r}")
        self.node_id = node_id
        self.client = client
        self.prefix = prefix
        self.unsubscribe_delay = unsubscribe_delay
        self.keepalive_interval = keepalive_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.namespace_channel = f"{prefix}#{namespace.name}"
        self.node_channel = f"{prefix}#node#{node_id}"
        self._room_prefix = f"{prefix}#{namespace.name}#"
        # Rooms whose channel is (to be) subscribed: local rooms, and those in their delay.
        self._room_channels: set[str] = set()
        self._unsubscribe_timers: dict[str, asyncio.TimerHandle] = {}
        # Subscription changes not yet sent: channel -> wanted.
        self._changes: dict[str, bool] = {}
        self._markers: dict[bytes, asyncio.Future[None]] = {}
        self._marker_ids = itertools.count()
        self._conn: AbstractConnection | None = None  # the subscriber, once its channels are sent
        self._healthy = False
        self._first_sync: asyncio.Future[None] | None = None
        # The publishing connection's writer (None while it is down: publications are dropped),
        # publications written and not yet answered, the rest of this loop turn's publications
        # (None: nothing published yet this turn), and when a reply was last awaited or read.
        self._pub_conn: AbstractConnection | None = None
        self._pub_writer: asyncio.StreamWriter | None = None
        self._pub_up: asyncio.Event = asyncio.Event()
        self._in_flight = 0
        self._turn_commands: list[bytes] | None = None
        self._pub_last_seen = 0.0
        self._wake_control = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._handler_tasks: set[asyncio.Future[Any]] = set()
        self._requests: dict[int, _PendingRequest] = {}
        self._request_ids = itertools.count(1)
        self._last_seen = 0.0
        self._closed = False
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(Envelope)
        # Counters: envelopes published / dropped (queue full, Redis error), received from
        # other nodes, undecodable, and reconnects of the subscriber.
        self.stats: dict[str, int] = {"published": 0, "dropped": 0, "received": 0, "malformed": 0, "reconnects": 0}

    # -- channels -------------------------------------------------------------------------
    def room_channel(self, room: str) -> str:
        return self._room_prefix + room

    def _sid_node(self, room: str) -> str | None:
        """The node whose socket sid ``room`` is, or None when it does not look like a sid."""
        dot = room.find(".")
        if dot <= 0 or len(room) - dot - 1 != SID_TOKEN_LENGTH:
            return None
        return room[:dot]

    def _target_channel(self, room: str) -> str | None:
        """Where a packet for ``room`` goes; None: only this node has it (its own socket)."""
        node = self._sid_node(room)
        if node is None:
            return self.room_channel(room)
        if node == self.node_id:
            return None
        return f"{self.prefix}#node#{node}"

    def _wanted_channels(self) -> list[str]:
        return [self.namespace_channel, self.node_channel, *(self.room_channel(r) for r in self._room_channels)]

    # -- rooms ------------------------------------------------------------------------------
    def room_created(self, room: str) -> None:
        timer = self._unsubscribe_timers.pop(room, None)
        if timer is not None:
            timer.cancel()  # still subscribed
            return
        if room not in self._room_channels:
            self._room_channels.add(room)
            self._change(self.room_channel(room), True)

    def room_deleted(self, room: str) -> None:
        if self._closed:
            return
        if self.unsubscribe_delay <= 0:
            self._unsubscribe(room)
            return
        loop = asyncio.get_running_loop()
        self._unsubscribe_timers[room] = loop.call_later(self.unsubscribe_delay, self._unsubscribe, room)

    def _unsubscribe(self, room: str) -> None:
        self._unsubscribe_timers.pop(room, None)
        if room in self.rooms:  # members came back meanwhile
            return
        if room in self._room_channels:
            self._room_channels.discard(room)
            self._change(self.room_channel(room), False)

    def _change(self, channel: str, subscribe: bool) -> None:
        self._changes[channel] = subscribe
        self._wake_control.set()

    async def sync(self, timeout: float = 5.0) -> None:
        """Return once Redis has applied every subscription change made so far (tests and
        callers that must not miss the first message of a room just joined)."""
        loop = asyncio.get_running_loop()
        marker = b"rc-sync-%d" % next(self._marker_ids)
        future: asyncio.Future[None] = loop.create_future()
        self._markers[marker] = future
        self._wake_control.set()
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            self._markers.pop(marker, None)

    # -- broadcast ----------------------------------------------------------------------------
    def broadcast_text(self, text: str, rooms: Rooms, exclude: Excluded, droppable: bool, local: bool) -> int:
        if not local:
            self._publish_broadcast(rooms, exclude, droppable, text, None)
        return LocalAdapter.broadcast_text(self, text, rooms, exclude, droppable, True)

    def broadcast_parts(self, parts: list[str | bytes], rooms: Rooms, exclude: Excluded, local: bool) -> int:
        if not local:
            header, attachments = parts[0], parts[1:]
            assert isinstance(header, str)
            self._publish_broadcast(rooms, exclude, False, header, [a for a in attachments if isinstance(a, bytes)])
        return LocalAdapter.broadcast_parts(self, parts, rooms, exclude, True)

    def _publish_broadcast(
        self, rooms: Rooms, exclude: Excluded, droppable: bool, text: str, attachments: list[bytes] | None
    ) -> None:
        excluded_sids = [sock.sid for sock in exclude] if exclude else []
        if rooms is None:
            body = Broadcast(None, 0, excluded_sids, droppable, text, attachments)
            self._publish(self.namespace_channel, body)
            return
        room_list = [rooms] if isinstance(rooms, str) else list(rooms)
        for index, room in enumerate(room_list):
            channel = self._target_channel(room)
            if channel is not None:
                self._publish(channel, Broadcast(room_list, index, excluded_sids, droppable, text, attachments))

    def _deliver(self, body: Broadcast) -> None:
        """A broadcast from another node, for this node's sockets."""
        sockets = self.namespace.sockets
        skip: set[Socket] = set()
        for sid in body.exclude:
            sock = sockets.get(sid)
            if sock is not None:
                skip.add(sock)
        rooms = body.rooms
        target: str | None = None
        if rooms is not None:
            if not 0 <= body.index < len(rooms):
                self._malformed("room index out of range")
                return
            target = rooms[body.index]
            for earlier in rooms[: body.index]:  # they reach their members through their own channel
                skip.update(self.members(earlier))
        excluded = frozenset(skip) if skip else None
        if body.attachments is None:
            LocalAdapter.broadcast_text(self, body.text, target, excluded, body.droppable, True)
        else:
            LocalAdapter.broadcast_parts(self, [body.text, *body.attachments], target, excluded, True)

    # -- node-to-node messages ----------------------------------------------------------------
    def server_publish(self, room: str | None, message: object) -> None:
        """Send ``message`` (msgspec-serialisable) to ``on_server_message`` of the other nodes
        that have members in ``room`` (None: every other node). Never waits; at most once."""
        channel = self.namespace_channel if room is None else self._target_channel(room)
        if channel is not None:
            self._publish(channel, ServerMessage(message))

    async def request(self, room: str | None, message: object, timeout: float) -> list[Any]:
        """Ask the other nodes (with members in ``room``, or all) and return their answers
        (``on_request``'s return values) that arrive within ``timeout`` seconds; returns as
        soon as every node that received the question answered. [] while not healthy."""
        channel = self.namespace_channel if room is None else self._target_channel(room)
        if channel is None or not self.healthy:
            return []
        loop = asyncio.get_running_loop()
        request_id = next(self._request_ids)
        pending = _PendingRequest(loop.create_future())
        self._requests[request_id] = pending
        try:
            async with asyncio.timeout(timeout):
                data = self._encode(Request(request_id, message))
                receivers = int(await self.client.execute_command("SPUBLISH", channel, data))  # type: ignore[no-untyped-call]
                self.stats["published"] += 1
                # This node's own subscription got it too (and ignores it).
                subscribed = channel in (self.namespace_channel, self.node_channel) or (
                    room is not None and room in self._room_channels
                )
                pending.expected = receivers - 1 if subscribed and self._conn is not None else receivers
                pending.check()
                await pending.done
        except TimeoutError:
            pass
        except (RedisError, OSError) as exc:
            logger.warning("request to %s failed: %s", channel, exc)
            self.stats["dropped"] += 1
        finally:
            del self._requests[request_id]
        return pending.replies

    def _answer(self, origin: str, request: Request) -> None:
        hook = self.on_request
        reply_channel = f"{self.prefix}#node#{origin}"
        if hook is None:
            self._publish(reply_channel, Reply(request.request_id, False, None))
            return
        try:
            result = hook(request.message)
        except Exception:
            logger.exception("on_request failed")
            self._publish(reply_channel, Reply(request.request_id, False, None))
            return
        if not inspect.isawaitable(result):
            self._publish(reply_channel, Reply(request.request_id, True, result))
            return

        async def finish(pending: Any) -> None:
            try:
                answer = await pending
            except Exception:
                logger.exception("on_request failed")
                self._publish(reply_channel, Reply(request.request_id, False, None))
                return
            self._publish(reply_channel, Reply(request.request_id, True, answer))

        self._spawn(finish(result))

    def _take_reply(self, reply: Reply) -> None:
        pending = self._requests.get(reply.request_id)
        if pending is None:
            return  # too late: that request timed out
        pending.answers += 1
        if reply.answered:
            pending.replies.append(reply.message)
        pending.check()

    # -- publishing ---------------------------------------------------------------------------
    def _encode(self, body: Broadcast | ServerMessage | Request | Reply) -> bytes:
        return self._encoder.encode(Envelope(FORMAT_VERSION, self.node_id, self.namespace.name, body))

    def _publish(self, channel: str, body: Broadcast | ServerMessage | Request | Reply) -> None:
        if self._closed:
            return
        try:
            data = self._encode(body)
        except (TypeError, msgspec.EncodeError) as exc:
            raise TypeError(f"cannot send {type(body).__name__} to other nodes: {exc}") from None
        writer = self._pub_writer
        if (
            writer is None
            or self._in_flight >= MAX_QUEUED
            or writer.transport.get_write_buffer_size() > MAX_UNSENT_BYTES
        ):
            self.stats["dropped"] += 1  # at most once: Redis is away or far behind
            return
        command = spublish_command(channel, data)
        if self._in_flight == 0:
            self._pub_last_seen = asyncio.get_running_loop().time()
        self._in_flight += 1
        commands = self._turn_commands
        if commands is None:
            commands = self._turn_commands = []
            # Written at the end of this turn, before any member of this node (flush_first).
            self.flusher.flush_first(self)
        commands.append(command)

    def flush_pending(self) -> None:
        """Write this turn's publications (the Flusher calls it first at the end of the turn)."""
        commands, self._turn_commands = self._turn_commands, None
        writer = self._pub_writer
        # With the connection gone meanwhile, the reader already counted these as dropped.
        if commands and writer is not None:
            writer.write(commands[0] if len(commands) == 1 else b"".join(commands))

    async def _publisher(self) -> None:
        """Keep the publishing connection and read its replies (``_publish`` writes the commands)."""
        attempt = 0
        loop = asyncio.get_running_loop()
        while not self._closed:
            conn = self._new_connection()
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
                self._pub_conn = conn
                self._pub_writer = conn._writer
                self._pub_up.set()
                attempt = 0
                while True:
                    try:
                        await conn.read_response(disconnect_on_error=True)
                        self.stats["published"] += 1
                    except ResponseError as exc:  # refused by Redis; the link is fine
                        self.stats["dropped"] += 1
                        logger.warning("a message to other nodes was refused: %s", exc)
                    self._in_flight -= 1
                    self._pub_last_seen = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # RedisError, OSError, and anything a broken reply may raise
                self._pub_writer = None
                self._pub_conn = None
                self._pub_up.clear()
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
                if self._in_flight:
                    self.stats["dropped"] += self._in_flight
                    logger.warning("%d messages to other nodes lost: %s", self._in_flight, exc)
                    self._in_flight = 0
                if self._closed:
                    return
                await asyncio.sleep(self._backoff(attempt))
                attempt = min(attempt + 1, 30)

    def _backoff(self, attempt: int) -> float:
        """Seconds to wait before reconnect number ``attempt`` (from 0): doubling, capped, jittered
        (so that the nodes of a cluster do not all reconnect in the same instant)."""
        return min(self.backoff_cap, self.backoff_base * 2.0**attempt) * random.uniform(0.5, 1.0)

    # -- subscribing ----------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        """True while subscribed to every channel this node needs and able to publish."""
        return self._healthy and self._pub_writer is not None

    def _new_connection(self) -> AbstractConnection:
        pool = self.client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        # Pub/sub replies arrive whenever other nodes publish: no read timeout, raw bytes, RESP2.
        kwargs.update(socket_timeout=None, decode_responses=False, protocol=2)
        if kwargs.get("socket_connect_timeout") is None:
            kwargs["socket_connect_timeout"] = 5.0
        connection: AbstractConnection = pool.connection_class(**kwargs)
        return connection

    async def _subscriber(self) -> None:
        """Keep one subscribed connection: connect, subscribe, read; on failure, back off and redo."""
        attempt = 0
        loop = asyncio.get_running_loop()
        while not self._closed:
            conn = self._new_connection()
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
                channels = self._wanted_channels()
                self._changes.clear()  # the full list below covers them
                self._conn = conn
                self._last_seen = loop.time()
                commands: list[tuple[str, str | bytes]] = [("SSUBSCRIBE", channel) for channel in channels]
                commands.append(("PING", RESYNC_MARKER))  # answered once every subscription above is
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                attempt = 0
                while True:
                    reply = await conn.read_response(disconnect_on_error=True)
                    self._last_seen = loop.time()
                    self._on_reply(reply)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # RedisError, OSError, and anything a broken reply may raise
                was_healthy = self._healthy
                self._healthy = False
                self._conn = None
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
                if self._closed:
                    return
                if was_healthy:
                    logger.warning("Redis subscriber link lost (%s); local clients are still served", exc)
                self.stats["reconnects"] += 1
                await asyncio.sleep(self._backoff(attempt))
                attempt = min(attempt + 1, 30)

    def _on_reply(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 2:
            return
        kind = reply[0]
        if kind == b"smessage" and len(reply) == 3:
            self._on_message(reply[2])
        elif kind == b"pong":
            self._on_pong(reply[1])

    def _on_pong(self, marker: bytes) -> None:
        if marker == RESYNC_MARKER:
            self._subscribed()
            return
        future = self._markers.pop(marker, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _subscribed(self) -> None:
        """Every channel is subscribed again (or for the first time)."""
        self._healthy = True
        first = self._first_sync
        if first is not None and not first.done():
            first.set_result(None)
            return
        logger.info("Redis subscriber link back; every room resubscribed")
        if self._pub_writer is not None:
            self._resynced()
        else:  # what the application re-announces must not be dropped for want of a publishing link
            self._spawn(self._resync_once_publishing())

    async def _resync_once_publishing(self) -> None:
        await self._pub_up.wait()
        if self._healthy:
            self._resynced()

    def _resynced(self) -> None:
        hook = self.on_resync
        if hook is not None:
            try:
                result = hook()
                if inspect.isawaitable(result):
                    self._spawn(result)
            except Exception:
                logger.exception("on_resync failed")

    async def _control(self) -> None:
        """Send subscription changes and sync markers on the subscriber connection."""
        while True:
            await self._wake_control.wait()
            self._wake_control.clear()
            conn = self._conn
            if conn is None:
                self._changes.clear()  # the reconnect subscribes the full list
                continue
            changes, self._changes = self._changes, {}
            commands: list[tuple[str, str | bytes]] = [
                ("SSUBSCRIBE" if wanted else "SUNSUBSCRIBE", channel) for channel, wanted in changes.items()
            ]
            commands.extend(("PING", marker) for marker in self._markers)
            if not commands:
                continue
            try:
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            except Exception as exc:  # the reader sees the broken link too, and reconnects
                logger.debug("subscription change not sent: %s", exc)

    async def _keepalive(self) -> None:
        """Notice a link that died silently (no FIN): PING, and drop it after three silent intervals."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.keepalive_interval)
            pub = self._pub_conn
            if pub is not None and self._in_flight and loop.time() - self._pub_last_seen > 3 * self.keepalive_interval:
                logger.warning("Redis silent on %d publications for %.0f s; reconnecting",
                               self._in_flight, loop.time() - self._pub_last_seen)  # fmt: skip
                with contextlib.suppress(Exception):
                    await pub.disconnect(nowait=True)
            conn = self._conn
            if conn is None:
                continue
            if loop.time() - self._last_seen > 3 * self.keepalive_interval:
                logger.warning("Redis subscriber silent for %.0f s; reconnecting", loop.time() - self._last_seen)
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
                continue
            with contextlib.suppress(Exception):
                await conn.send_packed_command(conn.pack_commands([("PING", KEEPALIVE_MARKER)]), check_health=False)

    # -- receiving ------------------------------------------------------------------------------
    def _on_message(self, data: bytes) -> None:
        try:
            envelope = self._decoder.decode(data)
        except msgspec.DecodeError as exc:
            self._malformed(str(exc))
            return
        if envelope.node == self.node_id or envelope.namespace != self.namespace.name:
            return  # our own publication, or another namespace's on the shared node channel
        if envelope.version != FORMAT_VERSION:
            self._malformed(f"format version {envelope.version}")
            return
        self.stats["received"] += 1
        body = envelope.body
        try:
            if type(body) is Broadcast:
                self._deliver(body)
            elif type(body) is ServerMessage:
                hook = self.on_server_message
                if hook is not None:
                    hook(body.message)
            elif type(body) is Request:
                self._answer(envelope.node, body)
            elif type(body) is Reply:
                self._take_reply(body)
        except Exception:
            logger.exception("handling a %s from node %s failed", type(body).__name__, envelope.node)

    def _malformed(self, why: str) -> None:
        self.stats["malformed"] += 1
        logger.warning("ignored a malformed message from Redis: %s", why)

    def _spawn(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(awaitable)
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Future[Any]) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("cluster hook failed", exc_info=task.exception())

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, timeout: float = 10.0) -> None:
        """Subscribe this node's channels; raises ConnectionError if Redis does not answer in time."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._closed = False
        self._first_sync = loop.create_future()
        self._tasks = [
            loop.create_task(self._subscriber()),
            loop.create_task(self._publisher()),
            loop.create_task(self._control()),
        ]
        if self.keepalive_interval > 0 and math.isfinite(self.keepalive_interval):
            self._tasks.append(loop.create_task(self._keepalive()))
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._first_sync)
                await self._pub_up.wait()
        except TimeoutError:
            await self.close()
            raise ConnectionError(f"Redis did not accept the subscriptions of node {self.node_id!r} "
                                  f"within {timeout} s ({self.client.connection_pool!r})") from None

    async def close(self) -> None:
        """Send what is still queued (briefly), then stop every task and the subscriber."""
        if self._closed:
            return
        self._closed = True
        self._healthy = False
        for timer in self._unsubscribe_timers.values():
            timer.cancel()
        self._unsubscribe_timers.clear()
        for _ in range(20):  # up to 1 s for the last messages
            if not self._tasks or not (self._in_flight or self._turn_commands):
                break
            await asyncio.sleep(0.05)
        tasks: list[asyncio.Future[Any]] = [*self._tasks, *self._handler_tasks]
        self._tasks = []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for conn in (self._conn, self._pub_conn):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
        self._conn = self._pub_conn = self._pub_writer = None
        for pending in self._requests.values():
            if not pending.done.done():
                pending.done.set_result(None)
