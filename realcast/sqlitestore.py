"""The single-process moderation store: SQLite in the data directory.

Layer: application (realcast); imports the standard library (``sqlite3``) and realcast's
``store``, ``dirlock`` and ``errors``.

Writes are one small autocommitted statement in WAL mode, a few hundred microseconds, so they run
inline on the event loop: the methods are ``async`` only to share :class:`ModerationStore`'s
interface with the PostgreSQL store. Only moderation actions (at most 20 per minute per
connection) and expiry write. An expired ban or mute found on read is also deleted on disk.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from .dirlock import DataDirLock
from .errors import StoreUnavailable
from .store import Ban, CachedStore, Change, ChangeKind, Mute, SlowMode

__all__ = ["DB_FILE", "SqliteModerationStore"]

DB_FILE: Final = "realcast.sqlite3"
_SCHEMA_VERSION: Final = 1
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS bans (
    app_id TEXT NOT NULL, stream_id TEXT NOT NULL, user_id TEXT NOT NULL,
    reason TEXT, created_at REAL NOT NULL, expires_at REAL, moderator_id TEXT NOT NULL,
    PRIMARY KEY (app_id, stream_id, user_id)
);
CREATE TABLE IF NOT EXISTS mutes (
    app_id TEXT NOT NULL, stream_id TEXT NOT NULL, user_id TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL, moderator_id TEXT NOT NULL,
    PRIMARY KEY (app_id, stream_id, user_id)
);
CREATE TABLE IF NOT EXISTS slow_mode (
    app_id TEXT NOT NULL, stream_id TEXT NOT NULL, interval INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (app_id, stream_id)
);
"""
_TABLES: Final = {ChangeKind.BAN: "bans", ChangeKind.MUTE: "mutes"}


class SqliteModerationStore(CachedStore):
    """Bans, mutes and slow mode, durable in one SQLite file and cached in memory.

    Opened (schema created, cache loaded) by the constructor; :meth:`open` has nothing left to do.

    Args:
        path: the database file, or ``":memory:"`` (tests).
        clock: wall-clock seconds since the epoch.
        lock: the data directory's lock, released by :meth:`close`.
    """

    def __init__(
        self, path: Path | str, clock: Callable[[], float] = time.time, *, lock: DataDirLock | None = None
    ) -> None:
        super().__init__(clock)
        self._lock = lock
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across process crashes in WAL mode (only an OS crash or power loss
        # can lose the last commits), at a fraction of FULL's fsync cost.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > _SCHEMA_VERSION:
            self._db.close()
            raise RuntimeError(f"{path}: database schema {version} is newer than this realcast")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        self._load()

    @classmethod
    def in_data_dir(cls, data_dir: Path, clock: Callable[[], float] = time.time) -> SqliteModerationStore:
        """Lock ``data_dir`` for this process and open (creating if needed) its database.

        Raises:
            DataDirInUse: another process has the directory open.
        """
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = DataDirLock(data_dir)
        try:
            return cls(data_dir / DB_FILE, clock, lock=lock)
        except BaseException:
            lock.release()
            raise

    async def open(self) -> None:
        """Nothing to do: the constructor opened the database."""

    async def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            self._lock.release()

    async def reload(self) -> None:
        self._load()

    def _load(self) -> None:
        self._purge()
        db = self._db
        self._fill(
            (Ban(*row) for row in db.execute(
                "SELECT app_id, stream_id, user_id, reason, created_at, expires_at, moderator_id FROM bans"
            )),
            (Mute(*row) for row in db.execute(
                "SELECT app_id, stream_id, user_id, created_at, expires_at, moderator_id FROM mutes"
            )),
            (SlowMode(*row) for row in db.execute("SELECT app_id, stream_id, interval, updated_at FROM slow_mode")),
        )

    def _write(self, sql: str, params: tuple[object, ...]) -> int:
        """Run one statement; a failure (disk full, I/O error, locked) becomes StoreUnavailable."""
        try:
            return self._db.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise StoreUnavailable() from exc

    def _purge(self) -> int:
        now = self._clock()
        removed = 0
        for table in _TABLES.values():
            removed += self._write(
                f"DELETE FROM {table} WHERE expires_at IS NOT NULL AND expires_at <= ?",  # table: a literal
                (now,),
            )
        self._expired_from_cache()
        return removed

    async def purge_expired(self) -> int:
        return self._purge()

    def _delete(self, kind: ChangeKind, key: tuple[str, str, str]) -> int:
        return self._write(
            f"DELETE FROM {_TABLES[kind]} WHERE app_id = ? AND stream_id = ? AND user_id = ?",  # table: a literal
            key,
        )

    def _on_expired(self, kind: ChangeKind, key: tuple[str, str, str]) -> None:
        # A read must not fail on a disk problem: the row stays for purge_expired to retry.
        with contextlib.suppress(StoreUnavailable):
            self._delete(kind, key)

    async def ban(
        self,
        app_id: str,
        stream_id: str,
        user_id: str,
        *,
        reason: str | None,
        duration: int | None,
        moderator_id: str,
    ) -> Ban:
        ban = self._new_ban(app_id, stream_id, user_id, reason, duration, moderator_id)
        self._write(
            "INSERT OR REPLACE INTO bans VALUES (?, ?, ?, ?, ?, ?, ?)",
            (app_id, stream_id, user_id, reason, ban.created_at, ban.expires_at, moderator_id),
        )
        await self._committed(Change(ChangeKind.BAN, app_id, stream_id, user_id, ban))
        return ban

    async def unban(self, app_id: str, stream_id: str, user_id: str) -> bool:
        active = self.get_ban(app_id, stream_id, user_id) is not None
        if self._delete(ChangeKind.BAN, (app_id, stream_id, user_id)):
            await self._committed(Change(ChangeKind.UNBAN, app_id, stream_id, user_id, None))
        return active

    async def mute(
        self, app_id: str, stream_id: str, user_id: str, *, duration: int | None, moderator_id: str
    ) -> Mute:
        mute = self._new_mute(app_id, stream_id, user_id, duration, moderator_id)
        self._write(
            "INSERT OR REPLACE INTO mutes VALUES (?, ?, ?, ?, ?, ?)",
            (app_id, stream_id, user_id, mute.created_at, mute.expires_at, moderator_id),
        )
        await self._committed(Change(ChangeKind.MUTE, app_id, stream_id, user_id, mute))
        return mute

    async def unmute(self, app_id: str, stream_id: str, user_id: str) -> bool:
        active = self.get_mute(app_id, stream_id, user_id) is not None
        if self._delete(ChangeKind.MUTE, (app_id, stream_id, user_id)):
            await self._committed(Change(ChangeKind.UNMUTE, app_id, stream_id, user_id, None))
        return active

    async def set_slow_mode(self, app_id: str, stream_id: str, interval: int | None) -> SlowMode | None:
        if interval is None:
            self._write("DELETE FROM slow_mode WHERE app_id = ? AND stream_id = ?", (app_id, stream_id))
            await self._committed(Change(ChangeKind.SLOW_MODE, app_id, stream_id, None, None))
            return None
        slow = SlowMode(app_id, stream_id, interval, self._clock())
        self._write(
            "INSERT OR REPLACE INTO slow_mode VALUES (?, ?, ?, ?)",
            (app_id, stream_id, interval, slow.updated_at),
        )
        await self._committed(Change(ChangeKind.SLOW_MODE, app_id, stream_id, None, slow))
        return slow
