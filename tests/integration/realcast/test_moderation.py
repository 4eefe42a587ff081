"""Moderation over real sockets: ban, unban, mute, unmute, delete-message, slow mode, ranks."""

from __future__ import annotations

import asyncio

import pytest

from .harness import STREAM, Harness

S = {"stream_id": STREAM}


async def setup_room(rc: Harness) -> tuple:  # type: ignore[type-arg]
    mod = await rc.user("mod", "Mod", moderator_of=[STREAM])
    viewer = await rc.user("user_xyz789", "Spammer")
    bystander = await rc.user("bystander", "By")
    for peer in (mod, viewer, bystander):
        assert (await peer.call("chat:join", S))["ok"] is True
    return mod, viewer, bystander


async def test_ban_announces_evicts_and_blocks(rc: Harness) -> None:
    mod, viewer, bystander = await setup_room(rc)
    viewer_tab2 = await rc.user("user_xyz789", "Spammer")
    await viewer_tab2.call("stream:subscribe", S)
    ack = await mod.call(
        "moderation:ban", {"stream_id": STREAM, "target_user_id": "user_xyz789", "reason": "Spam", "duration": 3600}
    )
    assert ack["ok"] is True
    for peer in (mod, viewer, bystander, viewer_tab2):
        banned = await peer.next("user.banned")
        assert banned["stream_id"] == STREAM and banned["user_id"] == "user_xyz789"
        assert banned["reason"] == "Spam" and banned["duration"] == 3600
        assert banned["expires_at"].endswith("Z")
    assert (await bystander.next("viewer.left"))["user_id"] == "user_xyz789"
    # Every socket of the banned user has left the room...
    await bystander.call("chat:message", {"stream_id": STREAM, "message": "after the ban"})
    await bystander.next("chat:message")
    await viewer.nothing("chat:message")
    await viewer_tab2.nothing("chat:message", within=0.1)
    # ...and cannot join, send, react or subscribe there.
    for event, payload in [
        ("chat:join", S),
        ("chat:message", {"stream_id": STREAM, "message": "let me back"}),
        ("reaction:send", {"stream_id": STREAM, "emoji": "👍"}),
        ("stream:subscribe", S),
    ]:
        ack = await viewer.call(event, payload)
        assert ack["error"]["type"] == "permission_denied", event
    await bystander.nothing("chat:message", within=0.2)
    # Other streams are unaffected.
    assert (await viewer.call("chat:join", {"stream_id": "other_stream"}))["ok"] is True


async def test_banned_users_reconnect_with_a_fresh_token_still_cannot_join(rc: Harness) -> None:
    mod, viewer, _ = await setup_room(rc)
    await mod.call("moderation:ban", {"stream_id": STREAM, "target_user_id": "user_xyz789", "duration": None})
    await viewer.close()
    again = await rc.user("user_xyz789", "Spammer")
    ack = await again.call("chat:join", S)
    assert ack["error"]["type"] == "permission_denied"


async def test_timed_ban_expires(rc: Harness) -> None:
    mod, viewer, _ = await setup_room(rc)
    await mod.call("moderation:ban", {"stream_id": STREAM, "target_user_id": "user_xyz789", "duration": 1})
    assert (await viewer.call("chat:join", S))["ok"] is False
    await asyncio.sleep(1.1)
    assert (await viewer.call("chat:join", S))["ok"] is True


async def test_unban(rc: Harness) -> None:
    mod, viewer, bystander = await setup_room(rc)
    await mod.call("moderation:ban", {"stream_id": STREAM, "target_user_id": "user_xyz789", "reason": "x"})
    ack = await mod.call("moderation:unban", {"stream_id": STREAM, "target_user_id": "user_xyz789"})
    assert ack["ok"] is True
    for peer in (mod, bystander, viewer):  # the unbanned user hears it too, though out of the room
        assert await peer.next("user.unbanned") == {"stream_id": STREAM, "user_id": "user_xyz789"}
    assert (await viewer.call("chat:join", S))["ok"] is True
    ack = await mod.call("moderation:unban", {"stream_id": STREAM, "target_user_id": "user_xyz789"})
    assert ack["error"]["type"] == "invalid_request"


