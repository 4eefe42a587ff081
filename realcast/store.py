"""Durable moderation state: bans, mutes and slow-mode settings in SQLite.

Layer: application (realcast); imports only the standard library (``sqlite3``).

Theory of operation: every row is also held in an in-memory dict that is loaded when the store
opens, and every change is written through to SQLite before the call returns. Reads (made on
every chat message, reaction and join) are therefore dict lookups; writes are one small
autocommitted statement in WAL mode, which only moderation actions (at most 20 per minute per
connection) and lazy expiry perform. Expiry is enforced on read against the injected wall clock:
an expired ban or mute is reported absent and removed from both memory and disk.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

__all__ = ["Ban", "ModerationStore", "Mute", "SlowMode"]

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

_Key = tuple[str, str, str]  # (app_id, stream_id, user_id)


@dataclass(frozen=True, slots=True)
class Ban:
    """A ban of one user from one stream; ``expires_at`` None means permanent."""

    app_id: str
    stream_id: str
    user_id: str
    reason: str | None
    created_at: float
    expires_at: float | None
    moderator_id: str

    @property
    def duration(self) -> int | None:
        """Seconds from creation to expiry, None for permanent."""
        return None if self.expires_at is None else round(self.expires_at - self.created_at)


@dataclass(frozen=True, slots=True)
class Mute:
    """A mute of one user in one stream; ``expires_at`` None means until unmuted."""

    app_id: str
    stream_id: str
    user_id: str
    created_at: float
    expires_at: float | None
    moderator_id: str

    @property
    def duration(self) -> int | None:
        """Seconds from creation to expiry, None for indefinite."""
        return None if self.expires_at is None else round(self.expires_at - self.created_at)


_Restriction = TypeVar("_Restriction", Ban, Mute)


@dataclass(frozen=True, slots=True)
class SlowMode:
    """Slow mode of one stream: each user may send one message per ``interval`` seconds."""

    app_id: str
    stream_id: str
    interval: int
    updated_at: float


class ModerationStore:
    """Bans, mutes and slow mode, durable in SQLite and cached in memory.

    Args:
        path: the database file, or ``":memory:"`` (tests).
        clock: wall-clock seconds since the epoch; expiry is absolute wall time so that it
            survives restarts.
    """

    __slots__ = ("_bans", "_clock", "_db", "_mutes", "_slow")

    def __init__(self, path: Path | str, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across process crashes in WAL mode (only an OS crash or power loss
        # can lose the last commits), at a fraction of FULL's fsync cost.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > _SCHEMA_VERSION:
            raise RuntimeError(f"{path}: database schema {version} is newer than this realcast")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        self._bans: dict[_Key, Ban] = {}
        self._mutes: dict[_Key, Mute] = {}
        self._slow: dict[tuple[str, str], SlowMode] = {}
        self._load()

    @classmethod
    def in_data_dir(cls, data_dir: Path, clock: Callable[[], float] = time.time) -> ModerationStore:
        """Open (creating if needed) ``<data_dir>/realcast.sqlite3``."""
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(data_dir / DB_FILE, clock)

    def close(self) -> None:
        """Close the database; the store must not be used afterwards."""
        self._db.close()

    def _load(self) -> None:
        self.purge_expired()
        for row in self._db.execute(
            "SELECT app_id, stream_id, user_id, reason, created_at, expires_at, moderator_id FROM bans"
        ):
            ban = Ban(*row)
            self._bans[(ban.app_id, ban.stream_id, ban.user_id)] = ban
        for row in self._db.execute(
            "SELECT app_id, stream_id, user_id, created_at, expires_at, moderator_id FROM mutes"
        ):
            mute = Mute(*row)
            self._mutes[(mute.app_id, mute.stream_id, mute.user_id)] = mute
        for row in self._db.execute("SELECT app_id, stream_id, interval, updated_at FROM slow_mode"):
            slow = SlowMode(*row)
            self._slow[(slow.app_id, slow.stream_id)] = slow

    def purge_expired(self) -> int:
        """Delete every expired ban and mute; return how many rows went."""
        now = self._clock()
        removed = 0
        for table in ("bans", "mutes"):
            cur = self._db.execute(
                f"DELETE FROM {table} WHERE expires_at IS NOT NULL AND expires_at <= ?",  # table: a literal
                (now,),
            )
            removed += cur.rowcount
        for cache in (self._bans, self._mutes):
            for key in [k for k, v in cache.items() if v.expires_at is not None and v.expires_at <= now]:
                del cache[key]
        return removed

    def _drop(self, table: str, cache: dict[_Key, Ban] | dict[_Key, Mute], key: _Key) -> None:
        self._db.execute(
            f"DELETE FROM {table} WHERE app_id = ? AND stream_id = ? AND user_id = ?",  # table: a literal
            key,
        )
        cache.pop(key, None)

    def _active(self, table: str, cache: dict[_Key, _Restriction], key: _Key) -> _Restriction | None:
        """The ban or mute at ``key`` unless it has expired, in which case it is removed."""
        record = cache.get(key)
        if record is not None and record.expires_at is not None and record.expires_at <= self._clock():
            self._drop(table, cache, key)
            return None
        return record

    # --- bans ---------------------------------------------------------------------------------

    def ban(
        self,
        app_id: str,
        stream_id: str,
        user_id: str,
        *,
        reason: str | None,
        duration: int | None,
        moderator_id: str,
    ) -> Ban:
        """Ban (or re-ban, replacing the previous ban) ``user_id`` from the stream."""
        now = self._clock()
        ban = Ban(
            app_id,
            stream_id,
            user_id,
            reason,
            now,
            None if duration is None else now + duration,
            moderator_id,
        )
        self._db.execute(
            "INSERT OR REPLACE INTO bans VALUES (?, ?, ?, ?, ?, ?, ?)",
            (app_id, stream_id, user_id, reason, ban.created_at, ban.expires_at, moderator_id),
        )
        self._bans[(app_id, stream_id, user_id)] = ban
        return ban

    def unban(self, app_id: str, stream_id: str, user_id: str) -> bool:
        """Lift a ban; False when there was no active ban."""
        active = self.get_ban(app_id, stream_id, user_id) is not None
        self._drop("bans", self._bans, (app_id, stream_id, user_id))
        return active

    def get_ban(self, app_id: str, stream_id: str, user_id: str) -> Ban | None:
        """The active ban of this user in this stream, or None (expired bans are removed)."""
        return self._active("bans", self._bans, (app_id, stream_id, user_id))

    def bans(self, app_id: str, stream_id: str) -> list[Ban]:
        """Active bans in one stream, oldest first."""
        found = [self.get_ban(*key) for key in list(self._bans) if key[:2] == (app_id, stream_id)]
        return sorted((b for b in found if b is not None), key=lambda b: b.created_at)

    # --- mutes --------------------------------------------------------------------------------

    def mute(self, app_id: str, stream_id: str, user_id: str, *, duration: int | None, moderator_id: str) -> Mute:
        """Mute (or re-mute, replacing the previous mute) ``user_id`` in the stream."""
        now = self._clock()
        mute = Mute(app_id, stream_id, user_id, now, None if duration is None else now + duration, moderator_id)
        self._db.execute(
            "INSERT OR REPLACE INTO mutes VALUES (?, ?, ?, ?, ?, ?)",
            (app_id, stream_id, user_id, mute.created_at, mute.expires_at, moderator_id),
        )
        self._mutes[(app_id, stream_id, user_id)] = mute
        return mute

    def unmute(self, app_id: str, stream_id: str, user_id: str) -> bool:
        """Lift a mute; False when there was no active mute."""
        active = self.get_mute(app_id, stream_id, user_id) is not None
        self._drop("mutes", self._mutes, (app_id, stream_id, user_id))
        return active

    def get_mute(self, app_id: str, stream_id: str, user_id: str) -> Mute | None:
        """The active mute of this user in this stream, or None (expired mutes are removed)."""
        return self._active("mutes", self._mutes, (app_id, stream_id, user_id))

    # --- slow mode ----------------------------------------------------------------------------

    def set_slow_mode(self, app_id: str, stream_id: str, interval: int | None) -> SlowMode | None:
        """Enable slow mode with ``interval`` seconds, or disable it with None."""
        if interval is None:
            self._db.execute("DELETE FROM slow_mode WHERE app_id = ? AND stream_id = ?", (app_id, stream_id))
            self._slow.pop((app_id, stream_id), None)
            return None
        slow = SlowMode(app_id, stream_id, interval, self._clock())
        self._db.execute(
            "INSERT OR REPLACE INTO slow_mode VALUES (?, ?, ?, ?)",
            (app_id, stream_id, interval, slow.updated_at),
        )
        self._slow[(app_id, stream_id)] = slow
        return slow

    def get_slow_mode(self, app_id: str, stream_id: str) -> SlowMode | None:
        """The stream's slow mode, or None when it is off."""
        return self._slow.get((app_id, stream_id))
