"""Live-stream state: status, viewers, chat members, history, analytics, count coalescing.

Layer: application (realcast); imports only the standard library and realcast's pure modules.
No sockets: handlers translate socket events into calls here and emit what comes back.

A *viewer* is a distinct authenticated user with at least one connection in the stream (a
connection is "in" a stream after ``chat:join`` or ``stream:subscribe``). The registry counts
connections per user, so a user with three tabs is one viewer and stops being one when the last
tab leaves. ``viewer.count.update`` is coalesced by :class:`CountCoalescer`: the first change
after a quiet interval goes out at once, later ones are folded into one update at its end. The
interval is one second, and longer for big streams (:func:`update_interval`): every update is a
socket write to every viewer, so a stream of N viewers costs N writes per update, and while a
big stream fills up its count changes every second.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from .analytics import StreamAnalytics
from .history import ChatHistory

__all__ = [
    "CountCoalescer", "Gate", "IntervalGate", "LiveRegistry", "StreamState", "StreamStatus", "Transition",
    "update_interval",
]  # fmt: skip

COUNT_UPDATE_INTERVAL: Final = 1.0  # seconds; the spec's "at most one per second per stream"
# The longest a big stream waits between two count updates (and batches of viewer.joined/left).
MAX_UPDATE_INTERVAL: Final = 10.0
# A stream nobody is in, that is not live, is forgotten after this long (its history with it).
IDLE_FORGET_AFTER: Final = 15 * 60.0

StreamKey = tuple[str, str]  # (app_id, stream_id)


class StreamStatus(enum.StrEnum):
    """What ``stream:subscribed`` and the backend API report."""

    OFFLINE = "offline"
    LIVE = "live"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Transition:
    """A status change made by the backend API; ``changed`` is False for a no-op."""

    changed: bool
    duration: float = 0.0  # seconds live, for going offline


@dataclass(slots=True)
class Gate:
    """One stream's bookkeeping for one :class:`IntervalGate`."""

    pending: bool = False  # a run is scheduled for the end of the interval
    last_at: float = float("-inf")  # monotonic time of the last run that did something


@dataclass(slots=True)
class StreamState:
    """Everything realcast keeps in memory about one stream of one app."""

    app_id: str
    stream_id: str
    history: ChatHistory
    status: StreamStatus = StreamStatus.OFFLINE
    title: str = ""
    started_at: float | None = None  # wall clock
    ended_at: float | None = None
    error: str | None = None
    analytics: StreamAnalytics = field(default_factory=StreamAnalytics)
    viewers: dict[str, int] = field(default_factory=dict)  # user_id -> connections in the stream
    chat_users: dict[str, int] = field(default_factory=dict)  # user_id -> connections in the chat
    analytics_subscribers: int = 0
    # Cluster mode: the cluster-wide viewer count (None on a single node: len(viewers) is the count),
    # the version of the presence change that set it, and the display names of this node's users.
    cluster_viewers: int | None = None
    cluster_version: int = 0
    names: dict[str, str] = field(default_factory=dict)
    idle_since: float = 0.0  # monotonic; meaningful while the stream is empty
    # CountCoalescer bookkeeping
    count_gate: Gate = field(default_factory=Gate)
    last_count_sent: int = -1
    # PresenceCoalescer bookkeeping: events held until the interval ends (None: none held)
    presence_gate: Gate = field(default_factory=Gate)
    presence_pending: list[tuple[str, Mapping[str, object]]] | None = None

    @property
    def key(self) -> StreamKey:
        return (self.app_id, self.stream_id)

    @property
    def viewer_count(self) -> int:
        return len(self.viewers) if self.cluster_viewers is None else self.cluster_viewers

    def is_empty(self) -> bool:
        return not self.viewers and not self.chat_users and self.analytics_subscribers == 0

    # --- membership ---------------------------------------------------------------------------

    def add_viewer_connection(self, user_id: str, now: float) -> bool:
        """Count one more connection of ``user_id``; True if they just became a viewer."""
        count = self.viewers.get(user_id, 0)
        self.viewers[user_id] = count + 1
        if count == 0:
            self.analytics.viewer_joined(user_id, now)
            return True
        return False

    def remove_viewer_connection(self, user_id: str, now: float) -> bool:
        """Count one connection fewer; True if ``user_id`` just stopped being a viewer."""
        count = self.viewers.get(user_id, 0)
        if count <= 1:
            if self.viewers.pop(user_id, None) is None:
                return False
            self.analytics.viewer_left(user_id, now)
            self.idle_since = now
            return True
        self.viewers[user_id] = count - 1
        return False

    def add_chat_connection(self, user_id: str) -> None:
        self.chat_users[user_id] = self.chat_users.get(user_id, 0) + 1

    def remove_chat_connection(self, user_id: str) -> None:
        count = self.chat_users.get(user_id, 0)
        if count <= 1:
            self.chat_users.pop(user_id, None)
        else:
            self.chat_users[user_id] = count - 1

    # --- lifecycle (driven by the backend API) ------------------------------------------------

    def go_live(self, title: str, now: float) -> Transition:
        """Mark the stream live; going live again only updates the title."""
        was_live = self.status is StreamStatus.LIVE
        changed = not was_live or self.title != title
        if not was_live:
            self.started_at = now
            self.ended_at = None
        self.status = StreamStatus.LIVE
        self.title = title
        self.error = None
        return Transition(changed)

    def go_offline(self, now: float) -> Transition:
        """Mark the stream offline; a no-op if it already is."""
        if self.status is StreamStatus.OFFLINE:
            return Transition(False)
        duration = 0.0 if self.started_at is None else max(now - self.started_at, 0.0)
        self.status = StreamStatus.OFFLINE
        self.ended_at = now
        self.started_at = None
        return Transition(True, duration)

    def go_error(self, error: str) -> Transition:
        """Report a stream error (the stream keeps its start time until it goes offline)."""
        self.status = StreamStatus.ERROR
        self.error = error
        return Transition(True)


