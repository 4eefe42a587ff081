"""realcast.models: payload validation and the identity check."""

from __future__ import annotations

from typing import Any

import pytest

from realcast.auth import Principal
from realcast.errors import InvalidRequest, PermissionDenied
from realcast.models import (
    MAX_DURATION,
    ChatMessageRequest,
    ModerationRequest,
    SlowModeRequest,
    check_identity,
    parse_authenticate,
    parse_ban,
    parse_chat_message,
    parse_delete_message,
    parse_mute,
    parse_reaction,
    parse_slow_mode,
    parse_stream,
    parse_target,
)

ALICE = Principal("app", "user_abc123", "GamerPro")


def invalid(parse: Any, payload: object) -> str:
    with pytest.raises(InvalidRequest) as info:
        parse(payload)
    assert info.value.as_payload()["type"] == "invalid_request"
    return info.value.message


@pytest.mark.parametrize("stream_id", ["stream_qwe456", "a", "s.1:x@y-z", "x" * 128])
def test_good_stream_ids(stream_id: str) -> None:
    assert parse_stream({"stream_id": stream_id}).stream_id == stream_id


@pytest.mark.parametrize("stream_id", [None, "", 5, "x" * 129, "has space", "a/b", "_lead", "é", "a\x1fb"])
def test_bad_stream_ids(stream_id: object) -> None:
    assert "stream_id" in invalid(parse_stream, {"stream_id": stream_id})


@pytest.mark.parametrize("payload", [None, "stream_qwe456", ["stream_qwe456"], 1])
def test_payload_must_be_an_object(payload: object) -> None:
    assert invalid(parse_stream, payload) == "payload must be an object"


def test_chat_message_is_trimmed() -> None:
    req = parse_chat_message({"stream_id": "s", "message": "  Hello everyone! 👋 \n"})
    assert req == ChatMessageRequest("s", "Hello everyone! 👋")


def test_chat_message_length_counts_code_points_after_trimming() -> None:
    assert parse_chat_message({"stream_id": "s", "message": "👋" * 500}).message == "👋" * 500
    assert parse_chat_message({"stream_id": "s", "message": " " + "a" * 500 + " "}).message == "a" * 500
    assert "longer" in invalid(parse_chat_message, {"stream_id": "s", "message": "a" * 501})
    assert "empty" in invalid(parse_chat_message, {"stream_id": "s", "message": " \t "})
    assert "string" in invalid(parse_chat_message, {"stream_id": "s", "message": 5})


@pytest.mark.parametrize("text", ["a\x00b", "a\nb", "a\x7fb", "a\x85b", "a\u2028b", "abc\u202edcba", "\ud800x"])
def test_chat_message_control_characters_are_refused(text: str) -> None:
    assert "control" in invalid(parse_chat_message, {"stream_id": "s", "message": text})


def test_chat_message_allows_emoji_sequences_and_scripts() -> None:
    text = "👨‍👩‍👧 مرحبا こんにちは"
    assert parse_chat_message({"stream_id": "s", "message": text}).message == text


def test_reactions() -> None:
    assert parse_reaction({"stream_id": "s", "emoji": "👍"}).emoji == "👍"
    for bad in ["👍👍", "", "a", None, 3]:
        assert "emoji" in invalid(parse_reaction, {"stream_id": "s", "emoji": bad})


def test_ban_payload() -> None:
    assert parse_ban(
        {"stream_id": "s", "target_user_id": "user_xyz789", "reason": "Spam", "duration": 3600}
    ) == ModerationRequest("s", "user_xyz789", "Spam", 3600)
    assert parse_ban({"stream_id": "s", "target_user_id": "u", "duration": None}).duration is None
    assert parse_ban({"stream_id": "s", "target_user_id": "u"}) == ModerationRequest("s", "u", None, None)
    assert parse_ban({"stream_id": "s", "target_user_id": "u", "duration": 60.0}).duration == 60
    assert parse_ban({"stream_id": "s", "target_user_id": "u", "reason": "  "}).reason is None


@pytest.mark.parametrize(
    "extra",
    [
        {"duration": 0},
        {"duration": -5},
        {"duration": 1.5},
        {"duration": True},
        {"duration": "60"},
        {"duration": MAX_DURATION + 1},
        {"reason": 5},
        {"reason": "x" * 201},
        {"reason": "bad\x00"},
        {"target_user_id": ""},
        {"target_user_id": None},
        {"target_user_id": "a\nb"},
    ],
)
def test_bad_ban_payloads(extra: dict[str, object]) -> None:
    payload: dict[str, object] = {"stream_id": "s", "target_user_id": "u", "duration": 10}
    payload.update(extra)
    invalid(parse_ban, payload)


def test_mute_and_targets() -> None:
    assert parse_mute({"stream_id": "s", "target_user_id": "u", "duration": 300}).duration == 300
    assert parse_mute({"stream_id": "s", "target_user_id": "u"}).duration is None
    invalid(parse_mute, {"stream_id": "s", "target_user_id": "u", "duration": 0})
    assert parse_target({"stream_id": "s", "target_user_id": "u"}) == ModerationRequest("s", "u")
    invalid(parse_target, {"stream_id": "s"})


def test_delete_message() -> None:
    assert parse_delete_message({"stream_id": "s", "message_id": "msg_1"}).message_id == "msg_1"
    for bad in [None, "", 7, "x" * 65]:
        invalid(parse_delete_message, {"stream_id": "s", "message_id": bad})


def test_slow_mode() -> None:
    assert parse_slow_mode({"stream_id": "s", "enabled": True, "interval": 5}) == SlowModeRequest("s", True, 5)
    assert parse_slow_mode({"stream_id": "s", "enabled": False, "interval": 99999}) == SlowModeRequest("s", False, 0)
    invalid(parse_slow_mode, {"stream_id": "s", "enabled": True})
    invalid(parse_slow_mode, {"stream_id": "s", "enabled": True, "interval": 3601})
    invalid(parse_slow_mode, {"stream_id": "s", "enabled": 1, "interval": 5})


def test_authenticate() -> None:
    assert parse_authenticate({"token": "t", "app_id": "a"}).app_id == "a"
    invalid(parse_authenticate, {"token": "", "app_id": "a"})
    invalid(parse_authenticate, {"token": "t"})
    invalid(parse_authenticate, None)


def test_identity_fields_are_optional_but_must_match() -> None:
    check_identity({"stream_id": "s"}, ALICE)
    check_identity({"user_id": "user_abc123", "username": "GamerPro"}, ALICE)
    check_identity(None, ALICE)
    for forged in [{"user_id": "user_admin"}, {"username": "Admin"}, {"user_id": 1}]:
        with pytest.raises(PermissionDenied):
            check_identity(forged, ALICE)
