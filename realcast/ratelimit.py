"""Per-connection rate limits and per-user slow mode.

Layer: application (realcast); imports only the standard library and ``config.py``. Time comes
from an injected monotonic clock; nothing here sleeps or schedules.

The seed states limits as "N per second / N per minute". They are enforced *exactly* as
sliding windows: an event is allowed when fewer than N events were allowed in the preceding
window, so no window of that length ever holds more than N events. (A token bucket would let
a full burst plus a window's refill through, i.e. up to 2N in one window.) Each window keeps
the times of its last N allowed events in a fixed ring (``array('d')``, 8 bytes per slot),
so a check is O(1): compare with the oldest slot, overwrite it. Rings are allocated on first
use per connection and action class, so the many viewers who never chat cost nothing.
A refused event is not recorded in any window: retrying does not extend the wait.
"""

from __future__ import annotations

import enum
import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .config import RateLimits

__all__ = ["Action", "RateLimiter", "SlidingWindow", "SlowModeGate", "Window", "policy_for"]


class Action(enum.Enum):
    """Rate-limited action classes (the seed's "Rate Limiting" section)."""

    CHAT = "chat"
    REACTION = "reaction"
    MODERATION = "moderation"


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` events in any ``seconds``-long window."""

    limit: int
    seconds: float


Policy = Mapping[Action, tuple[Window, ...]]


def policy_for(limits: RateLimits) -> dict[Action, tuple[Window, ...]]:
    """The windows of each action class for one app's limits."""
    return {
        Action.CHAT: (Window(limits.chat_per_second, 1.0), Window(limits.chat_per_minute, 60.0)),
        Action.REACTION: (Window(limits.reaction_per_second, 1.0), Window(limits.reaction_per_minute, 60.0)),
        Action.MODERATION: (Window(limits.moderation_per_minute, 60.0),),
    }


class SlidingWindow:
    """The last ``limit`` allowed event times, in a ring."""

    __slots__ = ("_count", "_next", "_ring", "limit", "seconds")

    def __init__(self, window: Window) -> None:
        self.limit = window.limit
        self.seconds = window.seconds
        self._ring = array("d", bytes(8 * window.limit))
        self._next = 0  # slot written next; once the ring is full it holds the oldest time
        self._count = 0

    def wait(self, now: float) -> float:
        """Seconds until one more event fits (0.0 if it fits now)."""
        if self._count < self.limit:
            return 0.0
        wait = self._ring[self._next] + self.seconds - now
        return wait if wait > 0.0 else 0.0

    def record(self, now: float) -> None:
        """Count an allowed event at ``now``."""
        self._ring[self._next] = now
        self._next = (self._next + 1) % self.limit
        if self._count < self.limit:
            self._count += 1


class RateLimiter:
    """The limits of one connection.

    Args:
        policy: windows per action class (see :func:`policy_for`).
        clock: monotonic seconds.
    """

    __slots__ = ("_clock", "_policy", "_windows")

    def __init__(self, policy: Policy, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._windows: dict[Action, tuple[SlidingWindow, ...]] = {}

    def hit(self, action: Action) -> float:
        """Try one event of ``action``.

        Returns:
            0.0 when it is allowed (and counted), otherwise the seconds to wait before
            retrying; a refused event is not counted.
        """
        windows = self._windows.get(action)
        if windows is None:
            windows = self._windows[action] = tuple(SlidingWindow(w) for w in self._policy[action])
        now = self._clock()
        wait = max(w.wait(now) for w in windows)
        if wait > 0.0:
            return wait
        for w in windows:
            w.record(now)
        return 0.0


class SlowModeGate:
    """One message per user per interval in a stream; shared by all of a user's connections.

    Keys are opaque (the caller uses ``(app_id, stream_id, user_id)``).

    Args:
        clock: monotonic seconds.
    """

    __slots__ = ("_clock", "_last")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[object, float] = {}

    def wait(self, key: object, interval: float) -> float:
        """Seconds until ``key`` may send again under an ``interval``-second slow mode (0.0: now)."""
        last = self._last.get(key)
        if last is None:
            return 0.0
        wait = last + interval - self._clock()
        return wait if wait > 0.0 else 0.0

    def record(self, key: object) -> None:
        """``key`` sent a message now."""
        self._last[key] = self._clock()

    def hit(self, key: object, interval: float) -> float:
        """:meth:`wait`, then :meth:`record` if the wait is zero; returns the wait."""
        wait = self.wait(key, interval)
        if wait == 0.0:
            self.record(key)
        return wait

    def purge(self, max_interval: float) -> None:
        """Forget users whose last message is older than any interval in force (housekeeping)."""
        cutoff = self._clock() - max_interval
        for key in [k for k, t in self._last.items() if t <= cutoff]:
            del self._last[key]

    def __len__(self) -> int:
        return len(self._last)
