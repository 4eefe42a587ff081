"""realcast.store: durable bans, mutes and slow mode with expiry on read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from rc_fakes import FakeClock

from realcast.store import ModerationStore


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> ModerationStore:
    s = ModerationStore.in_data_dir(tmp_path / "data", clock)
    yield s  # type: ignore[misc]
    s.close()


def test_ban_is_active_until_it_expires(store: ModerationStore, clock: FakeClock) -> None:
    ban = store.ban("a", "s", "u", reason="Spam", duration=60, moderator_id="m")
    assert ban.expires_at == clock.now + 60 and ban.duration == 60
    assert store.get_ban("a", "s", "u") == ban
    clock.advance(59.9)
    assert store.get_ban("a", "s", "u") is not None
    clock.advance(0.1)
    assert store.get_ban("a", "s", "u") is None


def test_bans_are_scoped_by_app_and_stream(store: ModerationStore) -> None:
    store.ban("a", "s", "u", reason=None, duration=None, moderator_id="m")
    assert store.get_ban("a", "s", "u") is not None
    assert store.get_ban("b", "s", "u") is None
    assert store.get_ban("a", "t", "u") is None
    assert store.get_ban("a", "s", "v") is None


def test_permanent_ban_and_unban(store: ModerationStore, clock: FakeClock) -> None:
    ban = store.ban("a", "s", "u", reason="x", duration=None, moderator_id="m")
    assert ban.expires_at is None and ban.duration is None
    clock.advance(10 * 365 * 24 * 3600)
    assert store.get_ban("a", "s", "u") is not None
    assert store.unban("a", "s", "u") is True
    assert store.get_ban("a", "s", "u") is None
    assert store.unban("a", "s", "u") is False


def test_reban_replaces(store: ModerationStore) -> None:
    store.ban("a", "s", "u", reason="one", duration=10, moderator_id="m")
    store.ban("a", "s", "u", reason="two", duration=None, moderator_id="m2")
    ban = store.get_ban("a", "s", "u")
    assert ban is not None and (ban.reason, ban.expires_at, ban.moderator_id) == ("two", None, "m2")
    assert len(store.bans("a", "s")) == 1


def test_everything_survives_reopening(tmp_path: Path, clock: FakeClock) -> None:
    first = ModerationStore.in_data_dir(tmp_path, clock)
    first.ban("a", "s", "u", reason="Spam", duration=3600, moderator_id="m")
    first.ban("a", "s", "gone", reason=None, duration=5, moderator_id="m")
    first.mute("a", "s", "v", duration=None, moderator_id="m")
    first.set_slow_mode("a", "s", 7)
    first.close()
    clock.advance(10)
    second = ModerationStore.in_data_dir(tmp_path, clock)
    ban = second.get_ban("a", "s", "u")
    assert ban is not None and ban.reason == "Spam" and ban.duration == 3600
    assert second.get_ban("a", "s", "gone") is None  # expired while closed
    assert second.get_mute("a", "s", "v") is not None
    slow = second.get_slow_mode("a", "s")
    assert slow is not None and slow.interval == 7
    second.close()
    # Expired rows were purged from disk on open.
    rows = sqlite3.connect(tmp_path / "realcast.sqlite3").execute("SELECT user_id FROM bans").fetchall()
    assert rows == [("u",)]


def test_unban_is_durable(tmp_path: Path, clock: FakeClock) -> None:
    first = ModerationStore.in_data_dir(tmp_path, clock)
    first.ban("a", "s", "u", reason=None, duration=None, moderator_id="m")
    first.unban("a", "s", "u")
    first.close()
    second = ModerationStore.in_data_dir(tmp_path, clock)
    assert second.get_ban("a", "s", "u") is None
    second.close()


def test_wal_mode(store: ModerationStore, tmp_path: Path) -> None:
    mode = sqlite3.connect(tmp_path / "data" / "realcast.sqlite3").execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)


def test_mutes_expire_and_unmute(store: ModerationStore, clock: FakeClock) -> None:
    mute = store.mute("a", "s", "u", duration=300, moderator_id="m")
    assert mute.duration == 300
    assert store.get_mute("a", "s", "u") == mute
    assert store.unmute("a", "s", "u") is True
    assert store.get_mute("a", "s", "u") is None
    store.mute("a", "s", "u", duration=1, moderator_id="m")
    clock.advance(1)
    assert store.get_mute("a", "s", "u") is None
    assert store.unmute("a", "s", "u") is False


def test_slow_mode_on_and_off(store: ModerationStore) -> None:
    assert store.get_slow_mode("a", "s") is None
    assert store.set_slow_mode("a", "s", 5) is not None
    slow = store.get_slow_mode("a", "s")
    assert slow is not None and slow.interval == 5
    assert store.get_slow_mode("b", "s") is None
    assert store.set_slow_mode("a", "s", None) is None
    assert store.get_slow_mode("a", "s") is None


def test_list_and_purge(store: ModerationStore, clock: FakeClock) -> None:
    store.ban("a", "s", "u1", reason=None, duration=5, moderator_id="m")
    clock.advance(1)
    store.ban("a", "s", "u2", reason=None, duration=None, moderator_id="m")
    store.ban("a", "t", "u3", reason=None, duration=None, moderator_id="m")
    assert [b.user_id for b in store.bans("a", "s")] == ["u1", "u2"]
    clock.advance(5)
    assert store.purge_expired() == 1
    assert [b.user_id for b in store.bans("a", "s")] == ["u2"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "realcast.sqlite3")
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(RuntimeError, match="newer"):
        ModerationStore(tmp_path / "realcast.sqlite3")