async def test_mute_lets_read_but_not_send(rc: Harness) -> None:
    mod, viewer, bystander = await setup_room(rc)
    ack = await mod.call("moderation:mute", {"stream_id": STREAM, "target_user_id": "user_xyz789", "duration": 300})
    assert ack["ok"] is True
    for peer in (mod, viewer, bystander):
        muted = await peer.next("user.muted")
        assert (muted["stream_id"], muted["user_id"], muted["duration"]) == (STREAM, "user_xyz789", 300)
        assert muted["expires_at"].endswith("Z")
    ack = await viewer.call("chat:message", {"stream_id": STREAM, "message": "can I talk?"})
    assert ack["error"]["type"] == "permission_denied"
    await viewer.emit("chat:message", {"stream_id": STREAM, "message": "can I talk?"})
    assert (await viewer.next("error"))["type"] == "permission_denied"
    await bystander.call("chat:message", {"stream_id": STREAM, "message": "you can read this"})
    assert (await viewer.next("chat:message"))["message"] == "you can read this"
    ack = await mod.call("moderation:unmute", {"stream_id": STREAM, "target_user_id": "user_xyz789"})
    assert ack["ok"] is True
    assert await viewer.next("user.unmuted") == {"stream_id": STREAM, "user_id": "user_xyz789"}
    assert (await viewer.call("chat:message", {"stream_id": STREAM, "message": "thanks"}))["ok"] is True


async def test_delete_message(rc: Harness) -> None:
    mod, viewer, bystander = await setup_room(rc)
    sent = await viewer.call("chat:message", {"stream_id": STREAM, "message": "rude"})
    ack = await mod.call("moderation:delete-message", {"stream_id": STREAM, "message_id": sent["message_id"]})
    assert ack["ok"] is True
    expected = {"stream_id": STREAM, "message_id": sent["message_id"]}
    for peer in (mod, viewer, bystander):
        assert await peer.next("chat.message.deleted") == expected
        assert await peer.next("chat:message.deleted") == expected  # the event summary's spelling
    late = await rc.user("late", "Late")
    assert (await late.call("chat:join", S))["recent_messages"] == []
    ack = await mod.call("moderation:delete-message", {"stream_id": STREAM, "message_id": sent["message_id"]})
    assert ack["error"]["type"] == "invalid_request"
    ack = await mod.call("moderation:delete-message", {"stream_id": STREAM, "message_id": "msg_unknown"})
    assert ack["error"]["type"] == "invalid_request"


async def test_slow_mode_refuses_a_second_message_but_not_a_moderator(rc: Harness) -> None:
    mod, viewer, bystander = await setup_room(rc)
    ack = await mod.call("moderation:slow-mode", {"stream_id": STREAM, "enabled": True, "interval": 2})
    assert ack["ok"] is True
    for peer in (mod, viewer, bystander):
        assert await peer.next("chat.slow-mode") == {"stream_id": STREAM, "enabled": True, "interval": 2}
        assert await peer.next("chat:slow-mode") == {"stream_id": STREAM, "enabled": True, "interval": 2}
    assert (await viewer.call("chat:message", {"stream_id": STREAM, "message": "one"}))["ok"] is True
    ack = await viewer.call("chat:message", {"stream_id": STREAM, "message": "two"})
    assert ack["error"]["type"] == "rate_limit_exceeded"
    assert 0 < ack["error"]["retry_after"] <= 2
    await viewer.emit("chat:message", {"stream_id": STREAM, "message": "three"})
    error = await viewer.next("error")
    assert error["type"] == "rate_limit_exceeded" and 0 < error["retry_after"] <= 2
    assert (await bystander.call("chat:message", {"stream_id": STREAM, "message": "mine"}))["ok"] is True
    for i in range(3):
        assert (await mod.call("chat:message", {"stream_id": STREAM, "message": f"mod {i}"}))["ok"] is True
    await asyncio.sleep(ack["error"]["retry_after"])
    assert (await viewer.call("chat:message", {"stream_id": STREAM, "message": "two, later"}))["ok"] is True
    joined = await rc.user("late", "Late")
    assert (await joined.call("chat:join", S))["slow_mode"] == {"enabled": True, "interval": 2}
    await mod.call("moderation:slow-mode", {"stream_id": STREAM, "enabled": False})
    assert await viewer.next("chat.slow-mode") == {"stream_id": STREAM, "enabled": False, "interval": 0}
    assert (await viewer.call("chat:message", {"stream_id": STREAM, "message": "free"}))["ok"] is True


