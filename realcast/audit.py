"""The moderation audit trail: one INFO line per action, and the latest actions for the dashboard.

Layer: application (realcast); imports the standard library and ``logs.py``.

An audit line says who did what to whom, where, and for how long::

    {"message":"moderation ban","event":"moderation","action":"ban","app_id":"app_a",
     "stream_id":"s1","moderator":"mod","target":"spammer","duration":600,"reason":"spam",...}

Only actions that took effect are recorded (a refused action is the actor's error, not an
action). Each node records the actions its own clients made; the trail is in memory and keeps
the last :data:`TRAIL_SIZE` actions of each app.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final

from .logs import log_fields

__all__ = ["TRAIL_SIZE", "AuditTrail"]

TRAIL_SIZE: Final = 50

logger = logging.getLogger("realcast.audit")

# The fields of an action's result worth keeping, besides who and where (see moderation.py).
_DETAIL_FIELDS: Final = ("duration", "reason", "expires_at", "message_id", "enabled", "interval")


class AuditTrail:
    """Records moderation actions: logs each one and keeps the latest per app.

    Args:
        wall: wall-clock seconds, for the ``at`` of each entry.
    """

    __slots__ = ("_by_app", "_wall")

    def __init__(self, wall: Callable[[], float]) -> None:
        self._wall = wall
        self._by_app: dict[str, deque[dict[str, object]]] = {}

    def record(self, app_id: str, moderator: str, action: str, result: Mapping[str, object]) -> None:
        """One action that took effect; ``result`` is what the action acknowledged.

        Args:
            action: the event without its prefix: ``ban``, ``unmute``, ``slow-mode``...
            result: the acknowledged body: ``stream_id``, ``user_id`` (the target), details.
        """
        entry: dict[str, object] = {
            "at": self._wall(),
            "action": action,
            "stream_id": result.get("stream_id"),
            "moderator": moderator,
            "target": result.get("user_id"),
        }
        entry.update((key, result[key]) for key in _DETAIL_FIELDS if key in result)
        trail = self._by_app.get(app_id)
        if trail is None:
            trail = self._by_app[app_id] = deque(maxlen=TRAIL_SIZE)
        trail.append(entry)
        fields = {k: v for k, v in entry.items() if k != "at"}
        log_fields(logger, logging.INFO, f"moderation {action}", event="moderation", app_id=app_id, **fields)

    def recent(self, app_id: str, limit: int = TRAIL_SIZE) -> list[dict[str, object]]:
        """The latest actions in ``app_id``, newest first."""
        trail = self._by_app.get(app_id)
        if not trail:
            return []
        return [dict(entry) for entry in reversed(trail)][:limit]
