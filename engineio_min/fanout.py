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

Order. Every client must see packets in emit order. A member's list refers to the open
batch "from frame k on" (the batch itself means from frame 0). When something else is
queued for that member (a direct emit, an ack), its reference is cut into a closed
``BatchSlice`` up to the current frame, the item follows, and a new open-ended slice
follows the item: the batch stays open for everyone, and this member gets later frames
after its own item. A socket that joins the batch's room gets an open-ended slice from the
current frame; one that leaves gets its reference cut. Opening another batch closes the
previous one (its members' open-ended references then simply end with its last frame),
and so do membership changes that a batch key cannot follow (multi-room or exclusion
broadcasts).

Timing. With ``Flusher.latency`` set, each loop turn that broadcast is timed from its first
queued packet (the handler of the received event emitting) to the end of its flush (the last
recipient's write): two clock reads per turn, nothing per recipient.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Sequence
from time import perf_counter
from typing import Any, Protocol

__all__ = ["BatchSlice", "Flushable", "Flusher", "FrameBatch", "LatencyHistogram", "open_reference"]


class LatencyHistogram:
    """Durations in seconds counted into buckets (``counts[i]``: at most ``bounds[i]``, the last
    one above them all) and summed: cheap enough to add to once per loop turn, read when scraped."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds


class FrameBatch:
    """Frames (and the same packets as polling records) broadcast to one set of recipients."""

    __slots__ = ("_joined", "droppable", "frames", "key", "recipients", "skipped", "texts")

    def __init__(self, key: tuple[Any, ...], droppable: bool) -> None:
        self.key = key
        self.recipients = 0
        # Droppable: recipients that skip it (slow consumers); each frame added is dropped for them.
        self.skipped = 0
        self.droppable = droppable
        self.frames: list[bytes] = []
        self.texts: list[str] = []
        self._joined: bytes | None = None

    def add(self, frame: bytes, text: str) -> None:
        self.frames.append(frame)
        self.texts.append(text)
        # A session flushed mid-turn (closing, upgrading) may have joined the frames so far;
        # that join is stale now, and the members flushed at the end of the turn need them all.
        self._joined = None

    def joined(self) -> bytes:
        """All frames as one bytes object, built once per set of frames (normally once the
        batch is closed; see ``add``)."""
        joined = self._joined
        if joined is None:
            frames = self.frames
            joined = self._joined = frames[0] if len(frames) == 1 else b"".join(frames)
        return joined


class BatchSlice:
    """Frames ``start:end`` of a batch for one member (``end`` None: to its last frame)."""

    __slots__ = ("batch", "end", "start")

    def __init__(self, batch: FrameBatch, start: int, end: int | None) -> None:
        self.batch = batch
        self.start = start
        self.end = end

    def frame_bytes(self) -> bytes:
        batch = self.batch
        end = len(batch.frames) if self.end is None else self.end
        if self.start == 0 and end == len(batch.frames):
            return batch.joined()
        return b"".join(batch.frames[self.start:end])

    def texts(self) -> list[str]:
        return self.batch.texts[self.start:self.end]


def open_reference(item: object, batch: FrameBatch) -> int | None:
    """Where ``item`` starts reading ``batch`` if it is an open-ended reference to it, else None."""
    if item is batch:
        return 0
    if type(item) is BatchSlice and item.batch is batch and item.end is None:
        return item.start
    return None


class Flushable(Protocol):
    def flush_pending(self) -> None:
        """Write everything queued this turn."""


class Flusher:
    """Runs each dirty session's flush once at the end of the loop turn."""

    __slots__ = ("_dirty", "_first", "_scheduled_on", "_turn_started", "latency", "open_batch")

    def __init__(self) -> None:
        self._dirty: list[Flushable] = []
        # Flushed before every session of the turn (see flush_first).
        self._first: list[Flushable] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        # The one batch that broadcasts may still append to (see the module docstring).
        self.open_batch: FrameBatch | None = None
        # Set it to time the turns that broadcast ("Timing" in the module docstring).
        self.latency: LatencyHistogram | None = None
        self._turn_started = 0.0

    def mark_dirty(self, session: Flushable) -> None:
        """``session`` has its first pending item of this turn."""
        self._dirty.append(session)
        scheduled = self._scheduled_on
        # Runs once per recipient per turn, so it does not ask asyncio for the running loop
        # unless a flush must be scheduled: on Python 3.11 get_running_loop() makes a getpid()
        # system call (~300 ns here, an eighth of a delivery's cost).
        if scheduled is None or scheduled.is_closed():
            self._schedule(asyncio.get_running_loop())

    def flush_first(self, item: Flushable) -> None:
        """Like ``mark_dirty``, but ``item`` is flushed before every session, whenever they were
        marked: a cluster adapter's publications leave before this node's own members are written,
        so that other nodes can fan out meanwhile."""
        self._first.append(item)
        scheduled = self._scheduled_on
        if scheduled is None or scheduled.is_closed():
            self._schedule(asyncio.get_running_loop())

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        # The loop is kept, not a flag: a loop that closed with a flush pending (tests run one
        # loop after another) must not leave us thinking one is scheduled (is_closed above).
        self._scheduled_on = loop
        loop.call_soon(self.flush)
        if self.latency is not None:
            self._turn_started = perf_counter()

    def flush(self) -> None:
        """Write what every dirty session is owed; closes the open batch."""
        # A batch still open means this turn broadcast (the membership changes that close one
        # early are rare enough not to matter to a latency figure).
        timed = self._scheduled_on is not None and self.open_batch is not None
        self._scheduled_on = None
        self.open_batch = None
        first = self._first
        if first:  # (no new list on the turns without publications)
            self._first = []
            for item in first:
                item.flush_pending()
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            session.flush_pending()
        latency = self.latency
        if timed and latency is not None:
            latency.observe(perf_counter() - self._turn_started)
