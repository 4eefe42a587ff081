"""A process-wide budget of outbound bytes buffered for clients that read too slowly.

Layer: engine (asyncio's ``call_later`` only); knows sessions only through ``Buffered``.

Each session is cut off above its own cap (``max_buffered_bytes``), but a cap alone lets
N slow clients hold N caps (20,000 clients x 1 MiB = 20 GiB). The budget bounds the sum.

Theory of operation. Nothing is counted on the write path: a session that finds bytes
still unsent when it writes (a backlog, which a client that keeps up never has) reports
itself with ``note``; that is a set insertion, once per backlogged session. While any
session is noted, a sweep runs every ``SWEEP_INTERVAL``: it asks each noted session for
its buffered bytes, forgets those that drained or closed, and, when the sum is over the
budget, cuts the sessions holding the most first (the slowest consumers: they buffer
because they do not read) until the sum fits. Over half the budget it raises
``pressed``, and droppable broadcasts then skip every backlogged session, not only those
above the soft mark, so droppable traffic goes before anyone is cut.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final, Protocol

__all__ = ["SWEEP_INTERVAL", "BufferBudget", "Buffered"]

logger = logging.getLogger("engineio_min.budget")

# Seconds between sweeps while some session has a backlog: long enough that summing the
# backlogged sessions costs nothing measurable, short enough that a burst cannot grow far.
SWEEP_INTERVAL: Final = 0.25


class Buffered(Protocol):
    """What the budget needs of a session."""

    closed: bool

    def buffered_bytes(self) -> int:
        """Bytes queued for the client and not yet taken by the kernel."""

    def cut_off(self) -> None:
        """Close the session as a slow consumer."""


class BufferBudget:
    """Bounds the bytes buffered for all sessions of a process (0: unbounded).

    Attributes:
        pressed: the last sweep found more than half the budget in use.
        cut_count: sessions cut off to keep within the budget, since start.
        last_total: buffered bytes of the noted sessions at the last sweep.
    """

    __slots__ = ("_handle", "_noted", "cut_count", "last_total", "limit", "pressed")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pressed = False
        self.cut_count = 0
        self.last_total = 0
        self._noted: dict[Buffered, None] = {}
        self._handle: asyncio.TimerHandle | None = None

    def note(self, session: Buffered) -> None:
        """``session`` has a backlog: watch it until it drains or closes."""
        if self.limit <= 0 or session in self._noted:
            return
        self._noted[session] = None
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self.sweep)

    def sweep(self) -> None:
        """Forget drained sessions; cut the largest backlogs while the sum is over the limit."""
        self._handle = None
        sizes: list[tuple[int, Buffered]] = []
        total = 0
        for session in list(self._noted):
            size = 0 if session.closed else session.buffered_bytes()
            if size:
                sizes.append((size, session))
                total += size
            else:
                del self._noted[session]
        if total > self.limit:
            sizes.sort(key=lambda item: item[0], reverse=True)
            for size, session in sizes:
                if total <= self.limit:
                    break
                logger.info("buffer budget: %d bytes buffered in all, over %d; cutting a client holding %d",
                            total, self.limit, size)
                del self._noted[session]
                total -= size
                self.cut_count += 1
                session.cut_off()
        self.last_total = total
        self.pressed = total > self.limit // 2
        if self._noted:
            self._handle = asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self.sweep)
        else:
            self.pressed = False
