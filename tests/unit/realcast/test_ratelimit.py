"""realcast.ratelimit: exact sliding windows and per-user slow mode."""

from __future__ import annotations

import pytest
from rc_fakes import FakeClock

from realcast.config import RateLimits
from realcast.ratelimit import Action, RateLimiter, SlidingWindow, SlowModeGate, Window, policy_for


def burst(limiter: RateLimiter, action: Action, n: int) -> list[float]:
    return [limiter.hit(action) for _ in range(n)]


def test_sixth_chat_message_within_a_second_is_refused_with_retry_after(clock: FakeClock) -> None:
    limiter = RateLimiter(policy_for(RateLimits()), clock)
    for _ in range(5):
        assert limiter.hit(Action.CHAT) == 0.0
        clock.advance(0.1)
    wait = limiter.hit(Action.CHAT)
    assert wait == pytest.approx(0.5)  # the first message leaves the 1 s window at t=1.0
    clock.advance(wait)
    assert limiter.hit(Action.CHAT) == 0.0


def test_refused_events_are_not_counted(clock: FakeClock) -> None:
    limiter = RateLimiter(policy_for(RateLimits()), clock)
    burst(limiter, Action.CHAT, 5)
    assert all(w > 0 for w in burst(limiter, Action.CHAT, 50))
    clock.advance(1.0)
    assert burst(limiter, Action.CHAT, 5) == [0.0] * 5


def test_no_one_second_window_ever_holds_more_than_the_limit(clock: FakeClock) -> None:
    limiter = RateLimiter(policy_for(RateLimits()), clock)
    allowed: list[float] = []
    for _ in range(400):  # one attempt every 30 ms for 12 s
        if limiter.hit(Action.REACTION) == 0.0:
            allowed.append(clock.now)
        clock.advance(0.03)
    for i, t in enumerate(allowed):
        assert sum(1 for u in allowed[i:] if u < t + 1.0) <= 10
    assert len(allowed) >= 100


def test_per_minute_window_applies_after_per_second(clock: FakeClock) -> None:
    limiter = RateLimiter(policy_for(RateLimits()), clock)
    sent = 0
    for _ in range(20):  # 5 per second for 20 s: all allowed
        assert burst(limiter, Action.CHAT, 5) == [0.0] * 5
        sent += 5
        clock.advance(1.0)
    assert sent == 100
    wait = limiter.hit(Action.CHAT)
    assert wait == pytest.approx(40.0)  # the first batch, sent at t=0, leaves the minute at t=60


def test_moderation_limit_is_per_minute_only(clock: FakeClock) -> None:
    limiter = RateLimiter(policy_for(RateLimits()), clock)
    assert burst(limiter, Action.MODERATION, 20) == [0.0] * 20
    assert limiter.hit(Action.MODERATION) == pytest.approx(60.0)


def test_action_classes_are_independent(clock: FakeClock) -> None:
    limiter = RateLimiter(policy_for(RateLimits()), clock)
    burst(limiter, Action.CHAT, 5)
    assert limiter.hit(Action.CHAT) > 0
    assert limiter.hit(Action.REACTION) == 0.0
    assert limiter.hit(Action.MODERATION) == 0.0


def test_limits_are_configurable(clock: FakeClock) -> None:
    limiter = RateLimiter(policy_for(RateLimits(chat_per_second=2)), clock)
    assert burst(limiter, Action.CHAT, 3)[2] > 0


def test_sliding_window_ring() -> None:
    w = SlidingWindow(Window(2, 10.0))
    assert w.wait(0.0) == 0.0
    w.record(0.0)
    w.record(4.0)
    assert w.wait(5.0) == 5.0
    w.record(10.0)  # the caller only records allowed events; the oldest (0.0) is overwritten
    assert w.wait(12.0) == 2.0  # now limited by the event at 4.0


def test_slow_mode_gate(clock: FakeClock) -> None:
    gate = SlowModeGate(clock)
    assert gate.hit("u", 5) == 0.0
    clock.advance(2)
    assert gate.hit("u", 5) == pytest.approx(3.0)
    assert gate.hit("v", 5) == 0.0  # per user
    clock.advance(3)
    assert gate.hit("u", 5) == 0.0
    clock.advance(100)
    gate.purge(60)
    assert len(gate) == 0
