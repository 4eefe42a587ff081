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
* **Size limit.** A viewer is announced only if the stream, with them in it, has at most ``limit``
  viewers; above that ``viewer.count.update`` alone tells the size. (A viewer who joined while the
  stream was over the limit can still be seen leaving once it has shrunk below it.)
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
    """

    __slots__ = ("_emit", "_gate", "_limit")

    def __init__(
        self, emit: EmitPresence, clock: Callable[[], float], call_later: CallLater, interval: float, limit: int
    ) -> None:
        self._emit = emit
        self._limit = limit
        self._gate = IntervalGate(lambda state: state.presence_gate, self._flush, clock, call_later, interval)

    def joined(self, state: StreamState, payload: Mapping[str, object]) -> None:
        """A viewer joined ``state`` (its viewer count includes them)."""
        self._announce(state, "viewer.joined", payload, state.viewer_count)

    def left(self, state: StreamState, payload: Mapping[str, object]) -> None:
        """A viewer left ``state`` (its viewer count no longer includes them)."""
        # Sized with the leaver still in, like their join: no part for a join that was not announced
        # because the stream was over the limit.
        self._announce(state, "viewer.left", payload, state.viewer_count + 1)

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
