"""realcast.sqlitestore: what only the SQLite store does (WAL, purge on open, schema guard, the
data-directory lock). The behaviour both stores share is in tests/integration/store/."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rc_fakes import FakeClock

from realcast.errors import DataDirInUse, StoreUnavailable
from realcast.sqlitestore import SqliteModerationStore
from realcast.store import Ban, Change, ChangeKind, SlowMode


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteModerationStore]:
    s = SqliteModerationStore.in_data_dir(tmp_path / "data", clock)
    yield s
    await s.close()


async def test_expired_rows_are_purged_from_disk_on_open(tmp_path: Path, clock: FakeClock) -> None:
    first = SqliteModerationStore.in_data_dir(tmp_path, clock)
    await first.ban("a", "s", "u", reason="Spam", duration=3600, moderator_id="m")
    await first.ban("a", "s", "gone", reason=None, duration=5, moderator_id="m")
    await first.close()
    clock.advance(10)
    second = SqliteModerationStore.in_data_dir(tmp_path, clock)
    assert second.get_ban("a", "s", "gone") is None
    await second.close()
    rows = sqlite3.connect(tmp_path / "realcast.sqlite3").execute("SELECT user_id FROM bans").fetchall()
    assert rows == [("u",)]


async def test_an_expired_ban_found_on_read_is_deleted_on_disk(
    store: SqliteModerationStore, tmp_path: Path, clock: FakeClock
) -> None:
    await store.ban("a", "s", "u", reason=None, duration=5, moderator_id="m")
    clock.advance(5)
    assert store.get_ban("a", "s", "u") is None
    rows = sqlite3.connect(tmp_path / "data" / "realcast.sqlite3").execute("SELECT * FROM bans").fetchall()
    assert rows == []


async def test_wal_mode(store: SqliteModerationStore, tmp_path: Path) -> None:
    mode = sqlite3.connect(tmp_path / "data" / "realcast.sqlite3").execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "realcast.sqlite3")
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(RuntimeError, match="newer"):
        SqliteModerationStore(tmp_path / "realcast.sqlite3")


async def test_a_failed_write_raises_store_unavailable_and_changes_nothing(
    store: SqliteModerationStore, tmp_path: Path
) -> None:
    seen: list[Change] = []

    async def listen(change: Change) -> None:
        seen.append(change)

    store.add_listener(listen)
    # Another connection holds the write lock past busy_timeout's reach: made short for the test.
    store._db.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(tmp_path / "data" / "realcast.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await store.ban("a", "s", "u", reason=None, duration=None, moderator_id="m")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert caught.value.as_payload()["type"] == "service_unavailable"
    assert store.get_ban("a", "s", "u") is None and seen == []
    await store.ban("a", "s", "u", reason=None, duration=None, moderator_id="m")
    assert store.get_ban("a", "s", "u") is not None
    assert [c.kind for c in seen] == [ChangeKind.BAN]


# --- the data-directory lock -------------------------------------------------------------------


async def test_a_second_store_on_the_same_directory_is_refused_until_the_first_closes(
    store: SqliteModerationStore, tmp_path: Path
) -> None:
    with pytest.raises(DataDirInUse) as caught:
        SqliteModerationStore.in_data_dir(tmp_path / "data")
    assert caught.value.pid == os.getpid()
    assert f"data directory {tmp_path / 'data'} is in use by another realcast process (pid {os.getpid()})" in str(
        caught.value
    )
    await store.close()
    again = SqliteModerationStore.in_data_dir(tmp_path / "data")
    await again.close()


def test_the_lock_is_held_against_another_process_and_freed_when_it_exits(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # A child process opens the store, reports, and waits for a line on stdin before exiting.
    script = (
        "import sys, asyncio\n"
        "from pathlib import Path\n"
        "from realcast.sqlitestore import SqliteModerationStore\n"
        f"s = SqliteModerationStore.in_data_dir(Path({str(data_dir)!r}))\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    root = Path(__file__).resolve().parents[3]
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with pytest.raises(DataDirInUse, match=rf"\(pid {child.pid}\)"):
            SqliteModerationStore.in_data_dir(data_dir)
    finally:
        assert child.stdin is not None
        child.stdin.close()  # EOF: the child exits without closing its store; the kernel frees the lock
        child.wait(timeout=10)
    mine = SqliteModerationStore.in_data_dir(data_dir)  # would raise DataDirInUse if the lock outlived the child
    mine._db.close()
    assert mine._lock is not None
    mine._lock.release()


def test_changes_survive_json() -> None:
    ban = Ban("a", "s", "u", "Spam", 1.5, None, "m")
    for change in [
        Change(ChangeKind.BAN, "a", "s", "u", ban),
        Change(ChangeKind.UNBAN, "a", "s", "u", None),
        Change(ChangeKind.SLOW_MODE, "a", "s", None, SlowMode("a", "s", 5, 2.0)),
        Change(ChangeKind.SLOW_MODE, "a", "s", None, None),
    ]:
        assert Change.from_dict(json.loads(json.dumps(change.as_dict()))) == change


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ([], "must be an object"),
        ({"kind": "explode", "app_id": "a", "stream_id": "s", "user_id": "u"}, "unknown change kind"),
        ({"kind": "ban", "app_id": 1, "stream_id": "s", "user_id": "u", "record": None}, "string app_id"),
        ({"kind": "ban", "app_id": "a", "stream_id": "s", "user_id": None, "record": None}, "needs a user_id"),
        ({"kind": "slow_mode", "app_id": "a", "stream_id": "s", "user_id": "u", "record": None}, "no user_id"),
        ({"kind": "ban", "app_id": "a", "stream_id": "s", "user_id": "u", "record": None}, "needs a record"),
        ({"kind": "unban", "app_id": "a", "stream_id": "s", "user_id": "u", "record": {}}, "carries no record"),
        ({"kind": "mute", "app_id": "a", "stream_id": "s", "user_id": "u", "record": {"x": 1}}, "bad mute record"),
        (
            {
                "kind": "ban", "app_id": "a", "stream_id": "s", "user_id": "u",
                "record": {"app_id": "a", "stream_id": "s", "user_id": "other", "reason": None,
                           "created_at": 1.0, "expires_at": None, "moderator_id": "m"},
            },
            "another key",
        ),
        (
            {
                "kind": "slow_mode", "app_id": "a", "stream_id": "s", "user_id": None,
                "record": {"app_id": "a", "stream_id": "s", "interval": "5", "updated_at": 1.0},
            },
            "bad interval",
        ),
    ],
)
def test_malformed_changes_are_refused(data: object, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Change.from_dict(data)
