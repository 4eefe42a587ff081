"""Streams, viewers, the backend HTTP API, reactions and analytics over real sockets."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from .harness import API_KEY_A, API_KEY_B, STREAM, Harness

BASE = f"/api/v1/apps/app_xyz789/streams/{STREAM}"
SUB = {"stream_id": STREAM}


async def test_subscribe_answers_status_and_viewers(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    ack = await alice.call("stream:subscribe", SUB)
    assert ack["ok"] is True
    body = await alice.next("stream:subscribed")
    assert (body["stream_id"], body["status"], body["viewers"]) == (STREAM, "offline", 1)


async def test_backend_live_offline_error_reach_subscribers_and_chat_members(rc: Harness) -> None:
    sub = await rc.user("sub", "Sub")
    chatter = await rc.user("chatter", "Chatter")
    await sub.call("stream:subscribe", SUB)
    await chatter.call("chat:join", SUB)
    status, body = await rc.http("POST", f"{BASE}/live", {"title": "Speedrun"})
    assert status == 200 and body["status"] == "live" and body["title"] == "Speedrun"
    for peer in (sub, chatter):
        live = await peer.next("stream.live")
        assert live["stream_id"] == STREAM and live["title"] == "Speedrun"
        assert live["started_at"].endswith("Z")
    late = await rc.user("late", "Late")
    assert (await late.call("stream:subscribe", SUB))["status"] == "live"
    status, body = await rc.http("POST", f"{BASE}/error", {"error": "encoder lost"})
    assert status == 200
    for peer in (sub, chatter, late):
        assert await peer.next("stream.error") == {"stream_id": STREAM, "error": "encoder lost"}
    await asyncio.sleep(1.1)
    status, body = await rc.http("POST", f"{BASE}/offline")
    assert status == 200 and body["status"] == "offline"
    for peer in (sub, chatter, late):
        offline = await peer.next("stream.offline")
        assert offline["stream_id"] == STREAM and offline["duration"] >= 1
        assert isinstance(offline["duration"], int) and offline["ended_at"].endswith("Z")
    status, body = await rc.http("POST", f"{BASE}/offline")
    assert status == 200 and body["changed"] is False
    await sub.nothing("stream.offline", within=0.3)


async def test_backend_status_and_analytics(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    await alice.call("chat:join", SUB)
    await alice.call("chat:message", {"stream_id": STREAM, "message": "hi"})
    await rc.http("POST", f"{BASE}/live", {"title": "T"})
    status, body = await rc.http("GET", BASE)
    assert status == 200
    assert body["status"] == "live" and body["viewers"] == 1
    assert body["analytics"]["messages_per_minute"] == 1
    assert body["slow_mode"] == {"enabled": False, "interval": 0}
    status, body = await rc.http("GET", "/api/v1/apps/app_xyz789/streams/never_seen")
    assert status == 200 and body["status"] == "offline" and body["viewers"] == 0


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("POST", f"{BASE}/live", "wrong-key-0123456789"),
        ("POST", f"{BASE}/live", None),
        ("POST", f"{BASE}/live", API_KEY_B),  # another app's key
        ("GET", BASE, "wrong-key-0123456789"),
        ("POST", f"/api/v1/apps/app_missing/streams/{STREAM}/live", API_KEY_A),
    ],
)
async def test_wrong_api_key_gets_401(rc: Harness, method: str, path: str, key: str | None) -> None:
    sub = await rc.user("sub", "Sub")
    await sub.call("stream:subscribe", SUB)
    status, body = await rc.http(method, path, {"title": "x"} if method == "POST" else None, api_key=key)
    assert status == 401 and body == {"error": "invalid API key"}
    await sub.nothing("stream.live", within=0.2)


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", f"{BASE}/error", {}, 400),
        ("POST", f"{BASE}/live", {"title": 5}, 400),
        ("POST", f"{BASE}/live", [1], 400),
        ("POST", "/api/v1/apps/app_xyz789/streams/bad%20id/live", {}, 400),
        ("POST", f"{BASE}/explode", {}, 404),
        ("GET", f"{BASE}/live", None, 405),
        ("GET", "/api/v1/apps/app_xyz789/other", None, 404),
    ],
)
async def test_backend_api_errors_are_json(rc: Harness, method: str, path: str, body: object, expected: int) -> None:
    status, answer = await rc.http(method, path, body)
    assert status == expected and isinstance(answer["error"], str)


async def test_healthz(rc: Harness) -> None:
    assert await rc.http("GET", "/healthz", api_key=None) == (200, {"status": "ok"})


async def test_viewer_joined_left_and_distinct_counts(rc: Harness) -> None:
    watcher = await rc.user("watcher", "Watcher")
    await watcher.call("stream:subscribe", SUB)
    assert (await watcher.next("viewer.joined"))["user_id"] == "watcher"
    assert (await watcher.next("viewer.count.update"))["count"] == 1
    bob = await rc.user("bob", "Bob")
    bob_tab2 = await rc.user("bob", "Bob")
    await bob.call("chat:join", SUB)
    assert await watcher.next("viewer.joined") == {"stream_id": STREAM, "user_id": "bob", "username": "Bob"}
    await bob_tab2.call("stream:subscribe", SUB)
    update = await watcher.next("viewer.count.update", timeout=3)
    assert update["count"] == 2 and update["stream_id"] == STREAM and update["timestamp"].endswith("Z")
    await watcher.nothing("viewer.joined", within=0.2)  # a second tab is not a new viewer
    await bob.close()
    await watcher.nothing("viewer.left", within=0.3)  # bob is still there in tab 2
    await bob_tab2.call("stream:unsubscribe", SUB)
    assert await watcher.next("viewer.left") == {"stream_id": STREAM, "user_id": "bob", "username": "Bob"}
    assert (await watcher.next("viewer.count.update", timeout=3))["count"] == 1


async def test_a_burst_of_viewers_is_announced_together_after_the_interval(tmp_path: Path) -> None:
    rc = Harness(tmp_path / "data", presence_interval=1.5)
    await rc.start()
    try:
        watcher = await rc.user("watcher", "Watcher")
        await watcher.call("stream:subscribe", SUB)
        assert (await watcher.next("viewer.joined"))["user_id"] == "watcher"  # quiet before: at once
        first = time.monotonic()
        peers = [await rc.user(f"v{i}", f"V{i}") for i in range(3)]
        for peer in peers:
            await peer.call("stream:subscribe", SUB)
        arrivals = []
        for i in range(3):
            assert (await watcher.next("viewer.joined"))["user_id"] == f"v{i}"  # in join order
            arrivals.append(time.monotonic())
        assert arrivals[0] - first >= 1.0, "held until the interval ended"
        assert arrivals[-1] - arrivals[0] < 0.5, "sent together"
        for peer in peers:  # each newcomer got the whole batch, its own join included
            assert [p["user_id"] for p in peer.drain("viewer.joined")] == [f"v{i}" for i in range(3)]
    finally:
        await rc.stop()


async def test_viewers_of_a_stream_over_the_presence_limit_are_not_announced(tmp_path: Path) -> None:
    rc = Harness(tmp_path / "data", presence_limit=2, presence_interval=0)
    await rc.start()
    try:
        watcher = await rc.user("watcher", "Watcher")
        await watcher.call("stream:subscribe", SUB)
        bob = await rc.user("bob", "Bob")
        await bob.call("chat:join", SUB)
        carol = await rc.user("carol", "Carol")
        await carol.call("chat:join", SUB)
        assert [p["user_id"] for p in (await watcher.next("viewer.joined"), await watcher.next("viewer.joined"))] == [
            "watcher",
            "bob",
        ]
        await watcher.nothing("viewer.joined", within=0.3)  # carol made it 3 viewers
        updates = [await watcher.next("viewer.count.update", timeout=3)]
        while updates[-1]["count"] != 3:  # the count still tells
            updates.append(await watcher.next("viewer.count.update", timeout=3))
        await carol.call("chat:leave", SUB)
        await watcher.nothing("viewer.left", within=0.3)  # her join was not announced either
        await bob.call("chat:leave", SUB)
        assert (await watcher.next("viewer.left"))["user_id"] == "bob"
    finally:
        await rc.stop()


async def test_viewer_count_updates_are_coalesced_to_one_per_second(rc: Harness) -> None:
    watcher = await rc.user("watcher", "Watcher")
    await watcher.call("stream:subscribe", SUB)
    await watcher.next("viewer.count.update")
    peers = [await rc.user(f"v{i}", f"V{i}") for i in range(6)]
    started = time.monotonic()
    for peer in peers:
        await peer.call("stream:subscribe", SUB)
    await asyncio.sleep(2.5)
    updates = watcher.drain("viewer.count.update")
    assert updates and updates[-1]["count"] == 7
    # At most one per second: over ~2.5 s of churn, no more than 3 updates.
    assert len(updates) <= 3, updates
    assert time.monotonic() - started < 10


async def test_reactions_reach_the_room_with_coordinates(rc: Harness) -> None:
    alice = await rc.user("user_abc123", "GamerPro")
    bob = await rc.user("bob", "Bob")
    for peer in (alice, bob):
        await peer.call("chat:join", SUB)
    ack = await alice.call("reaction:send", {"stream_id": STREAM, "emoji": "👍", "user_id": "user_abc123"})
    assert ack["ok"] is True
    for peer in (alice, bob):
        r = await peer.next("reaction.sent")
        assert (r["stream_id"], r["emoji"], r["user_id"]) == (STREAM, "👍", "user_abc123")
        assert 0 <= r["x"] < 1 and 0 <= r["y"] < 1 and r["timestamp"].endswith("Z")


@pytest.mark.parametrize("emoji", ["👍👍", "a", "", None, "👍 ", "x" * 40])
async def test_invalid_reactions_are_refused(rc: Harness, emoji: object) -> None:
    alice = await rc.user("alice", "Alice")
    ack = await alice.call("reaction:send", {"stream_id": STREAM, "emoji": emoji})
    assert ack["error"]["type"] == "invalid_request"


async def test_analytics_updates_periodically(rc: Harness) -> None:
    boss = await rc.user("boss", "Boss", broadcaster_of=[STREAM])
    ack = await boss.call("analytics:subscribe", SUB)
    assert ack["ok"] is True and ack["viewers"] == 0
    first = await boss.next("analytics:update")
    assert set(first) == {
        "stream_id",
        "viewers",
        "peak_viewers",
        "messages_per_minute",
        "reactions_per_minute",
        "average_watch_time",
    }
    alice = await rc.user("alice", "Alice")
    bob = await rc.user("bob", "Bob")
    await alice.call("chat:join", SUB)
    await bob.call("stream:subscribe", SUB)
    await alice.call("chat:message", {"stream_id": STREAM, "message": "one"})
    await alice.call("chat:message", {"stream_id": STREAM, "message": "two"})
    await bob.call("reaction:send", {"stream_id": STREAM, "emoji": "🔥"})
    await asyncio.sleep(0.3)
    await bob.close()
    boss.drain("analytics:update")
    update = await boss.next("analytics:update", timeout=2)  # analytics_interval is 0.5 s here
    assert update["stream_id"] == STREAM
    assert update["viewers"] == 1 and update["peak_viewers"] == 2
    assert update["messages_per_minute"] == 2 and update["reactions_per_minute"] == 1
    assert 0 < update["average_watch_time"] < 10
    await boss.call("analytics:unsubscribe", SUB)
    boss.drain("analytics:update")
    await boss.nothing("analytics:update", within=0.8)


async def test_a_connection_can_be_in_at_most_100_streams(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    for i in range(100):
        assert (await alice.call("stream:subscribe", {"stream_id": f"s{i}"}))["ok"] is True
    ack = await alice.call("chat:join", {"stream_id": "one_too_many"})
    assert ack["error"]["type"] == "invalid_request"
    assert (await alice.call("chat:join", {"stream_id": "s7"}))["ok"] is True  # already in that one
    await alice.call("stream:unsubscribe", {"stream_id": "s0"})
    assert (await alice.call("chat:join", {"stream_id": "one_too_many"}))["ok"] is True


async def test_a_big_stream_gets_its_count_and_arrivals_less_often_and_together(tmp_path: Path) -> None:
    # count_update_budget 1: a stream of N viewers is updated every N seconds (N / budget).
    rc = Harness(tmp_path / "data", count_update_budget=1)
    await rc.start()
    try:
        watcher = await rc.user("watcher", "Watcher")
        await watcher.call("stream:subscribe", SUB)
        assert (await watcher.next("viewer.count.update"))["count"] == 1  # quiet before: at once
        peers = [await rc.user(f"v{i}", f"V{i}") for i in range(3)]
        await peers[0].call("stream:subscribe", SUB)
        await peers[1].call("stream:subscribe", SUB)
        assert (await watcher.next("viewer.count.update", timeout=4))["count"] == 3
        three = time.monotonic()
        assert [p["user_id"] for p in watcher.drain("viewer.joined")] == ["watcher", "v0", "v1"]
        await peers[2].call("stream:subscribe", SUB)
        joined = await watcher.next("viewer.joined", timeout=6)
        joined_at = time.monotonic()
        assert joined["user_id"] == "v2"
        assert (await watcher.next("viewer.count.update", timeout=1))["count"] == 4
        assert abs(time.monotonic() - joined_at) < 0.3, "the arrival and the count come together"
        assert joined_at - three >= 3.5, "a stream of 4 viewers with a budget of 1 is updated every 4 s"
    finally:
        await rc.stop()
