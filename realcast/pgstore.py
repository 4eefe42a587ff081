"""The cluster's moderation store: PostgreSQL through an asyncpg pool, cached in memory.

Layer: application (realcast); imports asyncpg and realcast's ``store`` and ``errors``.

Every node of a cluster opens the same database. :meth:`PgModerationStore.open` creates or
migrates the schema under a transaction-scoped advisory lock, so nodes that start together
migrate once, one after the other, then loads the cache. A write is one autocommitted statement:
when it returns, PostgreSQL has committed it, and only then is the cache changed and the change
handed to the listeners (which publish it to the other nodes). If PostgreSQL is down or a statement
fails, the write raises :class:`StoreUnavailable` and nothing changes; reads keep answering from
the cache, so chat goes on with the bans already known. The pool reconnects by itself on the
next write once PostgreSQL is back.

Expired bans and mutes vanish from the cache on read (every node does this by the same wall
clock); their rows are deleted by :meth:`PgModerationStore.purge_expired`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import asyncpg

from .errors import ConfigError, StoreUnavailable
from .store import Ban, CachedStore, Change, ChangeKind, Mute, SlowMode

__all__ = ["SCHEMA_VERSION", "PgModerationStore"]

logger = logging.getLogger("realcast.pgstore")

# Any bigint works; it only has to differ from the advisory locks other programs on the same
# database take. It spells "realcast" in ASCII.
_MIGRATION_LOCK: Final = 0x7265616C63617374
CONNECT_TIMEOUT: Final = 5.0  # seconds to open one connection
STATEMENT_TIMEOUT: Final = 5.0  # seconds for one statement: a write never hangs an ack longer
CLOSE_TIMEOUT: Final = 5.0

# Migration N (1-based) takes the schema from version N-1 to N. Append, never edit.
_MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE bans (
        app_id text NOT NULL, stream_id text NOT NULL, user_id text NOT NULL,
        reason text, created_at double precision NOT NULL, expires_at double precision,
        moderator_id text NOT NULL,
        PRIMARY KEY (app_id, stream_id, user_id)
    );
    CREATE TABLE mutes (
        app_id text NOT NULL, stream_id text NOT NULL, user_id text NOT NULL,
        created_at double precision NOT NULL, expires_at double precision, moderator_id text NOT NULL,
        PRIMARY KEY (app_id, stream_id, user_id)
    );
    CREATE TABLE slow_mode (
        app_id text NOT NULL, stream_id text NOT NULL, "interval" integer NOT NULL,
        updated_at double precision NOT NULL,
        PRIMARY KEY (app_id, stream_id)
    );
    """,
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)

# What a failed connect or statement raises: refused or reset sockets (OSError), timeouts,
# server errors (PostgresError, including a lost connection), and client-side states of asyncpg.
_DB_ERRORS: Final = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)

_BANS_SQL: Final = "SELECT app_id, stream_id, user_id, reason, created_at, expires_at, moderator_id FROM bans"
_MUTES_SQL: Final = "SELECT app_id, stream_id, user_id, created_at, expires_at, moderator_id FROM mutes"
_SLOW_SQL: Final = 'SELECT app_id, stream_id, "interval", updated_at FROM slow_mode'
_PURGE_SQL: Final = {
    # Literal table names: the statement text is fixed, only $1 varies.
    "bans": "DELETE FROM bans WHERE expires_at IS NOT NULL AND expires_at <= $1",
    "mutes": "DELETE FROM mutes WHERE expires_at IS NOT NULL AND expires_at <= $1",
}


def _deleted(status: str) -> int:
    """Rows removed, from a ``DELETE n`` command status."""
    return int(status.rsplit(" ", 1)[-1])


