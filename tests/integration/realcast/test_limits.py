"""Rate limits and the error/ack contract over real sockets."""

from __future__ import annotations

import asyncio

from .harness import STREAM, Harness

S = {"stream_id": STREAM}


async def test_sixth_chat_message_within_a_second_is_refused_with_retry_after(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    bob = await rc.user("bob", "Bob")
    await alice.call("chat:join", S)
    await bob.call("chat:join", S)
    acks = [await alice.call("chat:message", {"stream_id": STREAM, "message": f"m{i}"}) for i in range(6)]
    assert [a["ok"] for a in acks] == [True] * 5 + [False]
    error = acks[5]["error"]
    assert error["type"] == "rate_limit_exceeded"
    assert 0 < error["retry_after"] <= 1
    await alice.nothing("error", within=0.1)  # the ack carried the error
    # The refused message was not applied.
    got = [(await bob.next("chat:message"))["message"] for _ in range(5)]
    assert got == [f"m{i}" for i in range(5)]
    await bob.nothing("chat:message", within=0.2)
    # A second connection has its own limits, and waiting retry_after is enough.
    alice2 = await rc.user("alice", "Alice")
    assert (await alice2.call("chat:message", {"stream_id": STREAM, "message": "tab 2"}))["ok"] is True
    await asyncio.sleep(error["retry_after"])
    assert (await alice.call("chat:message", {"stream_id": STREAM, "message": "later"}))["ok"] is True


async def test_eleventh_reaction_within_a_second_is_refused(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    acks = [await alice.call("reaction:send", {"stream_id": STREAM, "emoji": "🔥"}) for _ in range(11)]
    assert [a["ok"] for a in acks] == [True] * 10 + [False]
    assert acks[10]["error"]["type"] == "rate_limit_exceeded" and acks[10]["error"]["retry_after"] > 0


async def test_twenty_first_moderation_action_within_a_minute_is_refused(rc: Harness) -> None:
    mod = await rc.user("mod", "Mod", moderator_of=[STREAM])
    acks = []
    for i in range(21):
        acks.append(await mod.call("moderation:slow-mode", {"stream_id": STREAM, "enabled": i % 2 == 0, "interval": 3}))
    assert [a["ok"] for a in acks] == [True] * 20 + [False]
    assert acks[20]["error"]["type"] == "rate_limit_exceeded"
    assert 55 < acks[20]["error"]["retry_after"] <= 60


async def test_success_acks_carry_ok_true(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    assert (await alice.call("chat:join", S))["ok"] is True
    ack = await alice.call("chat:message", {"stream_id": STREAM, "message": "hi"})
    assert ack["ok"] is True and ack["message_id"].startswith("msg_")
    assert await alice.call("chat:leave", S) == {"ok": True, "stream_id": STREAM}


async def test_error_event_without_an_ack(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    await alice.emit("chat:message", {"stream_id": STREAM, "message": ""})
    assert (await alice.next("error")) == {"type": "invalid_request", "message": "message is empty"}
    await alice.emit("moderation:ban", {"stream_id": STREAM, "target_user_id": "bob"})
    assert (await alice.next("error"))["type"] == "permission_denied"


async def test_each_seed_error_type_has_a_message(rc: Harness) -> None:
    anon = rc.peer()
    await anon.connect()
    seen = {}
    seen["authentication_failed"] = await anon.call("chat:join", S)
    alice = await rc.user("alice", "Alice")
    seen["invalid_request"] = await alice.call("chat:join", {"stream_id": ""})
    seen["permission_denied"] = await alice.call("moderation:mute", {"stream_id": STREAM, "target_user_id": "x"})
    for _ in range(5):
        await alice.call("chat:message", {"stream_id": STREAM, "message": "x"})
    seen["rate_limit_exceeded"] = await alice.call("chat:message", {"stream_id": STREAM, "message": "x"})
    for error_type, ack in seen.items():
        assert ack["ok"] is False
        assert ack["error"]["type"] == error_type
        assert isinstance(ack["error"]["message"], str) and ack["error"]["message"]
        assert ("retry_after" in ack["error"]) == (error_type == "rate_limit_exceeded")


async def test_unknown_events_are_ignored(rc: Harness) -> None:
    alice = await rc.user("alice", "Alice")
    await alice.emit("no:such:event", {})
    assert (await alice.call("chat:join", S))["ok"] is True
