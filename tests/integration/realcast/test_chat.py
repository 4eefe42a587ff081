"""Chat events over real sockets: join, message, typing, leave, history, validation, acks."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from realcast.config import RateLimits

from .harness import APP_A, STREAM, Harness

JOIN = {"stream_id": STREAM}


async def test_join_reports_distinct_online_users_and_recent_messages(rc: Harness) -> None:
    alice = await rc.user("user_abc123", "GamerPro")
    alice_tab2 = await rc.user("user_abc123", "GamerPro")
    bob = await rc.user("bob", "Bob")
    await alice.emit("chat:join", {"stream_id": STREAM, "user_id": "user_abc123", "username": "GamerPro"})
    joined = await alice.next("chat:joined")
    assert joined == {
        "stream_id": STREAM,
        "online_users": 1,
        "recent_messages": [],
        "slow_mode": {"enabled": False, "interval": 0},
    }
    await alice_tab2.call("chat:join", JOIN)
    await alice.call("chat:message", {"stream_id": STREAM, "message": "first"})
    ack = await bob.call("chat:join", JOIN)
    assert ack["online_users"] == 2  # alice (two connections) and bob
    assert [m["message"] for m in ack["recent_messages"]] == ["first"]
    assert (await bob.next("chat:joined"))["online_users"] == 2


async def test_message_reaches_the_whole_room_sender_included(rc: Harness) -> None:
    alice = await rc.user("user_abc123", "GamerPro")
    bob = await rc.user("bob", "Bob", transports=("polling",))  # long-polling works the same
    outsider = await rc.user("carol", "Carol")
    for peer in (alice, bob):
        await peer.call("chat:join", JOIN)
    ack = await alice.call(
        "chat:message",
        {"stream_id": STREAM, "message": "  Hello everyone! 👋  ", "user_id": "user_abc123", "username": "GamerPro"},
    )
    assert ack["ok"] is True
    for peer in (alice, bob):
        msg = await peer.next("chat:message")
        assert msg["message_id"] == ack["message_id"]
        assert msg == {
            "message_id": ack["message_id"],
            "stream_id": STREAM,
            "user_id": "user_abc123",
            "username": "GamerPro",
            "message": "Hello everyone! 👋",
            "timestamp": msg["timestamp"],
        }
    assert re.fullmatch(r"msg_[0-9A-Z]{26}", ack["message_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", msg["timestamp"])
    assert datetime.fromisoformat(msg["timestamp"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
    await outsider.nothing("chat:message")


async def test_message_ids_are_time_ordered(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    await alice.call("chat:join", JOIN)
    ids = []
    for i in range(5):
        ids.append((await alice.call("chat:message", {"stream_id": STREAM, "message": f"m{i}"}))["message_id"])
    assert ids == sorted(ids) and len(set(ids)) == 5


@pytest.mark.parametrize(
    "message",
    ["", "   ", "a" * 501, "bell\x07", "line\nbreak", 42, None],
)
async def test_invalid_messages_are_refused(rc: Harness, message: object) -> None:
    alice = await rc.user("alice", "Alice")
    await alice.call("chat:join", JOIN)
    ack = await alice.call("chat:message", {"stream_id": STREAM, "message": message})
    assert ack["ok"] is False and ack["error"]["type"] == "invalid_request"
    await alice.nothing("error", within=0.2)  # the ack carried the error
    await alice.nothing("chat:message", within=0.2)


async def test_500_code_points_are_accepted(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    ack = await alice.call("chat:message", {"stream_id": STREAM, "message": "👋" * 500})
    assert ack["ok"] is True


async def test_invalid_stream_id_and_payload(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    for payload in [{"stream_id": ""}, {"stream_id": "a b"}, {}, "stream_qwe456", None]:
        ack = await alice.call("chat:join", payload)
        assert ack["error"]["type"] == "invalid_request"


async def test_typing_goes_to_others_only_and_at_most_once_per_second(rc: Harness) -> None:
    alice = await rc.user("user_abc123", "GamerPro")
    bob = await rc.user("bob", "Bob")
    for peer in (alice, bob):
        await peer.call("chat:join", JOIN)
    payload = {"stream_id": STREAM, "user_id": "user_abc123", "username": "GamerPro"}
    assert (await alice.call("chat:typing", payload)) == {"ok": True, "delivered": True}
    assert await bob.next("chat:typing") == payload
    assert (await alice.call("chat:typing", payload)) == {"ok": True, "delivered": False}
    await bob.nothing("chat:typing", within=0.3)
    await alice.nothing("chat:typing", within=0.1)
    await asyncio.sleep(1.0)
    assert (await alice.call("chat:typing", payload))["delivered"] is True
    assert await bob.next("chat:typing") == payload


async def test_leave_stops_delivery(rc: Harness) -> None:
    alice = await rc.user("user_abc123", "GamerPro")
    bob = await rc.user("bob", "Bob")
    for peer in (alice, bob):
        await peer.call("chat:join", JOIN)
    assert (await bob.call("chat:leave", {"stream_id": STREAM, "user_id": "bob"}))["ok"] is True
    await alice.call("chat:message", {"stream_id": STREAM, "message": "anyone?"})
    await alice.next("chat:message")
    await bob.nothing("chat:message")
    ack = await alice.call("chat:join", JOIN)
    assert ack["online_users"] == 1


async def test_history_keeps_the_last_50(tmp_path: Path) -> None:
    # Limits are per app: this app allows fast chat so the history fills quickly.
    fast = replace(APP_A, rate_limits=RateLimits(chat_per_second=100, chat_per_minute=1000))
    rc = Harness(tmp_path, apps=(fast,))
    await rc.start()
    try:
        alice = await rc.user("alice", "Alice", moderator_of=[STREAM])
        await alice.call("chat:join", JOIN)
        ids = []
        for i in range(55):
            ids.append((await alice.call("chat:message", {"stream_id": STREAM, "message": f"m{i}"}))["message_id"])
        bob = await rc.user("bob", "Bob")
        recent = (await bob.call("chat:join", JOIN))["recent_messages"]
        assert [m["message"] for m in recent] == [f"m{i}" for i in range(5, 55)]
        assert (await alice.call("moderation:delete-message", {"stream_id": STREAM, "message_id": ids[54]}))["ok"]
        recent = (await bob.call("chat:join", JOIN))["recent_messages"]
        assert [m["message"] for m in recent] == [f"m{i}" for i in range(4, 54)]
    finally:
        await rc.stop()


async def test_events_from_one_client_stay_in_order(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    bob = await rc.user("bob", "Bob")
    await bob.call("chat:join", JOIN)
    for i in range(5):
        await alice.emit("chat:message", {"stream_id": STREAM, "message": f"n{i}"})
    got = [(await bob.next("chat:message"))["message"] for _ in range(5)]
    assert got == [f"n{i}" for i in range(5)]


async def test_no_slow_mode_entry_is_kept_while_slow_mode_is_off(rc: Harness) -> None:
    # Each entry would live until housekeeping (an hour): churn of chatting users grew the heap.
    alice = await rc.user("alice_keep")
    for i in range(3):
        assert (await alice.call("chat:message", {"stream_id": STREAM, "message": f"m{i}"}))["ok"]
    assert rc.app is not None and len(rc.app.hub.slow_mode) == 0
