"""realcast.live: stream lifecycle, viewer/chat counting, idle forgetting, count coalescing."""

from __future__ import annotations

import pytest
from rc_fakes import FakeClock, FakeTimers

from realcast.live import (
    MAX_UPDATE_INTERVAL,
    CountCoalescer,
    IntervalGate,
    LiveRegistry,
    StreamState,
    StreamStatus,
    update_interval,
)


def state() -> StreamState:
    return LiveRegistry().get("app", "s")


def test_registry_keys_by_app_and_stream() -> None:
    reg = LiveRegistry()
    a = reg.get("app_a", "s")
    assert reg.get("app_a", "s") is a
    assert reg.get("app_b", "s") is not a
    assert reg.peek("app_c", "s") is None


def test_viewers_are_distinct_users_over_connections() -> None:
    s = state()
    assert s.add_viewer_connection("u", 0.0) is True
    assert s.add_viewer_connection("u", 1.0) is False  # second tab
    assert s.add_viewer_connection("v", 1.0) is True
    assert s.viewer_count == 2
    assert s.remove_viewer_connection("u", 2.0) is False
    assert s.remove_viewer_connection("u", 3.0) is True
    assert s.remove_viewer_connection("u", 3.0) is False  # already gone
    assert s.viewer_count == 1
    assert s.analytics.snapshot(3.0).peak_viewers == 2


def test_chat_users_count_distinct_users() -> None:
    s = state()
    s.add_chat_connection("u")
    s.add_chat_connection("u")
    s.add_chat_connection("v")
    assert len(s.chat_users) == 2
    s.remove_chat_connection("u")
    assert len(s.chat_users) == 2
    s.remove_chat_connection("u")
    assert set(s.chat_users) == {"v"}


def test_lifecycle() -> None:
    s = state()
    assert s.go_offline(5.0).changed is False
    assert s.go_live("Title", 100.0).changed is True
    assert (s.status, s.title, s.started_at) == (StreamStatus.LIVE, "Title", 100.0)
    assert s.go_live("Title", 150.0).changed is False  # already live, same title
    assert s.go_live("New title", 160.0).changed is True
    assert s.started_at == 100.0  # a title change does not restart the stream
    assert s.go_error("encoder lost").changed is True
    assert (s.status, s.error) == (StreamStatus.ERROR, "encoder lost")
    t = s.go_offline(400.0)
    assert t.changed and t.duration == 300.0
    assert (s.status, s.ended_at, s.started_at) == (StreamStatus.OFFLINE, 400.0, None)


def test_forget_idle_keeps_live_and_occupied_streams() -> None:
    reg = LiveRegistry()
    idle = reg.get("a", "idle")
    live = reg.get("a", "live")
    live.go_live("t", 0.0)
    busy = reg.get("a", "busy")
    busy.add_viewer_connection("u", 0.0)
    watched = reg.get("a", "stats")
    watched.analytics_subscribers = 1
    assert reg.forget_idle(now=10.0, idle_for=60.0) == 0
    assert reg.forget_idle(now=61.0, idle_for=60.0) == 1
    assert reg.peek("a", "idle") is None and idle.stream_id == "idle"
    assert {s for _, s in reg.streams} == {"live", "busy", "stats"}


def test_coalescer_sends_first_change_now_and_folds_the_rest(clock: FakeClock) -> None:
    sent: list[int] = []
    timers = FakeTimers()
    coalescer = CountCoalescer(lambda st, count: sent.append(count), clock, timers)
    s = state()
    s.add_viewer_connection("a", 0.0)
    coalescer.changed(s)
    assert sent == [1] and not timers.pending
    clock.advance(0.2)
    for user in ("b", "c", "d"):
        s.add_viewer_connection(user, 0.0)
        coalescer.changed(s)
    assert sent == [1]
    assert len(timers.pending) == 1 and abs(timers.pending[0][0] - 0.8) < 1e-6
    clock.advance(0.8)
    timers.fire()
    assert sent == [1, 4]


def test_coalescer_skips_unchanged_counts(clock: FakeClock) -> None:
    sent: list[int] = []
    timers = FakeTimers()
    coalescer = CountCoalescer(lambda st, count: sent.append(count), clock, timers)
    s = state()
    s.add_viewer_connection("a", 0.0)
    coalescer.changed(s)
    clock.advance(0.1)
    s.add_viewer_connection("b", 0.0)
    coalescer.changed(s)
    s.remove_viewer_connection("b", 0.0)
    coalescer.changed(s)
    clock.advance(0.9)
    timers.fire()
    assert sent == [1]  # back to 1 before the timer fired: nothing new to say
    clock.advance(5)
    s.remove_viewer_connection("a", 0.0)
    coalescer.changed(s)
    assert sent == [1, 0]


def test_big_streams_get_count_updates_less_often() -> None:
    assert update_interval(0, 200) == update_interval(200, 200) == 1.0
    assert update_interval(1000, 200) == pytest.approx(5.0)  # 200 update deliveries per second
    assert update_interval(1_000_000, 200) == MAX_UPDATE_INTERVAL
    assert update_interval(1_000_000, 0) == 1.0  # budget 0: every second whatever the size


def test_the_interval_follows_the_stream_size(clock: FakeClock) -> None:
    sent: list[int] = []
    timers = FakeTimers()
    coalescer = CountCoalescer(
        lambda st, count: sent.append(count), clock, timers, interval=lambda st: update_interval(st.viewer_count, 2)
    )
    s = state()
    for user in "abcd":
        s.add_viewer_connection(user, 0.0)
    coalescer.changed(s)
    assert sent == [4]
    clock.advance(1.0)
    s.add_viewer_connection("e", 0.0)
    coalescer.changed(s)  # 5 viewers, 2 deliveries/s: one update per 2.5 s
    assert sent == [4] and timers.pending[0][0] == pytest.approx(1.5)
    clock.advance(1.5)
    timers.fire()
    assert sent == [4, 5]


def test_a_shared_gate_sends_its_flushes_together_in_order(clock: FakeClock) -> None:
    sent: list[str] = []
    timers = FakeTimers()
    gate = IntervalGate(lambda st: st.count_gate, None, clock, timers, 1.0)
    pending: list[str] = []

    def presence(st: StreamState) -> bool:
        sent.extend(pending)
        did = bool(pending)
        pending.clear()
        return did

    gate.add_flush(presence)
    counts = CountCoalescer(lambda st, count: sent.append(f"count {count}"), clock, timers, gate=gate)
    s = state()
    s.add_viewer_connection("a", 0.0)
    pending.append("a joined")
    counts.changed(s)
    assert sent == ["a joined", "count 1"]
    clock.advance(0.3)
    s.add_viewer_connection("b", 0.0)
    pending.append("b joined")
    gate.request(s)
    counts.changed(s)
    assert len(timers.pending) == 1, "one timer for both"
    clock.advance(0.7)
    timers.fire()
    assert sent == ["a joined", "count 1", "b joined", "count 2"]
