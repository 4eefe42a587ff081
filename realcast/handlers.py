"""Socket.IO event handlers: validate -> authorize -> decide -> emit.

Layer: application (realcast); imports engineio_min's package root and realcast's modules.

The handlers here are plain functions: they run inline, in packet order, and never await (state
is in memory). Moderation handlers (``moderation.py``) are coroutines, because an action is
acknowledged only after the moderation store committed it; they run as tasks.

Every handler is wrapped by :func:`guarded`, the one place where an :class:`AppError` becomes a
wire payload: the ``error`` event ``{type, message, retry_after?}`` and, for clients
that passed an ack, ``{ok: false, error: {...}}`` as the ack's argument. Successful calls
answer the ack with ``{ok: true, ...}``.

engineio_min does not tell a handler whether the client asked for an ack, so the ``error`` event
is sent in both cases (the seed's clients listen for it); see :func:`refuse`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Final

from redis.exceptions import RedisError

from engineio_min import ConnectRefused, Socket, ack_requested

from .auth import Principal, Rank
from .connection import ConnState, chat_room, conn_of, stream_room
from .errors import (
    AppError,
    AuthenticationFailed,
    InvalidRequest,
    PermissionDenied,
    RateLimitExceeded,
    ServiceUnavailable,
)
from .history import ChatMessage
from .hub import Hub
from .ids import iso_utc
from .live import StreamState
from .logs import LogThrottle
from .models import check_identity, parse_authenticate, parse_chat_message, parse_reaction, parse_stream
from .ratelimit import Action

__all__ = ["EventFn", "guarded", "refuse", "register_core"]

logger = logging.getLogger("realcast.handlers")
# Anyone can open connections and send bad tokens: these lines are rate-limited (logs.py).
connection_log = LogThrottle(logging.getLogger("realcast.connections"), burst=20)
auth_log = LogThrottle(logging.getLogger("realcast.auth"), burst=10)

# After this many failed `authenticate` attempts an unauthenticated connection is dropped.
MAX_AUTH_FAILURES: Final = 5
# Seconds between the `41` that ends an unauthenticated connection and the close of its
# transport: a well-behaved client closes it itself on the `41`; one that ignores it (and
# keeps answering pings) must not keep the connection.
SESSION_END_GRACE: Final = 1.0
RECENT_MESSAGES: Final = 50  # chat:joined history, per the spec
TYPING_INTERVAL: Final = 1.0  # at most one chat:typing per user per second

Result = dict[str, object]
# What an event function returns: its ack fields now, or an awaitable of them (a moderation
# handler awaits its database commit; in a cluster, reads of shared state await Redis).
Answer = Result | Awaitable[Result | None] | None
EventFn = Callable[[Hub, Socket, ConnState, Principal, object], Answer]


def refuse(sock: Socket, error: AppError, event: str = "error") -> Result:
    """Tell the client why its event was refused; returns the ack answer."""
    payload = error.as_payload()
    # The seed's clients listen for `error`; a client that passed an ack hears it there instead.
    if not ack_requested():
        sock.emit(event, payload)
    return {"ok": False, "error": payload}


def _answer(result: Result | None) -> Result:
    return {"ok": True, **result} if result else {"ok": True}


async def _finish(hub: Hub, sock: Socket, event: str, pending: Awaitable[Result | None]) -> Result:
    """The rest of a coroutine handler: the ack is answered only once it has returned."""
    try:
        result = await pending
    except AppError as err:
        return refuse(sock, hub.counters.refused(err))
    except Exception:  # a bug: log it, keep the connection, answer the ack
        logger.exception("handler for %r failed", event)
        return refuse(sock, hub.counters.refused(InvalidRequest("internal error")))
    return _answer(result)


def guarded(hub: Hub, event: str, fn: EventFn) -> Callable[..., Result | Awaitable[Result]]:
    """Wrap an event handler: require authentication, map errors, shape the ack.

    A handler that returns a coroutine gets one back: engineio_min runs it as a task (which sees
    this event's ``ack_requested()``) and answers the ack with its result.
    """

    def handle(sock: Socket, *args: Any) -> Result | Awaitable[Result]:
        conn = conn_of(sock)
        principal = conn.principal
        if principal is None:
            return refuse(sock, hub.counters.refused(AuthenticationFailed("authenticate first")))
        try:
            result = fn(hub, sock, conn, principal, args[0] if args else None)
        except AppError as err:
            return refuse(sock, hub.counters.refused(err))
        except Exception:  # a bug: log it, keep the connection, answer the ack
            logger.exception("handler for %r failed", event)
            return refuse(sock, hub.counters.refused(InvalidRequest("internal error")))
        if result is None or type(result) is dict:  # the common, synchronous case
            return _answer(result)
        assert inspect.isawaitable(result)
        return _finish(hub, sock, event, result)

    return handle


def ensure_not_banned(hub: Hub, principal: Principal, stream_id: str) -> None:
    """Raise PermissionDenied if the user is banned from the stream."""
    if hub.store.get_ban(principal.app_id, stream_id, principal.user_id) is not None:
        raise PermissionDenied("you are banned from this stream")


def ensure_can_send(hub: Hub, principal: Principal, stream_id: str) -> None:
    """Raise PermissionDenied if the user is banned from, or muted in, the stream."""
    ensure_not_banned(hub, principal, stream_id)
    if hub.store.get_mute(principal.app_id, stream_id, principal.user_id) is not None:
        raise PermissionDenied("you are muted in this stream")


def hit_limit(conn: ConnState, action: Action) -> None:
    """Count one ``action`` against the connection's limits, or raise RateLimitExceeded."""
    assert conn.limiter is not None  # set together with the principal
    wait = conn.limiter.hit(action)
    if wait > 0.0:
        raise RateLimitExceeded(wait)


# --- connection lifecycle and authentication -------------------------------------------------


def _identity(principal: Principal) -> Result:
    return {"user_id": principal.user_id, "username": principal.username, "app_id": principal.app_id}


def _client_fields(sock: Socket) -> Result:
    return {"sid": sock.sid, "transport": sock.engine.transport_name, "remote_addr": sock.remote_addr}


def _log_auth_failure(hub: Hub, sock: Socket, payload: object, reason: str, during: str) -> None:
    """One rate-limited line per failed authentication: the reason, never the token."""
    app_id = payload.get("app_id") if isinstance(payload, dict) else None
    auth_log.log(
        "authentication failure",
        logging.INFO,
        "authentication failed",
        event="auth_failed",
        reason=reason,
        during=during,
        # For the operator only (clients get the same answer either way): a typo in app_id?
        app_id=app_id if isinstance(app_id, str) else None,
        known_app=isinstance(app_id, str) and hub.verifier.app(app_id) is not None,
        **_client_fields(sock),
    )


def _log_connected(sock: Socket, principal: Principal | None) -> None:
    if not connection_log.enabled_for(logging.DEBUG):
        return  # the common case: no fields built per connection
    connection_log.log(
        "connection",
        logging.DEBUG,
        "connected",
        event="connected",
        app_id=None if principal is None else principal.app_id,
        user_id=None if principal is None else principal.user_id,
        **_client_fields(sock),
    )


def _end_session(sock: Socket) -> None:
    """Disconnect ``sock`` (``41``), then close its Engine.IO connection after a short grace."""
    sock.disconnect()
    asyncio.get_running_loop().call_later(SESSION_END_GRACE, sock.engine.close)


def _auth_expired(sock: Socket) -> None:
    conn = conn_of(sock)
    conn.auth_timer = None
    if sock.connected and conn.principal is None:
        sock.emit("unauthorized", {"message": "authentication timeout"})
        _end_session(sock)


def on_connect(hub: Hub, sock: Socket, auth: dict[str, Any]) -> None:
    """Handshake: authenticate now if the client sent ``auth``, else start the 10 s timer."""
    conn = conn_of(sock)
    if auth.get("token") is None and auth.get("app_id") is None:
        loop = asyncio.get_running_loop()
        conn.auth_timer = loop.call_later(hub.config.auth_timeout, _auth_expired, sock)
        _log_connected(sock, None)
        return
    try:
        request = parse_authenticate(auth)
        principal = hub.verifier.verify(request.token, request.app_id)
    except AppError as err:
        hub.counters.refused(err)
        _log_auth_failure(hub, sock, auth, err.message, "handshake")
        raise ConnectRefused(err.message, {"type": "authentication_failed", "message": err.message}) from None
    hub.sign_in(sock, conn, principal)
    # The token has served its purpose; don't keep it (or its dict) for the connection's life.
    sock.auth = {}
    sock.emit("authenticated", _identity(principal))  # delivered right after the CONNECT reply
    _log_connected(sock, principal)


def on_disconnect(hub: Hub, sock: Socket, reason: str) -> None:
    """Leave every stream (viewer.left, counts) and drop timers."""
    conn = conn_of(sock)
    if conn.auth_timer is not None:
        conn.auth_timer.cancel()
        conn.auth_timer = None
    hub.leave_all(sock, conn)
    principal = conn.principal
    if not connection_log.enabled_for(logging.DEBUG):
        return
    connection_log.log(
        "connection",
        logging.DEBUG,
        "disconnected",
        event="disconnected",
        reason=reason,
        app_id=None if principal is None else principal.app_id,
        user_id=None if principal is None else principal.user_id,
        **_client_fields(sock),
    )


def authenticate(hub: Hub, sock: Socket, payload: object) -> Result:
    """``authenticate {token, app_id}`` -> ``authenticated`` or ``unauthorized``.

    An authenticated connection may authenticate again to refresh its token, as the same user
    of the same app only.
    """
    conn = conn_of(sock)
    try:
        request = parse_authenticate(payload)
        principal = hub.verifier.verify(request.token, request.app_id)
        current = conn.principal
        if current is not None and (current.app_id, current.user_id) != (principal.app_id, principal.user_id):
            raise AuthenticationFailed("already authenticated as another user")
    except AppError as err:
        hub.counters.refused(err)
        _log_auth_failure(hub, sock, payload, err.message, "authenticate")
        conn.auth_failures += 1
        sock.emit("unauthorized", {"message": err.message})
        if conn.principal is None and conn.auth_failures >= MAX_AUTH_FAILURES:
            _end_session(sock)
        return {"ok": False, "error": err.as_payload()}
    hub.sign_in(sock, conn, principal)
    identity = _identity(principal)
    sock.emit("authenticated", identity)
    return {"ok": True, **identity}


# --- chat --------------------------------------------------------------------------------------


def chat_join(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Answer:
    """``chat:join`` -> ``chat:joined {stream_id, online_users, recent_messages}``."""
    stream_id = parse_stream(payload).stream_id
    check_identity(payload, principal)
    ensure_not_banned(hub, principal, stream_id)
    state = hub.enter(sock, conn, principal, stream_id, "chat")
    if hub.cluster is not None:
        return _chat_joined_cluster(hub, sock, principal, state)
    return _chat_joined(
        hub, sock, principal, stream_id, len(state.chat_users),
        [m.as_payload() for m in state.history.recent(RECENT_MESSAGES)],
    )


def _chat_joined(
    hub: Hub, sock: Socket, principal: Principal, stream_id: str, online: int, recent: list[dict[str, object]]
) -> Result:
    slow = hub.store.get_slow_mode(principal.app_id, stream_id)
    joined: Result = {
        "stream_id": stream_id,
        "online_users": online,
        "recent_messages": recent,
        "slow_mode": {"enabled": slow is not None, "interval": 0 if slow is None else slow.interval},
    }
    sock.emit("chat:joined", joined)
    return joined


async def _chat_joined_cluster(hub: Hub, sock: Socket, principal: Principal, state: StreamState) -> Result:
    """``chat:joined`` with the cluster's chat members and history (read after this join reached Redis)."""
    assert hub.cluster is not None
    try:
        # Queued in the same turn: one pipeline, one round trip.
        online, recent = await asyncio.gather(
            hub.cluster.chat_members(state.app_id, state.stream_id),
            hub.cluster.recent(state.app_id, state.stream_id, RECENT_MESSAGES),
        )
    except (ConnectionError, RedisError):  # Redis is away: what this node knows, and no history
        online, recent = len(state.chat_users), []
    return _chat_joined(hub, sock, principal, state.stream_id, online, recent)


def chat_leave(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Result:
    """``chat:leave``: stop receiving the chat (still a viewer if subscribed)."""
    stream_id = parse_stream(payload).stream_id
    check_identity(payload, principal)
    hub.leave(sock, conn, principal, stream_id, "chat")
    return {"stream_id": stream_id}


def _slow_mode_key(hub: Hub, principal: Principal, stream_id: str) -> tuple[str, str, str] | None:
    """The user's slow-mode key while slow mode binds them (None: it does not); raises
    RateLimitExceeded while they must wait.

    Moderators, broadcasters and admins are exempt. Nothing is recorded while slow mode is off: a
    timestamp per chatting user would be kept for an hour (housekeeping) for nothing.
    """
    slow = hub.store.get_slow_mode(principal.app_id, stream_id)
    if slow is None or principal.rank_in(stream_id) >= Rank.MODERATOR:
        return None
    key = (principal.app_id, stream_id, principal.user_id)
    wait = hub.slow_mode.wait(key, slow.interval)
    if wait > 0.0:
        raise RateLimitExceeded(wait, f"slow mode: one message every {slow.interval} s")
    return key


def chat_message(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Answer:
    """``chat:message`` -> ``chat:message {message_id, ...}`` to the whole chat, sender included."""
    request = parse_chat_message(payload)
    check_identity(payload, principal)
    stream_id = request.stream_id
    ensure_can_send(hub, principal, stream_id)
    if hub.cluster is not None:
        slow = hub.store.get_slow_mode(principal.app_id, stream_id)
        if slow is not None and principal.rank_in(stream_id) < Rank.MODERATOR:
            return _chat_message_slow_cluster(hub, sock, conn, principal, stream_id, request.message, slow.interval)
        hit_limit(conn, Action.CHAT)
        return _send_chat(hub, sock, principal, stream_id, request.message)
    slow_key = _slow_mode_key(hub, principal, stream_id)
    hit_limit(conn, Action.CHAT)
    if slow_key is not None:
        hub.slow_mode.record(slow_key)
    return _send_chat(hub, sock, principal, stream_id, request.message)


async def _chat_message_slow_cluster(
    hub: Hub, sock: Socket, conn: ConnState, principal: Principal, stream_id: str, text: str, interval: int
) -> Result:
    """Slow mode over the cluster: one message per interval per user, whichever nodes they write from."""
    cluster = hub.cluster
    assert cluster is not None
    try:
        wait = await cluster.slow_mode_wait(principal.app_id, stream_id, principal.user_id, interval)
    except (ConnectionError, RedisError):
        raise ServiceUnavailable("chat is unavailable in slow mode while the cluster is unreachable") from None
    if wait > 0.0:
        raise RateLimitExceeded(wait, f"slow mode: one message every {interval} s")
    try:
        hit_limit(conn, Action.CHAT)
    except RateLimitExceeded:
        cluster.slow_mode_release(principal.app_id, stream_id, principal.user_id)
        raise
    if not sock.connected:
        return {}
    answer = _send_chat(hub, sock, principal, stream_id, text)
    done = await answer if isinstance(answer, Awaitable) else answer
    return done or {}


def _send_chat(hub: Hub, sock: Socket, principal: Principal, stream_id: str, text: str) -> Answer:
    now = hub.wall()
    message = ChatMessage(
        message_id=hub.ids.new_id(),
        stream_id=stream_id,
        user_id=principal.user_id,
        username=principal.username,
        message=text,
        timestamp=iso_utc(now),
    )
    stored = None
    if hub.cluster is not None:
        stored = hub.cluster.remember(principal.app_id, stream_id, message)
        hub.cluster.count(principal.app_id, stream_id, "m")
    else:
        state = hub.live.get(principal.app_id, stream_id)
        state.history.append(message)
        state.analytics.count_message(hub.mono())
    body = message.as_payload()
    room = chat_room(principal.app_id, stream_id)
    hub.nsp.emit("chat:message", body, to=room)
    if room not in sock.rooms:  # "sender included" even before chat:join (buffered client emits)
        sock.emit("chat:message", body)
    result: Result = {"message_id": message.message_id, "timestamp": message.timestamp}
    return result if stored is None else _when_stored(stored, result)


async def _when_stored(stored: Awaitable[object], result: Result) -> Result:
    """In a cluster the ack waits until the message is in the shared history, so that whoever
    got the ack can at once have it deleted (on any node) or see it in ``recent_messages``."""
    try:
        await stored
    except (ConnectionError, RedisError):  # delivered, but the shared history missed it
        logger.warning("a chat message was delivered but not stored: the cluster's Redis is unreachable")
    return result


def chat_typing(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Result:
    """``chat:typing`` -> to the chat except the sender; droppable; one per user per second."""
    stream_id = parse_stream(payload).stream_id
    check_identity(payload, principal)
    ensure_can_send(hub, principal, stream_id)
    if hub.typing.hit((principal.app_id, stream_id, principal.user_id), TYPING_INTERVAL) > 0.0:
        return {"delivered": False}
    body = {"stream_id": stream_id, "user_id": principal.user_id, "username": principal.username}
    hub.nsp.emit("chat:typing", body, to=chat_room(principal.app_id, stream_id), exclude=sock, droppable=True)
    return {"delivered": True}


# --- streams, reactions, analytics -------------------------------------------------------------


def stream_subscribe(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Answer:
    """``stream:subscribe`` -> ``stream:subscribed {stream_id, status, viewers}``."""
    stream_id = parse_stream(payload).stream_id
    check_identity(payload, principal)
    ensure_not_banned(hub, principal, stream_id)
    state = hub.enter(sock, conn, principal, stream_id, "subscribed")
    if hub.cluster is not None:
        return _stream_subscribed_cluster(hub, sock, state)
    return _stream_subscribed(sock, state, state.viewer_count)


async def _stream_subscribed_cluster(hub: Hub, sock: Socket, state: StreamState) -> Result:
    """``stream:subscribed`` with the status and viewers every node sees."""
    assert hub.cluster is not None
    try:
        # Queued in the same turn: one pipeline, one round trip.
        _, viewers = await asyncio.gather(
            hub.cluster.load_status(state), hub.cluster.viewers(state.app_id, state.stream_id)
        )
    except (ConnectionError, RedisError):  # Redis is away: what this node last knew
        viewers = state.viewer_count
    return _stream_subscribed(sock, state, viewers)


def _stream_subscribed(sock: Socket, state: StreamState, viewers: int) -> Result:
    stream_id = state.stream_id
    body: Result = {
        "stream_id": stream_id,
        "status": state.status.value,
        "viewers": viewers,
        "title": state.title,
        "started_at": None if state.started_at is None else iso_utc(state.started_at),
    }
    sock.emit("stream:subscribed", body)
    return body


def stream_unsubscribe(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Result:
    """``stream:unsubscribe`` (a realcast extension): the inverse of ``stream:subscribe``."""
    stream_id = parse_stream(payload).stream_id
    hub.leave(sock, conn, principal, stream_id, "subscribed")
    return {"stream_id": stream_id}


def reaction_send(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Result:
    """``reaction:send`` -> ``reaction.sent {stream_id, emoji, user_id, x, y, timestamp}``."""
    request = parse_reaction(payload)
    check_identity(payload, principal)
    ensure_not_banned(hub, principal, request.stream_id)
    hit_limit(conn, Action.REACTION)
    body: Result = {
        "stream_id": request.stream_id,
        "emoji": request.emoji,
        "user_id": principal.user_id,
        # Where the client animates the reaction; not security-relevant randomness.
        "x": random.random(),
        "y": random.random(),
        "timestamp": hub.now_iso(),
    }
    if hub.cluster is not None:
        hub.cluster.count(principal.app_id, request.stream_id, "r")
    else:
        hub.live.get(principal.app_id, request.stream_id).analytics.count_reaction(hub.mono())
    room = stream_room(principal.app_id, request.stream_id)
    hub.nsp.emit("reaction.sent", body, to=room, droppable=True)
    if room not in sock.rooms:
        sock.emit("reaction.sent", body)
    return body


def analytics_subscribe(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Answer:
    """``analytics:subscribe`` -> ``analytics:update`` now, then every analytics interval."""
    stream_id = parse_stream(payload).stream_id
    ensure_not_banned(hub, principal, stream_id)
    state = hub.enter(sock, conn, principal, stream_id, "analytics")
    if hub.cluster is not None:
        return _analytics_now_cluster(hub, sock, state)
    body = state.analytics.snapshot(hub.mono()).as_payload(stream_id)
    sock.emit("analytics:update", body)
    return body


async def _analytics_now_cluster(hub: Hub, sock: Socket, state: StreamState) -> Result:
    assert hub.cluster is not None
    try:
        snapshot = await hub.cluster.snapshot(state.app_id, state.stream_id)
    except (ConnectionError, RedisError):
        raise ServiceUnavailable("analytics are unavailable while the cluster is unreachable") from None
    body = snapshot.as_payload(state.stream_id)
    sock.emit("analytics:update", body)
    return body


def analytics_unsubscribe(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Result:
    """``analytics:unsubscribe`` (a realcast extension)."""
    stream_id = parse_stream(payload).stream_id
    hub.leave(sock, conn, principal, stream_id, "analytics")
    return {"stream_id": stream_id}


CORE_EVENTS: Final[dict[str, EventFn]] = {
    "chat:join": chat_join,
    "chat:leave": chat_leave,
    "chat:message": chat_message,
    "chat:typing": chat_typing,
    "stream:subscribe": stream_subscribe,
    "stream:unsubscribe": stream_unsubscribe,
    "reaction:send": reaction_send,
    "analytics:subscribe": analytics_subscribe,
    "analytics:unsubscribe": analytics_unsubscribe,
}


def register_core(hub: Hub) -> None:
    """Register connection hooks, ``authenticate`` and the non-moderation events on ``hub.nsp``."""
    nsp = hub.nsp
    nsp.on_connect(lambda sock, auth: on_connect(hub, sock, auth))
    nsp.on_disconnect(lambda sock, reason: on_disconnect(hub, sock, reason))
    nsp.on("authenticate")(lambda sock, *args: authenticate(hub, sock, args[0] if args else None))
    # Bad text (a lone surrogate, cut JSON) costs the event, never the connection.
    nsp.on_invalid_event(
        lambda sock, reason: refuse(sock, hub.counters.refused(InvalidRequest("payload is not valid JSON text")))
    )
    for event, fn in CORE_EVENTS.items():
        nsp.on(event)(guarded(hub, event, fn))
