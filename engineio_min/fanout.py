"""Write coalescing: one write per client per event-loop turn, shared broadcast buffers.

Layer: engine (asyncio's ``call_soon`` only).

Theory of operation. Nothing that a session sends during a loop turn is written at once:
it is appended to the session's pending list, and the session is marked dirty with the
``Flusher``; at the end of the turn (one ``call_soon``) every dirty session writes all it
is owed in one ``transport.write`` (or one outbox extension for long-polling). A kernel
write costs microseconds; a list append, tens of nanoseconds. So N messages to a client
in one turn cost one write, not N.

A broadcast to a room appends one shared ``FrameBatch`` to each member's list. Further
broadcasts to the same recipients in the same turn only append their frame to that batch
(O(1), whatever the room size), as long as it is the *open* batch. At flush time a batch's
frames are joined once, and members whose whole turn is that one batch are all written the
same bytes object.

Order. Every client must see packets in emit order. A batch stays open only while
appending to it cannot reorder anything for any member: it is closed (later broadcasts
start a new batch) when another batch is opened, when any item is queued behind it for one
of its members (a direct emit, an ack), and when room membership changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Protocol

__all__ = ["Flushable", "Flusher", "FrameBatch"]


class FrameBatch:
    """Frames (and the same packets as polling records) broadcast to one set of recipients."""

    __slots__ = ("_joined", "droppable", "frames", "key", "recipients", "texts")

    def __init__(self, key: Hashable, droppable: bool) -> None:
        self.key = key
        self.recipients = 0
        self.droppable = droppable
        self.frames: list[bytes] = []
        self.texts: list[str] = []
        self._joined: bytes | None = None

    def add(self, frame: bytes, text: str) -> None:
        self.frames.append(frame)
        self.texts.append(text)

    def joined(self) -> bytes:
        """All frames as one bytes object, built once (only called when the batch is closed)."""
        joined = self._joined
        if joined is None:
            frames = self.frames
            joined = self._joined = frames[0] if len(frames) == 1 else b"".join(frames)
        return joined


class Flushable(Protocol):
    def flush_pending(self) -> None:
        """Write everything queued this turn."""


class Flusher:
    """Runs each dirty session's flush once at the end of the loop turn."""

    __slots__ = ("_dirty", "_scheduled_on", "open_batch")

    def __init__(self) -> None:
        self._dirty: list[Flushable] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        # The one batch that broadcasts may still append to (see the module docstring).
        self.open_batch: FrameBatch | None = None

    def mark_dirty(self, session: Flushable) -> None:
        """``session`` has its first pending item of this turn."""
        self._dirty.append(session)
        loop = asyncio.get_running_loop()
        if self._scheduled_on is not loop:
            # Keyed by loop, not a flag: a loop that closed with a flush pending (tests run
            # one loop after another) must not leave us thinking one is scheduled.
            self._scheduled_on = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what every dirty session is owed; closes the open batch."""
        self._scheduled_on = None
        self.open_batch = None
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            session.flush_pending()
