"""Moderation events: ban, unban, mute, unmute, delete-message, slow-mode.

Layer: application (realcast); imports engineio_min's package root (typing) and realcast's
modules.

Rules, checked in this order after payload validation:

1. the actor must rank at least moderator in the stream (stream moderator, app-wide moderator,
   the stream's broadcaster, or an admin), else ``permission_denied``;
2. the action counts against the connection's moderation limit (20/min by default);
3. nobody acts on themselves, nor on a user of equal or higher rank (the target's rank is the
   highest over their open connections; an offline user ranks as a viewer), else
   ``permission_denied``. Deleting one's own message is allowed.

Bans, mutes and slow mode are committed to the moderation store (SQLite, or PostgreSQL in a
cluster) before anything is announced or acknowledged, so those handlers are coroutines; when
the store cannot commit, the action is refused with ``service_unavailable`` and nothing happens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from redis.exceptions import RedisError

from engineio_min import Socket

from .audit import AuditTrail
from .auth import Principal, Rank
from .connection import ConnState, chat_room, stream_room, user_room
from .counters import count_completed
from .errors import InvalidRequest, PermissionDenied, ServiceUnavailable
from .handlers import EventFn, Result, guarded, hit_limit
from .hub import Hub
from .ids import iso_utc
from .models import (
    ModerationRequest,
    check_identity,
    parse_ban,
    parse_delete_message,
    parse_mute,
    parse_slow_mode,
    parse_target,
)
from .ratelimit import Action

__all__ = ["MODERATION_EVENTS", "register_moderation"]


def _authorize(conn: ConnState, principal: Principal, stream_id: str, payload: object) -> Rank:
    check_identity(payload, principal)
    rank = principal.rank_in(stream_id)
    if rank < Rank.MODERATOR:
        raise PermissionDenied("only moderators, broadcasters and admins can moderate")
    hit_limit(conn, Action.MODERATION)
    return rank


async def _check_target(hub: Hub, principal: Principal, rank: Rank, stream_id: str, target: str) -> None:
    if target == principal.user_id:
        raise PermissionDenied("you cannot moderate yourself")
    # In a cluster the target's connections on every node count (a question to the other nodes).
    if await hub.cluster_user_rank(principal.app_id, stream_id, target) >= rank:
        raise PermissionDenied("you cannot moderate a user of equal or higher rank")


async def _authorize_on_target(
    hub: Hub, conn: ConnState, principal: Principal, request: ModerationRequest, payload: object
) -> None:
    """Rules 1-3 for an action on ``request.target_user_id`` (see the module docstring)."""
    rank = _authorize(conn, principal, request.stream_id, payload)
    await _check_target(hub, principal, rank, request.stream_id, request.target_user_id)


def _announce(hub: Hub, principal: Principal, stream_id: str, target: str, event: str, body: Result) -> None:
    """To everyone in the stream, and to the target's own connections wherever they are."""
    rooms = (stream_room(principal.app_id, stream_id), user_room(principal.app_id, target))
    hub.nsp.emit(event, body, to=rooms)


async def _lift(
    hub: Hub,
    conn: ConnState,
    principal: Principal,
    payload: object,
    lift: Callable[[str, str, str], Awaitable[bool]],
    refusal: str,
    event: str,
) -> Result:
    """Unban or unmute: ``lift`` the target, ``invalid_request`` (``refusal``) if nothing was lifted."""
    request = parse_target(payload)
    await _authorize_on_target(hub, conn, principal, request, payload)
    if not await lift(principal.app_id, request.stream_id, request.target_user_id):
        raise InvalidRequest(refusal)
    body: Result = {"stream_id": request.stream_id, "user_id": request.target_user_id}
    _announce(hub, principal, request.stream_id, request.target_user_id, event, body)
    return body


def _expiry(expires_at: float | None) -> str | None:
    return None if expires_at is None else iso_utc(expires_at)


