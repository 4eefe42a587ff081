"""In-memory stream analytics: per-minute rates, peak viewers, average watch time.

Layer: application (realcast); imports only the standard library. Time is passed in.

Hot-path calls (:meth:`StreamAnalytics.count_message`, :meth:`count_reaction`,
:meth:`viewer_joined`, :meth:`viewer_left`) are O(1): an increment into one of 60 preallocated
one-second buckets, or a constant amount of arithmetic on running sums. :meth:`snapshot`, run
by the analytics ticker every few seconds, sums the 60 buckets.

Average watch time is the mean over this stream's viewer sessions, ended and ongoing. A viewer
session is the time a user is a viewer (has at least one connection in the stream). With
``E`` = total seconds of ended sessions, ``n`` of them, and ``k`` ongoing sessions whose start
times add up to ``S``, the mean at time ``t`` is ``(E + k*t - S) / (n + k)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["AnalyticsSnapshot", "SlidingCounter", "StreamAnalytics"]

WINDOW_SECONDS: Final = 60


class SlidingCounter:
    """Events in the last ``window`` seconds, in one-second buckets.

    The current, partial second counts fully, so the window spans between ``window - 1`` and
    ``window`` seconds.
    """

    __slots__ = ("_counts", "_seconds", "_window")

    def __init__(self, window: int = WINDOW_SECONDS) -> None:
        self._window = window
        self._counts = [0] * window
        self._seconds = [-1] * window  # which absolute second each bucket currently holds

    def add(self, now: float, n: int = 1) -> None:
        """Count ``n`` events at ``now``."""
        second = int(now)
        i = second % self._window
        if self._seconds[i] != second:
            self._seconds[i] = second
            self._counts[i] = 0
        self._counts[i] += n

    def total(self, now: float) -> int:
        """Events counted in the window ending at ``now``."""
        oldest = int(now) - self._window
        return sum(c for c, s in zip(self._counts, self._seconds, strict=True) if s > oldest)


@dataclass(frozen=True, slots=True)
class AnalyticsSnapshot:
    """What ``analytics:update`` carries (besides ``stream_id``)."""

    viewers: int
    peak_viewers: int
    messages_per_minute: int
    reactions_per_minute: int
    average_watch_time: float  # seconds

    def as_payload(self, stream_id: str) -> dict[str, object]:
        """The ``analytics:update`` body."""
        return {
            "stream_id": stream_id,
            "viewers": self.viewers,
            "peak_viewers": self.peak_viewers,
            "messages_per_minute": self.messages_per_minute,
            "reactions_per_minute": self.reactions_per_minute,
            "average_watch_time": self.average_watch_time,
        }


class StreamAnalytics:
    """Counters of one stream, for as long as the server keeps the stream in memory."""

    __slots__ = (
        "_ended_count",
        "_ended_seconds",
        "_messages",
        "_ongoing",
        "_ongoing_start_sum",
        "_reactions",
        "peak_viewers",
    )

    def __init__(self) -> None:
        self._messages = SlidingCounter()
        self._reactions = SlidingCounter()
        self._ongoing: dict[str, float] = {}  # user_id -> session start
        self._ongoing_start_sum = 0.0
        self._ended_seconds = 0.0
        self._ended_count = 0
        self.peak_viewers = 0

    @property
    def viewers(self) -> int:
        """Users watching now."""
        return len(self._ongoing)

    def count_message(self, now: float) -> None:
        """One chat message was sent."""
        self._messages.add(now)

    def count_reaction(self, now: float) -> None:
        """One reaction was sent."""
        self._reactions.add(now)

    def viewer_joined(self, user_id: str, now: float) -> None:
        """``user_id`` became a viewer (a second connection of a viewer is not a new session)."""
        if user_id in self._ongoing:
            return
        self._ongoing[user_id] = now
        self._ongoing_start_sum += now
        self.peak_viewers = max(self.peak_viewers, len(self._ongoing))

    def viewer_left(self, user_id: str, now: float) -> None:
        """``user_id`` stopped being a viewer; their session ends."""
        start = self._ongoing.pop(user_id, None)
        if start is None:
            return
        self._ongoing_start_sum -= start
        self._ended_seconds += max(now - start, 0.0)
        self._ended_count += 1
        if not self._ongoing:
            self._ongoing_start_sum = 0.0  # drop accumulated float error when nobody watches

    def average_watch_time(self, now: float) -> float:
        """Mean seconds watched over ended and ongoing sessions (0.0 before any session)."""
        sessions = self._ended_count + len(self._ongoing)
        if sessions == 0:
            return 0.0
        ongoing = len(self._ongoing) * now - self._ongoing_start_sum
        return max(self._ended_seconds + ongoing, 0.0) / sessions

    def snapshot(self, now: float) -> AnalyticsSnapshot:
        """Current figures; O(window)."""
        return AnalyticsSnapshot(
            viewers=len(self._ongoing),
            peak_viewers=self.peak_viewers,
            messages_per_minute=self._messages.total(now),
            reactions_per_minute=self._reactions.total(now),
            average_watch_time=round(self.average_watch_time(now), 1),
        )
