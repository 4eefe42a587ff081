"""The Hub: realcast's services in one place, and the membership operations they share.

Layer: application (realcast); imports engineio_min's package root (``Namespace``, ``Socket``)
and realcast's own modules.

Every broadcast goes through ``Namespace.emit(..., to=room)``: one encode, the same bytes to
every member, no per-recipient work here. Membership changes keep three things in step: the
engineio_min rooms, each connection's :class:`Membership`, and the per-stream counters in
:class:`StreamState` (viewers, chat users, analytics subscribers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Literal

from engineio_min import Namespace, Socket

from .auth import Principal, Rank, TokenVerifier
from .cluster import ClusterState, Kind, PresenceResult
from .config import ServerConfig
from .connection import (
    ConnState,
    Membership,
    analytics_room,
    chat_room,
    conn_of,
    stream_room,
    user_room,
)
from .counters import AppCounters
from .errors import InvalidRequest
from .ids import MessageIdFactory, iso_utc
from .live import CallLater, CountCoalescer, IntervalGate, LiveRegistry, StreamState, update_interval
from .presence import PresenceCoalescer
from .ratelimit import Policy, RateLimiter, SlowModeGate, policy_for
from .store import Change, ChangeKind, ModerationStore

__all__ = ["Hub", "Part"]

logger = logging.getLogger("realcast.hub")

Part = Literal["chat", "subscribed", "analytics"]
# One connection may take part in this many streams at once: bounds the per-stream state a single
# client can make the server create (a real viewer watches one or a few streams).
MAX_STREAMS_PER_CONNECTION: Final = 100
PARTS: tuple[Part, ...] = ("chat", "subscribed", "analytics")
# How long a moderation action waits for the other nodes to say what rank its target holds there.
RANK_REQUEST_TIMEOUT: Final = 0.5
# How long a moderation action waits for the other nodes to apply its change before it is acked.
MOD_PROPAGATION_TIMEOUT: Final = 0.1


class Hub:
    """Shared services and state of one running realcast server.

    Args:
        nsp: the Socket.IO namespace realcast serves ("/").
        config: the server configuration (with its apps).
        store: durable moderation state.
        call_later: ``loop.call_later``, for coalescing viewer counts and presence.
        wall: wall-clock seconds (timestamps, ban expiry).
        mono: monotonic seconds (rate limits, analytics, coalescing).
    """

    def __init__(
        self,
        nsp: Namespace,
        config: ServerConfig,
        store: ModerationStore,
        call_later: CallLater,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nsp = nsp
        self.config = config
        self.store = store
        self.wall = wall
        self.mono = mono
        self.verifier = TokenVerifier(config.apps, leeway=config.jwt_leeway, clock=wall)
        self.policies: dict[str, Policy] = {app.app_id: policy_for(app.rate_limits) for app in config.apps}
        self.live = LiveRegistry()
        self.ids = MessageIdFactory(wall)
        self.slow_mode = SlowModeGate(mono)
        self.typing = SlowModeGate(mono)
        # One gate per stream for viewer.joined/left and viewer.count.update: an interval's arrivals
        # and the new count go out in one loop turn, so each member gets them in one socket write;
        # a big stream gets them less often (update_interval: at most count_update_budget
        # deliveries per second per stream).
        budget = config.count_update_budget

        def announce_interval(state: StreamState) -> float:
            return max(config.presence_interval, update_interval(state.viewer_count, budget))

        announcements = IntervalGate(lambda state: state.count_gate, None, mono, call_later, announce_interval)
        self.presence = PresenceCoalescer(
            self._emit_presence, mono, call_later, config.presence_interval, config.presence_limit, announcements
        )
        self.counts = CountCoalescer(self._emit_count, mono, call_later, gate=announcements)
        # Set by attach_cluster when the server runs as one node of several (redis_url).
        self.cluster: ClusterState | None = None
        # Refusals, moderation actions, backend API requests: read by /metrics (metrics.py).
        self.counters = AppCounters()

    # --- identity -----------------------------------------------------------------------------

    def sign_in(self, sock: Socket, conn: ConnState, principal: Principal) -> None:
        """Attach a verified identity to a connection."""
        if conn.auth_timer is not None:
            conn.auth_timer.cancel()
            conn.auth_timer = None
        if conn.principal is None:
            conn.limiter = RateLimiter(self.policies[principal.app_id], self.mono)
        conn.principal = principal
        sock.join(user_room(principal.app_id, principal.user_id))

    def user_rank(self, app_id: str, stream_id: str, user_id: str) -> Rank:
        """The highest rank ``user_id`` holds in the stream over their open connections.

        A user with no open connection has no known token, so ranks as a viewer.
        """
        rank = Rank.VIEWER
        for sock in self.nsp.room_members(user_room(app_id, user_id)):
            principal = conn_of(sock).principal
            if principal is not None:
                rank = max(rank, principal.rank_in(stream_id))
        return rank

    # --- membership ---------------------------------------------------------------------------

    def enter(self, sock: Socket, conn: ConnState, principal: Principal, stream_id: str, part: Part) -> StreamState:
        """Add ``part`` (chat / subscribed / analytics) of this connection to the stream.

        Raises:
            InvalidRequest: the connection is already in too many streams.
        """
        app_id, user_id = principal.app_id, principal.user_id
        member = conn.streams.get(stream_id)
        if member is None:
            if len(conn.streams) >= MAX_STREAMS_PER_CONNECTION:
                raise InvalidRequest(f"a connection can be in at most {MAX_STREAMS_PER_CONNECTION} streams")
            member = conn.streams[stream_id] = Membership()
        state = self.live.get(app_id, stream_id)
        was_in_stream = member.in_stream
        if part == "chat" and not member.chat:
            member.chat = True
            sock.join(chat_room(app_id, stream_id))
            state.add_chat_connection(user_id)
            if self.cluster is not None and state.chat_users[user_id] == 1:
                state.names[user_id] = principal.username
                self.cluster.presence(state, "c", user_id, principal.username, arrived=True)
        elif part == "subscribed" and not member.subscribed:
            member.subscribed = True
        elif part == "analytics" and not member.analytics:
            member.analytics = True
            sock.join(analytics_room(app_id, stream_id))
            state.analytics_subscribers += 1
        if member.in_stream and not was_in_stream:
            room = stream_room(app_id, stream_id)
            sock.join(room)
            if state.add_viewer_connection(user_id, self.mono()):
                if self.cluster is not None:
                    # Announced once the cluster says whether this is the user's first connection anywhere.
                    state.names[user_id] = principal.username
                    self.cluster.presence(state, "v", user_id, principal.username, arrived=True)
                else:
                    payload = {"stream_id": stream_id, "user_id": user_id, "username": principal.username}
                    self.presence.joined(state, payload)
                    self.counts.changed(state)
        return state

    def leave(self, sock: Socket, conn: ConnState, principal: Principal, stream_id: str, part: Part) -> None:
        """Remove ``part`` of this connection from the stream (a no-op if it is not there)."""
        member = conn.streams.get(stream_id)
        if member is None:
            return
        app_id, user_id = principal.app_id, principal.user_id
        state = self.live.get(app_id, stream_id)
        was_in_stream = member.in_stream
        if part == "chat" and member.chat:
            member.chat = False
            sock.leave(chat_room(app_id, stream_id))
            state.remove_chat_connection(user_id)
            if self.cluster is not None and user_id not in state.chat_users:
                self.cluster.presence(state, "c", user_id, principal.username, arrived=False)
        elif part == "subscribed" and member.subscribed:
            member.subscribed = False
        elif part == "analytics" and member.analytics:
            member.analytics = False
            sock.leave(analytics_room(app_id, stream_id))
            state.analytics_subscribers = max(state.analytics_subscribers - 1, 0)
        if was_in_stream and not member.in_stream:
            room = stream_room(app_id, stream_id)
            sock.leave(room)
            if state.remove_viewer_connection(user_id, self.mono()):
                if self.cluster is not None:
                    self.cluster.presence(state, "v", user_id, principal.username, arrived=False)
                else:
                    payload = {"stream_id": stream_id, "user_id": user_id, "username": principal.username}
                    self.presence.left(state, payload)
                    self.counts.changed(state)
        if self.cluster is not None and user_id not in state.viewers and user_id not in state.chat_users:
            state.names.pop(user_id, None)
        if not (member.in_stream or member.analytics):
            del conn.streams[stream_id]
        if state.is_empty():
            state.idle_since = self.mono()

    def leave_stream(self, sock: Socket, conn: ConnState, principal: Principal, stream_id: str) -> None:
        """Take this connection entirely out of one stream."""
        for part in PARTS:
            self.leave(sock, conn, principal, stream_id, part)

    def leave_all(self, sock: Socket, conn: ConnState) -> None:
        """Take this connection out of every stream (on disconnect)."""
        principal = conn.principal
        if principal is None:
            return
        for stream_id in list(conn.streams):
            self.leave_stream(sock, conn, principal, stream_id)

    def evict(self, app_id: str, stream_id: str, user_id: str) -> None:
        """Take every connection of ``user_id`` out of the stream (after a ban)."""
        for sock in self.nsp.room_members(user_room(app_id, user_id)):
            conn = conn_of(sock)
            if conn.principal is not None:
                self.leave_stream(sock, conn, conn.principal, stream_id)

    # --- emits --------------------------------------------------------------------------------

    def emit_to_stream(self, app_id: str, stream_id: str, event: str, payload: Mapping[str, object]) -> int:
        """Send to everybody in the stream: chat members and subscribers."""
        return self.nsp.emit(event, payload, to=stream_room(app_id, stream_id))

    def now_iso(self) -> str:
        return iso_utc(self.wall())

    def _emit_presence(self, state: StreamState, event: str, payload: Mapping[str, object]) -> None:
        # droppable: a viewer whose socket is backed up can miss a presence notice, not a message.
        # In a cluster every node announces to its own clients (local=True), paced with its count
        # updates: the other nodes learn the arrivals from the "count" notice (cluster_presence).
        room = stream_room(state.app_id, state.stream_id)
        self.nsp.emit(event, payload, to=room, droppable=True, local=self.cluster is not None)

    def _emit_count(self, state: StreamState, count: int) -> None:
        payload = {"stream_id": state.stream_id, "count": count, "timestamp": self.now_iso()}
        # In a cluster every node paces the updates of its own clients (local=True): each client
        # still gets at most one per second, whichever nodes the changes came from.
        room = stream_room(state.app_id, state.stream_id)
        self.nsp.emit("viewer.count.update", payload, to=room, local=self.cluster is not None)

    # --- cluster ------------------------------------------------------------------------------

    def attach_cluster(self, cluster: ClusterState) -> None:
        """Run as one node of a cluster: shared presence and state in ``cluster``, notices over the adapter."""
        self.cluster = cluster
        adapter = self.nsp.adapter
        adapter.on_server_message = self._on_node_message
        adapter.on_request = self._on_node_request
        # Every committed moderation change goes to the other nodes before the action is acked.
        self.store.add_listener(self._publish_change)

    async def _publish_change(self, change: Change) -> None:
        """Hand a committed change to every other node and wait (briefly) until they have applied it.

        A request rather than a notice: when the moderator's ack goes out, the ban or mute is
        already enforced on every node that answered, and a banned user is already evicted there.
        A node that does not answer within MOD_PROPAGATION_TIMEOUT still gets it (the request
        reached it through Redis) or reloads everything when its Redis link comes back.
        """
        await self.nsp.adapter.request(None, {"t": "mod", "change": change.as_dict()}, MOD_PROPAGATION_TIMEOUT)

    def local_presence(self) -> Iterator[tuple[StreamState, Kind, dict[str, str]]]:
        """This node's viewers and chat members of every stream (what a resync re-asserts)."""
        for state in list(self.live.streams.values()):
            yield state, "v", {u: state.names.get(u, u) for u in state.viewers}
            yield state, "c", {u: state.names.get(u, u) for u in state.chat_users}

    def cluster_presence(self, state: StreamState, kind: Kind, result: PresenceResult) -> None:
        """A presence change of this node reached Redis: announce what changed cluster-wide, here
        and (through one notice to the nodes with members in the stream) on the other nodes."""
        if kind != "v":
            return
        room = stream_room(state.app_id, state.stream_id)
        changes = [[change.user_id, change.username, change.delta] for change in result.transitions]
        notice = {"t": "count", "a": state.app_id, "s": state.stream_id, "n": result.count, "v": result.version}
        if changes:
            notice["j"] = changes
        self.nsp.adapter.server_publish(room, notice)
        self._announce_viewers(state, result.count, result.version, changes)

    def cluster_reaped(self, app_id: str, stream_id: str, kind: Kind, result: PresenceResult) -> None:
        """A dead node's users left a stream: announce it as if they had left here."""
        self.cluster_presence(self.live.get(app_id, stream_id), kind, result)

    def _announce_viewers(self, state: StreamState, count: int, version: int, changes: list[list[Any]]) -> None:
        """A cluster-wide viewer change: the new count (unless a newer one came first) and the
        viewers who arrived or left, sized by ``count`` for the presence limit."""
        if version > state.cluster_version or state.cluster_viewers is None:
            state.cluster_version = version
            state.cluster_viewers = count
        # The count is set before the arrivals are queued: a presence batch sent at once sends the
        # count with it, in the same loop turn.
        for user_id, username, delta in changes:
            payload = {"stream_id": state.stream_id, "user_id": str(user_id), "username": str(username)}
            if delta > 0:
                self.presence.joined(state, payload, count)
            else:
                self.presence.left(state, payload, count)
        self.counts.changed(state)

    def _on_node_message(self, message: object) -> None:
        """A notice from another node (see attach_cluster)."""
        if not isinstance(message, dict):
            return
        kind = message.get("t")
        if kind == "count":
            state = self.live.peek(str(message["a"]), str(message["s"]))
            if state is None:
                return
            changes = message.get("j") or []
            if not isinstance(changes, list) or not all(isinstance(c, list) and len(c) == 3 for c in changes):
                logger.warning("ignoring malformed viewer changes from another node")
                changes = []
            self._announce_viewers(state, int(message["n"]), int(message["v"]), changes)

    def _on_node_request(self, message: object) -> object:
        """A request from another node: the highest rank a user holds here in a stream, or a
        committed moderation change to apply (a ban also evicts the user's connections here)."""
        if not isinstance(message, dict):
            return None
        kind = message.get("t")
        if kind == "rank":
            return int(self.user_rank(str(message["a"]), str(message["s"]), str(message["u"])))
        if kind == "mod":
            try:
                change = Change.from_dict(message.get("change"))
            except ValueError:
                logger.warning("ignoring a malformed moderation change from another node")
                return False
            self.store.apply(change)
            if change.kind is ChangeKind.BAN and change.user_id is not None:
                self.evict(change.app_id, change.stream_id, change.user_id)
            return True
        return None

    async def cluster_user_rank(self, app_id: str, stream_id: str, user_id: str) -> Rank:
        """:meth:`user_rank` over every node's connections of the user."""
        rank = self.user_rank(app_id, stream_id, user_id)
        if self.cluster is None:
            return rank
        question = {"t": "rank", "a": app_id, "s": stream_id, "u": user_id}
        for reply in await self.nsp.adapter.request(user_room(app_id, user_id), question, RANK_REQUEST_TIMEOUT):
            if isinstance(reply, int) and Rank.VIEWER <= reply <= Rank.ADMIN:
                rank = max(rank, Rank(reply))
        return rank


