"""Recent chat messages of one stream, for ``chat:joined`` and ``moderation:delete-message``.

Layer: application (realcast); imports only the standard library.

An insertion-ordered dict keyed by message id holds the last ``retain`` messages: appending,
evicting the oldest and deleting by id are all O(1), and ``recent(n)`` walks only the newest
``n`` entries. ``retain`` is larger than what ``chat:joined`` shows (50) so that a moderator can
still delete a message that scrolled out of the join history but is on viewers' screens.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Final

__all__ = ["ChatHistory", "ChatMessage"]

DEFAULT_RETAIN: Final = 500


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One delivered chat message, exactly as broadcast in ``chat:message``."""

    message_id: str
    stream_id: str
    user_id: str
    username: str
    message: str
    timestamp: str  # ISO-8601 UTC

    def as_payload(self) -> dict[str, object]:
        """The ``chat:message`` body."""
        return {
            "message_id": self.message_id,
            "stream_id": self.stream_id,
            "user_id": self.user_id,
            "username": self.username,
            "message": self.message,
            "timestamp": self.timestamp,
        }


class ChatHistory:
    """The last ``retain`` messages of one stream, oldest first."""

    __slots__ = ("_messages", "_retain")

    def __init__(self, retain: int = DEFAULT_RETAIN) -> None:
        if retain < 1:
            raise ValueError("retain must be positive")
        self._retain = retain
        self._messages: dict[str, ChatMessage] = {}

    def __len__(self) -> int:
        return len(self._messages)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._messages

    def append(self, message: ChatMessage) -> None:
        """Add the newest message, evicting the oldest beyond ``retain``."""
        self._messages[message.message_id] = message
        if len(self._messages) > self._retain:
            del self._messages[next(iter(self._messages))]

    def get(self, message_id: str) -> ChatMessage | None:
        """The message with this id, if it is still retained and not deleted."""
        return self._messages.get(message_id)

    def delete(self, message_id: str) -> ChatMessage | None:
        """Remove a message; None if it is unknown (never sent, deleted, or evicted)."""
        return self._messages.pop(message_id, None)

    def recent(self, n: int) -> list[ChatMessage]:
        """The newest ``n`` messages that are not deleted, oldest first."""
        newest_first = list(islice(reversed(self._messages.values()), n))
        newest_first.reverse()
        return newest_first
