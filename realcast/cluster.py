"""The cluster's shared live state in Redis: presence, analytics, chat history, slow mode, stream status.

Layer: application (realcast); imports redis-py (asyncio) and realcast's pure modules. Messages
between nodes (broadcasts, node-to-node notices) go through engineio_min's Redis adapter; this
module keeps what every node must agree on and reads back.

Key layout (``T`` is the stream's hash tag ``{app|stream}``, so one stream's keys live on one shard):

    rc:T:v        hash user -> nodes where the user is a viewer     (HLEN: viewers, cluster-wide)
    rc:T:v:<node> hash user -> username, this node's viewers         (so a dead node can be reaped)
    rc:T:c, rc:T:c:<node>   the same for chat members                (chat:joined.online_users)
    rc:T:w        hash: peak, start_sum, ended_seconds, ended_count, version (analytics, count order)
    rc:T:ws       hash user -> wall time their viewing session started
    rc:T:r        hash "m:<second>" / "r:<second>" -> messages / reactions in that second
    rc:T:h, rc:T:hm   chat history: list of ids, hash id -> message JSON (the last ``retain``)
    rc:T:slow:<user>  slow mode: exists while the user must wait (PX = the interval)
    rc:T:st       hash: the stream's status, title, started_at, ended_at, error
    rc:nodes      hash node -> last heartbeat (ms); a node silent for NODE_DEAD_AFTER is reaped
    rc:node:<node>:streams  set of "app|stream" where the node had users (what to reap)

Commands are queued and sent by one worker task in one pipeline per loop turn, in order: a
user's join and leave reach Redis in the order they happened, and a node makes one round trip
per turn however many clients act. If Redis is unreachable, queued presence changes are lost
and the node marks itself out of sync; once Redis answers again it re-asserts its whole local
presence (the ``sync`` operation of the presence script), so counts heal by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from . import cluster_scripts as lua
from .analytics import AnalyticsSnapshot
from .history import ChatMessage
from .live import StreamState, StreamStatus

__all__ = ["ClusterState", "PresenceResult", "PresenceTransition"]

logger = logging.getLogger("realcast.cluster")

HEARTBEAT_INTERVAL: Final = 1.0  # seconds between a node's heartbeats and its look for dead nodes
NODE_DEAD_AFTER: Final = 5.0  # a node whose heartbeat is this old is reaped (its viewers leave)
RATE_KEY_TTL: Final = 120  # seconds; rate buckets of an idle stream expire by themselves

Kind = Literal["v", "c"]  # viewers, chat members


@dataclass(frozen=True, slots=True)
class PresenceTransition:
    """A user who became present in (+1) or absent from (-1) the stream over the whole cluster."""

    user_id: str
    username: str
    delta: int


@dataclass(frozen=True, slots=True)
class PresenceResult:
    """What one presence change did: the stream's cluster-wide count after it, and who changed."""

    count: int
    version: int  # orders viewer counts published by different nodes
    transitions: tuple[PresenceTransition, ...]


def stream_tag(app_id: str, stream_id: str) -> str:
    return "{" + app_id + "|" + stream_id + "}"


def _key(app_id: str, stream_id: str, suffix: str) -> str:
    return f"rc:{stream_tag(app_id, stream_id)}:{suffix}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse_presence(reply: Any) -> PresenceResult:
    count, version, flat = reply
    transitions = tuple(
        PresenceTransition(_text(flat[i]), _text(flat[i + 1]), int(flat[i + 2])) for i in range(0, len(flat), 3)
    )
    return PresenceResult(int(count), int(version), transitions)


def _eval(client: Redis | Pipeline, script: AsyncScript, keys: list[str], args: Sequence[object]) -> Any:
    """Run a registered script: queued by sha on a pipeline (which loads missing scripts before it
    executes), awaitable on a client. ``AsyncScript.__call__`` is a coroutine, so it cannot queue."""
    if isinstance(client, Pipeline):
        client.scripts.add(script)  # type: ignore[arg-type]  # the pipeline only reads .sha/.script
        return client.evalsha(script.sha, len(keys), *keys, *args)  # type: ignore[arg-type]
    return script(keys=keys, args=args, client=client)  # type: ignore[arg-type]


class _Op:
    """One queued command (or script call) and what to do with its reply."""

    __slots__ = ("add", "future", "then")

    def __init__(
        self,
        add: Callable[[Pipeline], object],
        then: Callable[[Any], None] | None,
        future: asyncio.Future[Any] | None,
    ) -> None:
        self.add = add
        self.then = then
        self.future = future


OnPresence = Callable[[StreamState, Kind, PresenceResult], None]
OnReap = Callable[[str, str, Kind, PresenceResult], None]


