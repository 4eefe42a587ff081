"""realcast.presence: presence events coalesced per interval, in order, and capped by stream size."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from rc_fakes import FakeClock, FakeTimers

from realcast.live import LiveRegistry, StreamState
from realcast.presence import PresenceCoalescer

Sent = list[tuple[str, str]]  # (event, user_id)


def setup(clock: FakeClock, interval: float = 1.0, limit: int = 1000) -> tuple[PresenceCoalescer, FakeTimers, Sent]:
    sent: Sent = []
    timers = FakeTimers()

    def emit(state: StreamState, event: str, payload: Mapping[str, object]) -> None:
        sent.append((event, str(payload["user_id"])))

    return PresenceCoalescer(emit, clock, timers, interval, limit), timers, sent


def arrive(p: PresenceCoalescer, s: StreamState, user: str) -> None:
    if s.add_viewer_connection(user, 0.0):
        p.joined(s, {"user_id": user})


def depart(p: PresenceCoalescer, s: StreamState, user: str) -> None:
    if s.remove_viewer_connection(user, 0.0):
        p.left(s, {"user_id": user})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


def test_first_event_after_a_quiet_interval_goes_at_once(clock: FakeClock) -> None:
    p, timers, sent = setup(clock)
    s = LiveRegistry().get("app", "s")
    arrive(p, s, "a")
    assert sent == [("viewer.joined", "a")] and not timers.pending
    clock.advance(1.0)
    arrive(p, s, "b")
    assert sent[-1] == ("viewer.joined", "b") and not timers.pending


def test_a_burst_is_held_and_sent_together_in_order(clock: FakeClock) -> None:
    p, timers, sent = setup(clock)
    s = LiveRegistry().get("app", "s")
    arrive(p, s, "a")
    clock.advance(0.25)
    arrive(p, s, "b")
    arrive(p, s, "c")
    depart(p, s, "b")
    assert sent == [("viewer.joined", "a")]
    assert len(timers.pending) == 1 and timers.pending[0][0] == pytest.approx(0.75)
    clock.advance(0.75)
    timers.fire()
    assert sent == [("viewer.joined", "a"), ("viewer.joined", "b"), ("viewer.joined", "c"), ("viewer.left", "b")]
    assert s.presence_pending is None
    # the flush started a new interval: the next event waits for its end, not the one after
    clock.advance(0.5)
    arrive(p, s, "d")
    assert timers.pending[0][0] == pytest.approx(0.5)


def test_interval_zero_sends_everything_at_once(clock: FakeClock) -> None:
    p, timers, sent = setup(clock, interval=0.0)
    s = LiveRegistry().get("app", "s")
    for user in "abc":
        arrive(p, s, user)
    assert [u for _, u in sent] == ["a", "b", "c"] and not timers.pending


def test_no_per_viewer_events_above_the_limit(clock: FakeClock) -> None:
    p, _, sent = setup(clock, interval=0.0, limit=2)
    s = LiveRegistry().get("app", "s")
    for user in "abc":
        arrive(p, s, user)
    assert [u for _, u in sent] == ["a", "b"]  # c made it 3 viewers
    depart(p, s, "c")  # not announced joining, not announced leaving
    assert [u for _, u in sent] == ["a", "b"]
    depart(p, s, "a")  # a stream of 2 with a in it
    assert sent[-1] == ("viewer.left", "a")


def test_limit_zero_announces_nobody(clock: FakeClock) -> None:
    p, _, sent = setup(clock, interval=0.0, limit=0)
    s = LiveRegistry().get("app", "s")
    arrive(p, s, "a")
    depart(p, s, "a")
    assert sent == []


def test_a_stream_with_held_events_is_not_forgotten(clock: FakeClock) -> None:
    reg = LiveRegistry()
    p, timers, _ = setup(clock)
    s = reg.get("app", "s")
    arrive(p, s, "a")
    clock.advance(0.1)
    depart(p, s, "a")
    assert s.presence_pending is not None
    assert reg.forget_idle(now=10_000.0, idle_for=1.0) == 0
    timers.fire()
    assert reg.forget_idle(now=10_000.0, idle_for=1.0) == 1