@pytest.mark.parametrize(
    "event",
    [
        "moderation:ban",
        "moderation:unban",
        "moderation:mute",
        "moderation:unmute",
        "moderation:delete-message",
        "moderation:slow-mode",
    ],
)
async def test_viewers_cannot_moderate(rc: Harness, event: str) -> None:
    _, viewer, _ = await setup_room(rc)
    payload = {
        "stream_id": STREAM,
        "target_user_id": "bystander",
        "duration": 60,
        "message_id": "msg_x",
        "enabled": True,
        "interval": 5,
    }
    ack = await viewer.call(event, payload)
    assert ack["error"]["type"] == "permission_denied"
    await viewer.nothing("error", within=0.1)  # the ack carried the error
    await viewer.emit(event, payload)
    assert (await viewer.next("error"))["type"] == "permission_denied"


async def test_rank_rules(rc: Harness) -> None:
    mod, _, _ = await setup_room(rc)
    other_mod = await rc.user("mod2", "Mod2", roles=["moderator"])
    caster = await rc.user("caster", "Caster", broadcaster_of=[STREAM])
    admin = await rc.user("root", "Root", roles=["admin"])
    mod_elsewhere = await rc.user("mod3", "Mod3", moderator_of=["other_stream"])

    async def ban(actor: object, target: str) -> dict:  # type: ignore[type-arg]
        return await actor.call("moderation:ban", {"stream_id": STREAM, "target_user_id": target})  # type: ignore[attr-defined]

    assert (await ban(mod, "mod"))["error"]["message"] == "you cannot moderate yourself"
    assert (await ban(mod, "mod2"))["error"]["type"] == "permission_denied"  # equal rank
    assert (await ban(mod, "caster"))["error"]["type"] == "permission_denied"  # higher rank
    assert (await ban(mod, "root"))["error"]["type"] == "permission_denied"
    assert (await ban(mod_elsewhere, "bystander"))["error"]["type"] == "permission_denied"
    assert (await ban(caster, "root"))["error"]["type"] == "permission_denied"
    assert (await ban(caster, "mod"))["ok"] is True
    assert (await ban(admin, "caster"))["ok"] is True
    assert (await ban(other_mod, "bystander"))["ok"] is True  # app-wide moderator


async def test_moderator_cannot_delete_a_higher_ranks_message(rc: Harness) -> None:
    mod, _, _ = await setup_room(rc)
    caster = await rc.user("caster", "Caster", broadcaster_of=[STREAM])
    sent = await caster.call("chat:message", {"stream_id": STREAM, "message": "from the broadcaster"})
    ack = await mod.call("moderation:delete-message", {"stream_id": STREAM, "message_id": sent["message_id"]})
    assert ack["error"]["type"] == "permission_denied"
    own = await mod.call("chat:message", {"stream_id": STREAM, "message": "my typo"})
    ack = await mod.call("moderation:delete-message", {"stream_id": STREAM, "message_id": own["message_id"]})
    assert ack["ok"] is True


@pytest.mark.parametrize(
    "payload",
    [
        {"stream_id": STREAM, "target_user_id": "x", "duration": 0},
        {"stream_id": STREAM, "target_user_id": "x", "duration": "1h"},
        {"stream_id": STREAM, "duration": 60},
        {"stream_id": STREAM, "target_user_id": "x", "reason": 7},
    ],
)
async def test_invalid_moderation_payloads(rc: Harness, payload: dict) -> None:  # type: ignore[type-arg]
    mod, _, _ = await setup_room(rc)
    ack = await mod.call("moderation:ban", payload)
    assert ack["error"]["type"] == "invalid_request"
