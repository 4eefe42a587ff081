"""realcast.analytics: per-minute windows, peak viewers, average watch time."""

from __future__ import annotations

import pytest

from realcast.analytics import SlidingCounter, StreamAnalytics


def test_sliding_counter_forgets_after_a_minute() -> None:
    c = SlidingCounter()
    c.add(100.0)
    c.add(100.5, 2)
    c.add(130.0)
    assert c.total(130.0) == 4
    assert c.total(159.9) == 4
    assert c.total(160.0) == 1  # second 100 left the window
    assert c.total(190.0) == 0


def test_sliding_counter_reuses_buckets() -> None:
    c = SlidingCounter(window=3)
    c.add(0.0)
    c.add(3.0)  # same bucket index as second 0: must reset, not accumulate
    assert c.total(3.0) == 1


def test_messages_and_reactions_per_minute() -> None:
    a = StreamAnalytics()
    for i in range(45):
        a.count_message(1000.0 + i)
    for _ in range(120):
        a.count_reaction(1030.0)
    snap = a.snapshot(1050.0)
    assert (snap.messages_per_minute, snap.reactions_per_minute) == (45, 120)
    assert a.snapshot(1095.0).messages_per_minute == 9  # seconds 1036..1044 remain


def test_viewers_and_peak() -> None:
    a = StreamAnalytics()
    a.viewer_joined("u1", 0.0)
    a.viewer_joined("u2", 0.0)
    a.viewer_joined("u2", 1.0)  # already watching: no new session
    assert a.viewers == 2
    a.viewer_left("u1", 5.0)
    a.viewer_left("nobody", 5.0)
    snap = a.snapshot(5.0)
    assert (snap.viewers, snap.peak_viewers) == (1, 2)


def test_average_watch_time_mixes_ended_and_ongoing_sessions() -> None:
    a = StreamAnalytics()
    assert a.average_watch_time(0.0) == 0.0
    a.viewer_joined("u1", 0.0)
    a.viewer_left("u1", 30.0)  # ended: 30 s
    a.viewer_joined("u2", 10.0)  # ongoing: 50 s at t=60
    a.viewer_joined("u3", 40.0)  # ongoing: 20 s at t=60
    assert a.average_watch_time(60.0) == pytest.approx((30 + 50 + 20) / 3)
    a.viewer_joined("u1", 70.0)  # a second session of u1
    assert a.average_watch_time(80.0) == pytest.approx((30 + 70 + 40 + 10) / 4)
    assert a.snapshot(80.0).average_watch_time == 37.5


def test_snapshot_payload() -> None:
    a = StreamAnalytics()
    a.viewer_joined("u", 0.0)
    assert a.snapshot(10.0).as_payload("s1") == {
        "stream_id": "s1",
        "viewers": 1,
        "peak_viewers": 1,
        "messages_per_minute": 0,
        "reactions_per_minute": 0,
        "average_watch_time": 10.0,
    }