class ClusterState:
    """This node's view of, and contribution to, the cluster's live state.

    Args:
        client: a redis-py asyncio client (its pool serves the pipeline worker).
        node_id: this node's id (unique in the cluster).
        on_presence: called with each presence result of this node's own changes.
        on_reap: called with the result of reaping a dead node's users from one stream.
        wall: wall-clock seconds (session starts and ends, rate buckets).
        history_retain: chat messages kept per stream (deletable by moderators).
    """

    def __init__(
        self,
        client: Redis,
        node_id: str,
        *,
        on_presence: OnPresence,
        on_reap: OnReap,
        local_presence: Callable[[], Iterable[tuple[StreamState, Kind, dict[str, str]]]],
        wall: Callable[[], float] = time.time,
        history_retain: int = 500,
    ) -> None:
        self.client = client
        self.node_id = node_id
        self._on_presence = on_presence
        self._on_reap = on_reap
        self._local_presence = local_presence
        self._wall = wall
        self._retain = history_retain
        self._queue: list[_Op] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._streams_noted: set[tuple[str, str]] = set()
        # True when some change may not have reached Redis: re-assert local presence when it is back.
        self.out_of_sync = False
        self.redis_ok = True
        self._closed = False
        self._busy = False
        reg = client.register_script
        self._presence: AsyncScript = reg(lua.PRESENCE)
        self._snapshot: AsyncScript = reg(lua.SNAPSHOT)
        self._history_add: AsyncScript = reg(lua.HISTORY_ADD)
        self._history_recent: AsyncScript = reg(lua.HISTORY_RECENT)
        self._history_delete: AsyncScript = reg(lua.HISTORY_DELETE)
        self._slow_mode: AsyncScript = reg(lua.SLOW_MODE)

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Clear what an earlier run of this node id left, then start the worker and heartbeat."""
        await self._reap_node(self.node_id)
        await self.client.hset("rc:nodes", self.node_id, await self._server_ms())
        self._tasks = [
            asyncio.create_task(self._work(), name="realcast-cluster-pipeline"),
            asyncio.create_task(self._heartbeat(), name="realcast-cluster-heartbeat"),
        ]

    async def close(self) -> None:
        """Stop the tasks and leave the cluster cleanly (this node's users leave its counts)."""
        if self._closed:
            return
        self._closed = True
        for _ in range(100):  # up to 1 s for what is queued or in flight (clients' departures)
            if not (self._queue or self._busy) or not self._tasks:
                break
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(Exception):
            await self._run_ops(self._take_queue())
            await self._reap_node(self.node_id)
            await self.client.hdel("rc:nodes", self.node_id)

    # --- the pipeline worker ------------------------------------------------------------------

    def _submit(self, add: Callable[[Pipeline], object], then: Callable[[Any], None] | None = None) -> None:
        self._queue.append(_Op(add, then, None))
        self._wake.set()

    def _ask(self, add: Callable[[Pipeline], object]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Op(add, None, future))
        self._wake.set()
        return future

    def _take_queue(self) -> list[_Op]:
        ops, self._queue = self._queue, []
        self._wake.clear()
        return ops

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._busy = True
            try:
                await self._run_ops(self._take_queue())
            finally:
                self._busy = False

    async def _run_ops(self, ops: list[_Op]) -> None:
        if not ops:
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for op in ops:
                    op.add(pipe)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the link: every op of this round is lost
            self._link_failed(exc)
            for op in ops:
                if op.future is not None and not op.future.done():
                    op.future.set_exception(ConnectionError(f"redis unavailable: {exc}"))
            return
        self.redis_ok = True
        for op, reply in zip(ops, replies, strict=True):
            if isinstance(reply, Exception):
                if op.future is not None and not op.future.done():
                    op.future.set_exception(reply)
                else:
                    logger.error("redis command failed: %s", reply)
                continue
            if op.future is not None:
                if not op.future.done():
                    op.future.set_result(reply)
            elif op.then is not None:
                try:
                    op.then(reply)
                except Exception:
                    logger.exception("handling a redis reply failed")

    def _link_failed(self, exc: BaseException) -> None:
        if self.redis_ok:
            logger.warning("redis unreachable (%s): serving local clients, will resync", exc)
        self.redis_ok = False
        self.out_of_sync = True

    # --- heartbeat, dead nodes, resync --------------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            try:
                await self._beat()
            except Exception as exc:
                self._link_failed(exc)

    async def _server_ms(self) -> int:
        """Redis's clock in ms: heartbeats are compared on one clock, so that nodes whose clocks
        disagree by seconds do not take each other for dead."""
        seconds, micros = await self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def _beat(self) -> None:
        now_ms = await self._server_ms()
        added = await self.client.hset("rc:nodes", self.node_id, now_ms)
        self.redis_ok = True
        if added and not self.out_of_sync:
            # Our heartbeat was not there: Redis restarted (empty) or another node took us for dead
            # and reaped our viewers (a long pause). Either way Redis no longer holds our presence.
            logger.warning("this node was missing from the cluster's registry: re-asserting its presence")
            self.out_of_sync = True
        if self.out_of_sync:
            await self.resync()
        beats = await self.client.hgetall("rc:nodes")
        for raw_node, raw_ms in beats.items():
            node = _text(raw_node)
            if node == self.node_id or now_ms - int(raw_ms) <= NODE_DEAD_AFTER * 1000:
                continue
            # Whoever claims it reaps it; the scripts are idempotent if two nodes race anyway.
            if await self.client.set(f"rc:reaping:{node}", self.node_id, nx=True, px=30_000):
                logger.warning("node %s is silent: removing its viewers from the counts", node)
                await self._reap_node(node)
                await self.client.hdel("rc:nodes", node)

    async def _reap_node(self, node: str) -> None:
        streams_key = f"rc:node:{node}:streams"
        for raw in await self.client.smembers(streams_key):
            app_id, _, stream_id = _text(raw).partition("|")
            for kind in ("v", "c"):
                reply = await self._presence_call(self.client, app_id, stream_id, kind, "reap", node, [])
                result = _parse_presence(reply)
                if node != self.node_id or result.transitions:
                    self._on_reap(app_id, stream_id, kind, result)
        await self.client.delete(streams_key)
        if node == self.node_id:
            self._streams_noted.clear()

    async def resync(self) -> None:
        """Make Redis hold exactly this node's local presence (after an outage or a Redis restart)."""
        self.out_of_sync = False
        self._streams_noted.clear()
        for state, kind, users in list(self._local_presence()):
            self._note_stream(state.app_id, state.stream_id)
            self._sync_one(state, kind, [x for pair in users.items() for x in pair])
        logger.info("cluster state resynchronised")

    def _sync_one(self, state: StreamState, kind: Kind, users: list[str]) -> None:
        self._submit(
            lambda p: self._presence_call(p, state.app_id, state.stream_id, kind, "sync", None, users),
            lambda reply: self._on_presence(state, kind, _parse_presence(reply)),
        )

    # --- presence -----------------------------------------------------------------------------

    def _presence_call(
        self, client: Redis | Pipeline, app_id: str, stream_id: str, kind: Kind, op: str, node: str | None,
        users: list[str],
    ) -> Awaitable[Any]:
        node = node or self.node_id
        keys = [
            _key(app_id, stream_id, kind),
            _key(app_id, stream_id, f"{kind}:{node}"),
            _key(app_id, stream_id, "w"),
            _key(app_id, stream_id, "ws"),
        ]
        args = [op, repr(self._wall()), "1" if kind == "v" else "0", *users]
        result: Awaitable[Any] = _eval(client, self._presence, keys, args)
        return result

    def _note_stream(self, app_id: str, stream_id: str) -> None:
        if (app_id, stream_id) not in self._streams_noted:
            self._streams_noted.add((app_id, stream_id))
            self._submit(lambda p: p.sadd(f"rc:node:{self.node_id}:streams", f"{app_id}|{stream_id}"))

    def presence(self, state: StreamState, kind: Kind, user_id: str, username: str, arrived: bool) -> None:
        """This node's first connection of ``user_id`` arrived in (or its last left) the stream."""
        self._note_stream(state.app_id, state.stream_id)
        op = "+" if arrived else "-"
        self._submit(
            lambda p: self._presence_call(p, state.app_id, state.stream_id, kind, op, None, [user_id, username]),
            lambda reply: self._on_presence(state, kind, _parse_presence(reply)),
        )

    async def chat_members(self, app_id: str, stream_id: str) -> int:
        """Distinct users in the stream's chat over the cluster (after this node's queued changes)."""
        return int(await self._ask(lambda p: p.hlen(_key(app_id, stream_id, "c"))))

    async def viewers(self, app_id: str, stream_id: str) -> int:
        """Distinct viewers of the stream over the cluster (after this node's queued changes)."""
        return int(await self._ask(lambda p: p.hlen(_key(app_id, stream_id, "v"))))

    # --- analytics ----------------------------------------------------------------------------

    def count(self, app_id: str, stream_id: str, what: Literal["m", "r"]) -> None:
        """One chat message ("m") or reaction ("r") now."""
        key = _key(app_id, stream_id, "r")
        field = f"{what}:{int(self._wall())}"

        def first_of_its_second(count: object) -> None:
            # The key's lifetime is renewed once per second that counts something, not per event.
            if count == 1:
                self._submit(lambda p: p.expire(key, RATE_KEY_TTL))

        self._submit(lambda p: p.hincrby(key, field, 1), first_of_its_second)

    async def snapshot(self, app_id: str, stream_id: str) -> AnalyticsSnapshot:
        """The stream's analytics over the cluster."""
        now = self._wall()
        keys = [_key(app_id, stream_id, "v"), _key(app_id, stream_id, "w"), _key(app_id, stream_id, "r")]
        reply = await self._ask(lambda p: _eval(p, self._snapshot, keys, [repr(now)]))
        viewers, peak, start_sum, ended_seconds, ended_count, messages, reactions = (float(_text(x)) for x in reply)
        sessions = ended_count + viewers
        watched = ended_seconds + viewers * now - start_sum
        average = max(watched, 0.0) / sessions if sessions else 0.0
        return AnalyticsSnapshot(
            viewers=int(viewers),
            peak_viewers=int(max(peak, viewers)),
            messages_per_minute=int(messages),
            reactions_per_minute=int(reactions),
            average_watch_time=round(average, 1),
        )

    # --- chat history -------------------------------------------------------------------------

    def remember(self, app_id: str, stream_id: str, message: ChatMessage) -> asyncio.Future[Any]:
        """Append a sent message to the stream's shared history; the future resolves once it is there."""
        keys = [_key(app_id, stream_id, "h"), _key(app_id, stream_id, "hm")]
        args: list[str | bytes | int] = [message.message_id, msgspec.json.encode(message.as_payload()), self._retain]
        return self._ask(lambda p: _eval(p, self._history_add, keys, args))

    async def recent(self, app_id: str, stream_id: str, n: int) -> list[dict[str, object]]:
        """The stream's newest ``n`` messages, oldest first, whichever node they were sent on."""
        keys = [_key(app_id, stream_id, "h"), _key(app_id, stream_id, "hm")]
        reply = await self._ask(lambda p: _eval(p, self._history_recent, keys, [n]))
        return [msgspec.json.decode(raw) for raw in reply if raw is not None]

    async def message(self, app_id: str, stream_id: str, message_id: str) -> dict[str, object] | None:
        """A message still in the shared history, or None."""
        raw = await self._ask(lambda p: p.hget(_key(app_id, stream_id, "hm"), message_id))
        if raw is None:
            return None
        decoded: dict[str, object] = msgspec.json.decode(raw)
        return decoded

    async def forget_message(self, app_id: str, stream_id: str, message_id: str) -> bool:
        """Delete a message from the shared history; False if it was not there."""
        keys = [_key(app_id, stream_id, "h"), _key(app_id, stream_id, "hm")]
        return bool(await self._ask(lambda p: _eval(p, self._history_delete, keys, [message_id])))

    # --- slow mode ----------------------------------------------------------------------------

    async def slow_mode_wait(self, app_id: str, stream_id: str, user_id: str, interval: float) -> float:
        """0.0 when the user may send now (their interval starts), else the seconds to wait."""
        key = _key(app_id, stream_id, f"slow:{user_id}")
        ms = max(int(interval * 1000), 1)
        left = await self._ask(lambda p: _eval(p, self._slow_mode, [key], [ms]))
        return int(left) / 1000.0

    def slow_mode_release(self, app_id: str, stream_id: str, user_id: str) -> None:
        """Give back an interval taken by a message that was refused afterwards."""
        key = _key(app_id, stream_id, f"slow:{user_id}")
        self._submit(lambda p: p.delete(key))

    # --- stream status ------------------------------------------------------------------------

    async def load_status(self, state: StreamState) -> None:
        """Read the stream's shared status into ``state``."""
        raw = await self._ask(lambda p: p.hgetall(_key(state.app_id, state.stream_id, "st")))
        fields = {_text(k): _text(v) for k, v in raw.items()}
        state.status = StreamStatus(fields.get("status", "offline"))
        state.title = fields.get("title", "")
        state.started_at = float(fields["started_at"]) if fields.get("started_at") else None
        state.ended_at = float(fields["ended_at"]) if fields.get("ended_at") else None
        state.error = fields.get("error") or None

    async def save_status(self, state: StreamState) -> None:
        """Write ``state``'s status for every node (acknowledged before the change is announced)."""
        mapping: dict[bytes | bytearray | memoryview[int] | str | int | float, Any] = {
            "status": state.status.value,
            "title": state.title,
            "started_at": "" if state.started_at is None else repr(state.started_at),
            "ended_at": "" if state.ended_at is None else repr(state.ended_at),
            "error": state.error or "",
        }
        await self._ask(lambda p: p.hset(_key(state.app_id, state.stream_id, "st"), mapping=mapping))
