"""realcast.history: the recent-messages ring with deletion by id."""

from __future__ import annotations

import pytest

from realcast.history import ChatHistory, ChatMessage


def msg(i: int) -> ChatMessage:
    return ChatMessage(f"msg_{i:04d}", "s", "u", "U", f"text {i}", "2024-12-09T10:00:00.000Z")


def test_recent_returns_the_newest_oldest_first() -> None:
    h = ChatHistory(retain=500)
    for i in range(60):
        h.append(msg(i))
    recent = h.recent(50)
    assert [m.message_id for m in recent] == [f"msg_{i:04d}" for i in range(10, 60)]


def test_deleted_messages_are_excluded_and_older_ones_fill_in() -> None:
    h = ChatHistory(retain=500)
    for i in range(60):
        h.append(msg(i))
    assert h.delete("msg_0059") == msg(59)
    assert h.delete("msg_0059") is None
    recent = h.recent(50)
    assert len(recent) == 50
    assert "msg_0059" not in [m.message_id for m in recent]
    assert recent[0].message_id == "msg_0009"


def test_retain_bounds_memory_and_deletion_window() -> None:
    h = ChatHistory(retain=3)
    for i in range(5):
        h.append(msg(i))
    assert len(h) == 3
    assert "msg_0001" not in h and "msg_0004" in h
    assert h.delete("msg_0000") is None


def test_payload_shape() -> None:
    assert msg(1).as_payload() == {
        "message_id": "msg_0001",
        "stream_id": "s",
        "user_id": "u",
        "username": "U",
        "message": "text 1",
        "timestamp": "2024-12-09T10:00:00.000Z",
    }


def test_retain_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ChatHistory(retain=0)
