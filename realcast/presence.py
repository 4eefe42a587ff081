"""``viewer.joined`` / ``viewer.left``: when per-viewer presence is announced, and how often.

Layer: application (realcast); imports only the standard library and ``live.py`` (whose
``IntervalGate`` also paces ``viewer.count.update``).

Presence is the chattiest thing a stream sends: every viewer's arrival goes to every other
viewer, so a stream filling up costs joins x members deliveries. Two rules keep that bounded,
the way large chat platforms do it (Twitch's chat, for one, batches its join/part notices and
stops them above 1,000 chatters):

* **Coalescing.** The first announcement after a quiet ``interval`` goes out at once; those that
  follow within the interval are held and sent together when it ends, in the order they
  happened. Sent in one loop turn, they reach each member in one write, however many there are.
  The hub shares one gate between these and ``viewer.count.update`` (live.py), so that a stream's
  arrivals of the interval and its new count reach each member in one write, and big streams get
  both less often (``live.update_interval``).
* **Size limit.** A viewer is announced only if the stream, with them in it, has at most ``limit``
  viewers; above that ``viewer.count.update`` alone tells the size. (A viewer who joined while the
  stream was over the limit can still be seen leaving once it has shrunk below it.) The default
  stays at 1,000: with the shared gate, announcing costs bytes in a write that the count update
  makes anyway, not writes of its own, and streams that big get both less often.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .live import CallLater, IntervalGate, StreamState

__all__ = ["EmitPresence", "PresenceCoalescer"]

# (state, event, payload): sends one presence event to the stream.
EmitPresence = Callable[[StreamState, str, Mapping[str, object]], None]


class PresenceCoalescer:
    """Sends presence events at most once per ``interval`` per stream, in order.

    Args:
        emit: sends one event to the stream.
        clock: monotonic seconds.
        call_later: schedules a callback (``loop.call_later`` in production).
        interval: seconds; 0 sends every event at once.
        limit: largest viewer count at which viewers are still announced; 0 announces nobody.
        gate: a gate shared with ``viewer.count.update`` (live.py; its interval applies), used
            unless ``interval`` is 0.
    """

    __slots__ = ("_emit", "_gate", "_limit")

    def __init__(
        self,
        emit: EmitPresence,
        clock: Callable[[], float],
        call_later: CallLater,
        interval: float,
        limit: int,
        gate: IntervalGate | None = None,
    ) -> None:
        self._emit = emit
        self._limit = limit
        if gate is None or interval <= 0:
            gate = IntervalGate(lambda state: state.presence_gate, None, clock, call_later, interval)
        gate.add_flush(self._flush)
        self._gate = gate

    def joined(self, state: StreamState, payload: Mapping[str, object], count: int | None = None) -> None:
        """A viewer joined ``state``; ``count``: the stream's viewers with them (default: its count now)."""
        self._announce(state, "viewer.joined", payload, state.viewer_count if count is None else count)

    def left(self, state: StreamState, payload: Mapping[str, object], count: int | None = None) -> None:
        """A viewer left ``state``; ``count``: the stream's viewers without them (default: its count now)."""
        # Sized with the leaver still in, like their join: no part for a join that was not announced
        # because the stream was over the limit.
        self._announce(state, "viewer.left", payload, (state.viewer_count if count is None else count) + 1)

    def _announce(self, state: StreamState, event: str, payload: Mapping[str, object], size: int) -> None:
        if size > self._limit:
            return
        if state.presence_pending is None:
            state.presence_pending = []
        state.presence_pending.append((event, payload))
        self._gate.request(state)

    def _flush(self, state: StreamState) -> bool:
        pending, state.presence_pending = state.presence_pending, None
        for event, payload in pending or ():
            self._emit(state, event, payload)
        return bool(pending)
