"""Per-connection state and the room names that key everything by (app_id, stream_id).

Layer: application (realcast); imports realcast's pure modules and, for typing only, the
``Socket`` of engineio_min's package root.

Room names embed the app id, and app ids cannot contain ``|`` (see ``config.APP_ID_RE``) while
stream ids cannot either (``models.STREAM_ID_RE``), so two apps can never share a room: no event
crosses apps.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .auth import Principal
from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from engineio_min import Socket

__all__ = [
    "ConnState",
    "Membership",
    "analytics_room",
    "chat_room",
    "conn_of",
    "stream_room",
    "user_room",
]

_DATA_KEY = "realcast"


def chat_room(app_id: str, stream_id: str) -> str:
    """Sockets that joined the stream's chat."""
    return f"chat|{app_id}|{stream_id}"


def stream_room(app_id: str, stream_id: str) -> str:
    """Sockets in the stream: chat members and stream subscribers (stream and viewer events)."""
    return f"stream|{app_id}|{stream_id}"


def analytics_room(app_id: str, stream_id: str) -> str:
    """Sockets that subscribed to the stream's analytics."""
    return f"analytics|{app_id}|{stream_id}"


def user_room(app_id: str, user_id: str) -> str:
    """Every authenticated socket of one user of one app (for bans)."""
    return f"user|{app_id}|{user_id}"


@dataclass(slots=True)
class Membership:
    """How one connection takes part in one stream."""

    chat: bool = False
    subscribed: bool = False
    analytics: bool = False

    @property
    def in_stream(self) -> bool:
        """Counts as a viewer connection."""
        return self.chat or self.subscribed


@dataclass(slots=True)
class ConnState:
    """What realcast keeps on ``Socket.data`` for one connection."""

    principal: Principal | None = None
    limiter: RateLimiter | None = None
    streams: dict[str, Membership] = field(default_factory=dict)
    auth_timer: asyncio.TimerHandle | None = None
    auth_failures: int = 0


def conn_of(sock: Socket) -> ConnState:
    """The connection state of ``sock``, created on first use."""
    state = sock.data.get(_DATA_KEY)
    if not isinstance(state, ConnState):
        state = sock.data[_DATA_KEY] = ConnState()
    return state