async def ban(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Result:
    """``moderation:ban`` -> ``user.banned``, then the user's connections leave the stream."""
    request = parse_ban(payload)
    await _authorize_on_target(hub, conn, principal, request, payload)
    record = await hub.store.ban(
        principal.app_id,
        request.stream_id,
        request.target_user_id,
        reason=request.reason,
        duration=request.duration,
        moderator_id=principal.user_id,
    )
    body: Result = {
        "stream_id": request.stream_id,
        "user_id": request.target_user_id,
        "reason": request.reason,
        "duration": request.duration,
        "expires_at": _expiry(record.expires_at),
    }
    _announce(hub, principal, request.stream_id, request.target_user_id, "user.banned", body)
    hub.evict(principal.app_id, request.stream_id, request.target_user_id)
    return body


async def unban(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Result:
    """``moderation:unban`` -> ``user.unbanned``; ``invalid_request`` if not banned."""
    return await _lift(hub, conn, principal, payload, hub.store.unban, "user is not banned", "user.unbanned")


async def mute(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Result:
    """``moderation:mute`` -> ``user.muted``; the user can still read but not send."""
    request = parse_mute(payload)
    await _authorize_on_target(hub, conn, principal, request, payload)
    record = await hub.store.mute(
        principal.app_id,
        request.stream_id,
        request.target_user_id,
        duration=request.duration,
        moderator_id=principal.user_id,
    )
    body: Result = {
        "stream_id": request.stream_id,
        "user_id": request.target_user_id,
        "duration": request.duration,
        "expires_at": _expiry(record.expires_at),
    }
    _announce(hub, principal, request.stream_id, request.target_user_id, "user.muted", body)
    return body


async def unmute(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Result:
    """``moderation:unmute`` -> ``user.unmuted``; ``invalid_request`` if not muted."""
    return await _lift(hub, conn, principal, payload, hub.store.unmute, "user is not muted", "user.unmuted")


async def delete_message(
    hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object
) -> Result:
    """``moderation:delete-message`` -> ``chat.message.deleted`` (and ``chat:message.deleted``).

    In a cluster the message is looked up in the shared history: it may have been sent on any node.
    """
    request = parse_delete_message(payload)
    rank = _authorize(conn, principal, request.stream_id, payload)
    app_id, stream_id, message_id = principal.app_id, request.stream_id, request.message_id
    if hub.cluster is not None:
        try:
            found = await hub.cluster.message(app_id, stream_id, message_id)
            author = None if found is None else str(found["user_id"])
        except (ConnectionError, RedisError):
            raise ServiceUnavailable("chat history is unreachable, please retry") from None
    else:
        state = hub.live.peek(app_id, stream_id)
        message = None if state is None else state.history.get(message_id)
        author = None if message is None else message.user_id
    if author is None:
        raise InvalidRequest("unknown message_id")
    if author != principal.user_id:
        await _check_target(hub, principal, rank, stream_id, author)
    if hub.cluster is not None:
        try:
            if not await hub.cluster.forget_message(app_id, stream_id, message_id):
                raise InvalidRequest("unknown message_id")  # deleted meanwhile by someone else
        except (ConnectionError, RedisError):
            raise ServiceUnavailable("chat history is unreachable, please retry") from None
    else:
        state = hub.live.peek(app_id, stream_id)
        assert state is not None
        state.history.delete(message_id)
    body: Result = {"stream_id": request.stream_id, "message_id": request.message_id}
    room = chat_room(principal.app_id, request.stream_id)
    hub.nsp.emit("chat.message.deleted", body, to=room)
    hub.nsp.emit("chat:message.deleted", body, to=room)  # the seed's event-summary spelling
    return body


async def slow_mode(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Result:
    """``moderation:slow-mode`` -> ``chat.slow-mode`` (and ``chat:slow-mode``)."""
    request = parse_slow_mode(payload)
    _authorize(conn, principal, request.stream_id, payload)
    await hub.store.set_slow_mode(principal.app_id, request.stream_id, request.interval if request.enabled else None)
    body: Result = {"stream_id": request.stream_id, "enabled": request.enabled, "interval": request.interval}
    room = chat_room(principal.app_id, request.stream_id)
    hub.nsp.emit("chat.slow-mode", body, to=room)
    hub.nsp.emit("chat:slow-mode", body, to=room)  # the seed's event-summary spelling
    return body


MODERATION_EVENTS: Final[dict[str, EventFn]] = {
    "moderation:ban": ban,
    "moderation:unban": unban,
    "moderation:mute": mute,
    "moderation:unmute": unmute,
    "moderation:delete-message": delete_message,
    "moderation:slow-mode": slow_mode,
}


def _audited(trail: AuditTrail, action: str, fn: EventFn) -> EventFn:
    """``fn``, recording in ``trail`` each action that took effect (a refusal raises before)."""

    async def run(hub: Hub, sock: Socket, conn: ConnState, principal: Principal, payload: object) -> Result:
        pending = fn(hub, sock, conn, principal, payload)
        assert pending is not None and not isinstance(pending, dict)  # every moderation action is a coroutine
        result = await pending
        assert result is not None
        trail.record(principal.app_id, principal.user_id, action, result)
        return result

    return run


def register_moderation(hub: Hub, trail: AuditTrail | None = None) -> None:
    """Register the moderation events on ``hub.nsp``; each action that takes effect goes to ``trail``."""
    for event, fn in MODERATION_EVENTS.items():
        action = event.removeprefix("moderation:")
        audited = fn if trail is None else _audited(trail, action, fn)
        hub.nsp.on(event)(guarded(hub, event, count_completed(hub.counters.moderation_actions, event, audited)))
