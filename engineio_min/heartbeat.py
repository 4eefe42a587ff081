"""Deadlines a fixed delay away, for many sessions, on one event-loop timer.

Layer: engine; imports only the standard library.

Every session of an endpoint waits the same ``ping_interval`` before its next ping and
the same ``ping_timeout`` for the pong. With one delay per queue, deadlines are added in
the order they fall due, so a queue is a FIFO: appending is O(1), the due entries are
at its head, and one loop timer armed for the head serves them all. An entry costs a
tuple; a ``loop.call_later`` per session costs a timer handle, a libuv timer, a copied
context and a bound method (~0.5 KB per idle client, and a cancel plus a new handle on
every pong).

Cancelling drops the holder at once (``Entry.cancel``) and leaves a small husk in the queue
that is skipped when it reaches the head. Dropping the holder is what matters: a closed
session must not stay reachable from a queue for up to a ping interval (it would then
outlive its connection and, holding cycles, wait for the cyclic GC; issue 12).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["DeadlineQueue", "Entry"]

T = TypeVar("T")

# Deadlines this close to the loop's clock count as due: libuv timers have millisecond
# resolution and may fire a little early (asyncio's loops allow for their clock resolution
# the same way).
RESOLUTION = 0.001


class Entry(Generic[T]):
    """One deadline in a queue; ``holder`` is None once it fired or was cancelled."""

    __slots__ = ("deadline", "holder")

    def __init__(self, deadline: float, holder: T) -> None:
        self.deadline = deadline
        self.holder: T | None = holder

    def cancel(self) -> None:
        """Forget the holder now; the queue skips this entry when it comes due."""
        self.holder = None


class DeadlineQueue(Generic[T]):
    """Calls ``fire(holder)`` ``delay`` seconds after ``add(holder)``, unless cancelled.

    Args:
        delay: seconds from ``add`` to ``fire``, the same for every entry.
        fire: called with the holder when its entry falls due and was not cancelled.
    """

    __slots__ = ("_delay", "_entries", "_fire", "_handle", "_loop")

    def __init__(self, delay: float, fire: Callable[[T], None]) -> None:
        self._delay = delay
        self._fire = fire
        self._entries: deque[Entry[T]] = deque()
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, holder: T) -> Entry[T]:
        """Schedule ``holder``; keep the returned entry to cancel it."""
        loop = self._loop
        # Not asyncio.get_running_loop() every time: on Python 3.11 it makes a getpid() system
        # call, and this runs on every connect and every pong.
        if loop is None or loop.is_closed():
            # Entries of a closed loop (tests run one loop after another) can never fire.
            loop = asyncio.get_running_loop()
            self._entries.clear()
            self._handle = None
            self._loop = loop
        entry = Entry(loop.time() + self._delay, holder)
        self._entries.append(entry)
        if self._handle is None:
            self._handle = loop.call_at(entry.deadline, self._run)
        return entry

    def _run(self) -> None:
        self._handle = None
        loop = self._loop
        assert loop is not None
        entries = self._entries
        due = loop.time() + RESOLUTION
        while entries and entries[0].deadline <= due:
            entry = entries.popleft()
            holder = entry.holder
            if holder is not None:
                entry.holder = None
                self._fire(holder)
        # Skip cancelled entries at the head, so no timer is armed for them alone.
        while entries and entries[0].holder is None:
            entries.popleft()
        if entries and self._handle is None:
            self._handle = loop.call_at(entries[0].deadline, self._run)