async def _migrate(conn: Any) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`, once, however many nodes start together."""
    async with conn.transaction():
        # Held until this transaction ends: a second node waits here, then finds the work done.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"database_url: the database's moderation schema {version} is newer than this realcast's"
                f" ({SCHEMA_VERSION}); upgrade realcast"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            await conn.execute(_MIGRATIONS[number - 1])
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
        if version < SCHEMA_VERSION:
            logger.info("moderation schema migrated from version %d to %d", version, SCHEMA_VERSION)


class PgModerationStore(CachedStore):
    """Bans, mutes and slow mode shared by every node through one PostgreSQL database.

    Args:
        dsn: ``postgresql://user[:password]@host[:port]/database``.
        clock: wall-clock seconds since the epoch (the same on every node, give or take NTP).
        pool_size: at most this many connections; moderation writes are rare, so a few suffice.
    """

    def __init__(self, dsn: str, clock: Callable[[], float] = time.time, *, pool_size: int = 4) -> None:
        super().__init__(clock)
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: Any = None
        # Changes applied while a reload reads the database, re-applied over its snapshot.
        self._during_reload: list[Change] | None = None

    async def open(self) -> None:
        """Connect, create or migrate the schema, delete expired rows, and load the cache.

        Raises:
            StoreUnavailable: PostgreSQL cannot be reached or refused the schema.
            ConfigError: the database holds a newer schema than this realcast knows.
        """
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._pool_size,
                timeout=CONNECT_TIMEOUT,
                command_timeout=STATEMENT_TIMEOUT,
            )
            async with self._pool.acquire() as conn:
                await _migrate(conn)
        except _DB_ERRORS as exc:
            await self.close()
            raise StoreUnavailable(f"cannot open the moderation database: {_describe(exc)}") from exc
        except BaseException:
            await self.close()
            raise
        try:
            await self.purge_expired()
            await self.reload()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except (TimeoutError, *_DB_ERRORS):
            pool.terminate()  # a connection stuck on a dead server must not hold up shutdown

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise StoreUnavailable("the moderation database is not open")
        return self._pool

    async def _run(self, method: str, sql: str, *args: object) -> Any:
        """``pool.<method>(sql, *args)`` (autocommitted); any database failure -> StoreUnavailable."""
        pool = self._require_pool()
        try:
            return await getattr(pool, method)(sql, *args, timeout=STATEMENT_TIMEOUT)
        except _DB_ERRORS as exc:
            logger.warning("moderation database write failed: %s", _describe(exc))
            raise StoreUnavailable() from exc

    # --- cache ------------------------------------------------------------------------------

    def apply(self, change: Change) -> None:
        super().apply(change)
        if self._during_reload is not None:
            self._during_reload.append(change)

    async def reload(self) -> None:
        """Replace the cache with one consistent snapshot of the three tables.

        Raises:
            StoreUnavailable: the database could not be read; the cache is left as it was.
        """
        pool = self._require_pool()
        self._during_reload = []
        try:
            try:
                async with pool.acquire(timeout=CONNECT_TIMEOUT) as conn, conn.transaction(
                    isolation="repeatable_read", readonly=True
                ):
                    bans: Sequence[Any] = await conn.fetch(_BANS_SQL)
                    mutes: Sequence[Any] = await conn.fetch(_MUTES_SQL)
                    slow: Sequence[Any] = await conn.fetch(_SLOW_SQL)
            except _DB_ERRORS as exc:
                logger.warning("moderation reload failed: %s", _describe(exc))
                raise StoreUnavailable() from exc
            self._fill(
                (Ban(*row) for row in bans if self._is_live(row["expires_at"])),
                (Mute(*row) for row in mutes if self._is_live(row["expires_at"])),
                (SlowMode(*row) for row in slow),
            )
            # What this node applied while the snapshot was read may be newer than the snapshot.
            for change in self._during_reload:
                super().apply(change)
        finally:
            self._during_reload = None

    async def purge_expired(self) -> int:
        now = self._clock()
        removed = 0
        for sql in _PURGE_SQL.values():
            removed += _deleted(await self._run("execute", sql, now))
        self._expired_from_cache()
        return removed

    # --- writes -----------------------------------------------------------------------------

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
        await self._run(
            "execute",
            "INSERT INTO bans VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (app_id, stream_id, user_id) DO UPDATE"
            " SET reason = excluded.reason, created_at = excluded.created_at, expires_at = excluded.expires_at,"
            " moderator_id = excluded.moderator_id",
            app_id, stream_id, user_id, reason, ban.created_at, ban.expires_at, moderator_id,
        )
        await self._committed(Change(ChangeKind.BAN, app_id, stream_id, user_id, ban))
        return ban

    async def _lift(self, kind: ChangeKind, table: str, app_id: str, stream_id: str, user_id: str) -> bool:
        # The database, not this node's cache, says whether there was something to lift: the
        # cache may be behind another node's ban.
        rows: Sequence[Any] = await self._run(
            "fetch",
            f"DELETE FROM {table} WHERE app_id = $1 AND stream_id = $2 AND user_id = $3"  # table: a literal
            " RETURNING expires_at",
            app_id, stream_id, user_id,
        )
        await self._committed(Change(kind, app_id, stream_id, user_id, None))
        return any(self._is_live(row["expires_at"]) for row in rows)

    async def unban(self, app_id: str, stream_id: str, user_id: str) -> bool:
        return await self._lift(ChangeKind.UNBAN, "bans", app_id, stream_id, user_id)

    async def mute(
        self, app_id: str, stream_id: str, user_id: str, *, duration: int | None, moderator_id: str
    ) -> Mute:
        mute = self._new_mute(app_id, stream_id, user_id, duration, moderator_id)
        await self._run(
            "execute",
            "INSERT INTO mutes VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (app_id, stream_id, user_id) DO UPDATE"
            " SET created_at = excluded.created_at, expires_at = excluded.expires_at,"
            " moderator_id = excluded.moderator_id",
            app_id, stream_id, user_id, mute.created_at, mute.expires_at, moderator_id,
        )
        await self._committed(Change(ChangeKind.MUTE, app_id, stream_id, user_id, mute))
        return mute

    async def unmute(self, app_id: str, stream_id: str, user_id: str) -> bool:
        return await self._lift(ChangeKind.UNMUTE, "mutes", app_id, stream_id, user_id)

    async def set_slow_mode(self, app_id: str, stream_id: str, interval: int | None) -> SlowMode | None:
        slow = None if interval is None else SlowMode(app_id, stream_id, interval, self._clock())
        if slow is None:
            await self._run("execute", "DELETE FROM slow_mode WHERE app_id = $1 AND stream_id = $2", app_id, stream_id)
        else:
            await self._run(
                "execute",
                "INSERT INTO slow_mode VALUES ($1, $2, $3, $4) ON CONFLICT (app_id, stream_id) DO UPDATE"
                ' SET "interval" = excluded."interval", updated_at = excluded.updated_at',
                app_id, stream_id, slow.interval, slow.updated_at,
            )
        await self._committed(Change(ChangeKind.SLOW_MODE, app_id, stream_id, None, slow))
        return slow


def _describe(exc: BaseException) -> str:
    """A one-line reason for logs and start-up errors; never the DSN (it may hold a password)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