class LiveRegistry:
    """All streams in memory, keyed by (app_id, stream_id)."""

    __slots__ = ("_history_retain", "streams")

    def __init__(self, history_retain: int = 500) -> None:
        self._history_retain = history_retain
        self.streams: dict[StreamKey, StreamState] = {}

    def get(self, app_id: str, stream_id: str) -> StreamState:
        """The stream's state, created (offline, empty) on first use."""
        key = (app_id, stream_id)
        state = self.streams.get(key)
        if state is None:
            state = self.streams[key] = StreamState(app_id, stream_id, ChatHistory(self._history_retain))
        return state

    def peek(self, app_id: str, stream_id: str) -> StreamState | None:
        """The stream's state if it is in memory."""
        return self.streams.get((app_id, stream_id))

    def forget_idle(self, now: float, idle_for: float = IDLE_FORGET_AFTER) -> int:
        """Drop empty, non-live streams idle for ``idle_for`` seconds; return how many."""
        stale = [
            key
            for key, s in self.streams.items()
            if s.is_empty()
            and s.status is StreamStatus.OFFLINE
            and not s.count_gate.pending
            and not s.presence_gate.pending
            and now - s.idle_since >= idle_for
        ]
        for key in stale:
            del self.streams[key]
        return len(stale)


EmitCount = Callable[[StreamState, int], None]
CallLater = Callable[[float, Callable[[], None]], object]
Interval = float | Callable[[StreamState], float]


def update_interval(viewers: int, budget: int) -> float:
    """Seconds between two count updates of a stream of ``viewers``: 1 s, or ``viewers / budget``
    when that is longer (at most ``MAX_UPDATE_INTERVAL``), so that a stream's updates cost at most
    ``budget`` deliveries per second. ``budget`` 0: always 1 s."""
    if budget <= 0 or viewers <= budget:
        return COUNT_UPDATE_INTERVAL
    return min(viewers / budget, MAX_UPDATE_INTERVAL)


class IntervalGate:
    """Runs its flushes for a stream at most once per ``interval`` per stream.

    The first request after a quiet interval runs at once; requests within the interval are
    served by one run when it ends. A run calls every flush (``add_flush``), in the order they
    were added, in the same loop turn: what they send to a stream's members reaches each of them
    in one socket write. A flush returns whether it did something: a run in which none did
    does not start a new interval.

    Args:
        gate_of: the stream's bookkeeping for this gate.
        flush: does the work for one stream (None: only those added later).
        clock: monotonic seconds.
        call_later: schedules a callback (``loop.call_later`` in production).
        interval: seconds, or a function of the stream giving them; 0 runs every request at once.
    """

    __slots__ = ("_call_later", "_clock", "_flushes", "_gate_of", "_interval")

    def __init__(
        self,
        gate_of: Callable[[StreamState], Gate],
        flush: Callable[[StreamState], bool] | None,
        clock: Callable[[], float],
        call_later: CallLater,
        interval: Interval,
    ) -> None:
        self._gate_of = gate_of
        self._flushes: list[Callable[[StreamState], bool]] = [] if flush is None else [flush]
        self._clock = clock
        self._call_later = call_later
        self._interval = interval

    def add_flush(self, flush: Callable[[StreamState], bool]) -> None:
        """Run ``flush`` too, after those already added."""
        self._flushes.append(flush)

    def request(self, state: StreamState) -> None:
        """``state`` has something to send."""
        gate = self._gate_of(state)
        if gate.pending:
            return
        interval = self._interval
        seconds = interval if isinstance(interval, float | int) else interval(state)
        wait = gate.last_at + seconds - self._clock()
        if wait <= 0:
            self._run(state)
        else:
            gate.pending = True
            self._call_later(wait, lambda: self._run(state))

    def _run(self, state: StreamState) -> None:
        gate = self._gate_of(state)
        gate.pending = False
        did = False
        for flush in self._flushes:
            did = flush(state) or did
        if did:
            gate.last_at = self._clock()


class CountCoalescer:
    """Sends ``viewer.count.update`` at most once per ``interval`` per stream.

    Args:
        emit: sends one update (``state``, ``count``).
        clock: monotonic seconds.
        call_later: schedules a callback (``loop.call_later`` in production).
        interval: seconds, or a function of the stream (see :func:`update_interval`).
        gate: a gate shared with other per-stream announcements (presence.py), which then go
            out in the same loop turn as the count; its interval applies (``interval`` unused).
    """

    __slots__ = ("_emit", "_gate")

    def __init__(
        self,
        emit: EmitCount,
        clock: Callable[[], float],
        call_later: CallLater,
        interval: Interval = COUNT_UPDATE_INTERVAL,
        gate: IntervalGate | None = None,
    ) -> None:
        self._emit = emit
        if gate is None:
            gate = IntervalGate(lambda state: state.count_gate, None, clock, call_later, interval)
        gate.add_flush(self._flush)
        self._gate = gate

    def changed(self, state: StreamState) -> None:
        """The viewer count of ``state`` may have changed."""
        self._gate.request(state)

    def _flush(self, state: StreamState) -> bool:
        count = state.viewer_count
        if count == state.last_count_sent:
            return False
        state.last_count_sent = count
        self._emit(state, count)
        return True
