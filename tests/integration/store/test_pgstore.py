"""PgModerationStore against a real PostgreSQL: schema creation and migration, nodes starting
together, commit before acknowledgement, and PostgreSQL going away and coming back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import pytest

from realcast.errors import ConfigError, StoreUnavailable
from realcast.pgstore import SCHEMA_VERSION, PgModerationStore
from realcast.store import Ban, Change, ChangeKind
from tests.services import PostgresServer

from .conftest import Clock


async def tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await conn.close()


async def test_open_creates_the_schema_in_an_empty_database(fresh_database_url: str) -> None:
    assert await tables(fresh_database_url) == set()
    store = PgModerationStore(fresh_database_url)
    await store.open()
    await store.close()
    assert await tables(fresh_database_url) == {"bans", "mutes", "slow_mode", "schema_version"}
    conn = await asyncpg.connect(fresh_database_url)
    try:
        assert [r["version"] for r in await conn.fetch("SELECT version FROM schema_version")] == [SCHEMA_VERSION]
    finally:
        await conn.close()


async def test_nodes_starting_together_migrate_once(fresh_database_url: str, clock: Clock) -> None:
    stores = [PgModerationStore(fresh_database_url, clock, pool_size=2) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        await stores[0].ban("a", "s", "u", reason=None, duration=None, moderator_id="m")
        await stores[3].reload()
        assert stores[3].get_ban("a", "s", "u") is not None
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    conn = await asyncpg.connect(fresh_database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_version") == 1
    finally:
        await conn.close()


async def test_a_newer_schema_is_refused(fresh_database_url: str) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        await conn.execute("INSERT INTO schema_version VALUES (99)")
    finally:
        await conn.close()
    with pytest.raises(ConfigError, match="schema 99 is newer"):
        await PgModerationStore(fresh_database_url).open()


async def test_a_write_returns_after_its_commit(fresh_database_url: str) -> None:
    store = PgModerationStore(fresh_database_url)
    await store.open()
    observer = await asyncpg.connect(fresh_database_url)
    seen_in_database: list[int] = []

    async def listen(change: Change) -> None:
        # Another session sees only committed rows.
        seen_in_database.append(await observer.fetchval("SELECT count(*) FROM bans WHERE user_id = 'u'"))

    store.add_listener(listen)
    try:
        await store.ban("a", "s", "u", reason=None, duration=None, moderator_id="m")
        assert seen_in_database == [1]
    finally:
        await observer.close()
        await store.close()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, free to be stopped (the session's server is shared)."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


async def test_postgres_down_refuses_writes_keeps_reads_and_recovers(
    private_postgres: PostgresServer, clock: Clock
) -> None:
    dsn = await asyncio.to_thread(private_postgres.create_database, "moderation")
    store = PgModerationStore(dsn, clock)
    await store.open()
    seen: list[Change] = []

    async def listen(change: Change) -> None:
        seen.append(change)

    store.add_listener(listen)
    try:
        await store.ban("a", "s", "known", reason=None, duration=None, moderator_id="m")
        await store.set_slow_mode("a", "s", 5)
        seen.clear()
        await asyncio.to_thread(private_postgres.stop)

        for write in (
            store.ban("a", "s", "new", reason=None, duration=None, moderator_id="m"),
            store.unban("a", "s", "known"),
            store.mute("a", "s", "new", duration=None, moderator_id="m"),
            store.unmute("a", "s", "x"),
            store.set_slow_mode("a", "s", None),
            store.purge_expired(),
            store.reload(),
        ):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as caught:
                await write
            assert time.monotonic() - started < 6  # a clear refusal, never a hang
            assert caught.value.as_payload()["type"] == "service_unavailable"
        # Nothing changed, and reads still answer from the cache.
        assert seen == []
        assert store.get_ban("a", "s", "known") is not None
        assert store.get_ban("a", "s", "new") is None and store.get_mute("a", "s", "new") is None
        slow = store.get_slow_mode("a", "s")
        assert slow is not None and slow.interval == 5

        await asyncio.to_thread(private_postgres.start)
        await store.ban("a", "s", "new", reason=None, duration=None, moderator_id="m")  # the pool reconnects
        assert store.get_ban("a", "s", "new") is not None
        await store.reload()
        assert store.get_ban("a", "s", "known") is not None and store.get_ban("a", "s", "new") is not None
    finally:
        await store.close()


async def test_open_with_postgres_unreachable_is_a_clear_error(private_postgres: PostgresServer) -> None:
    dsn = private_postgres.url_for("postgres")
    await asyncio.to_thread(private_postgres.stop)
    store = PgModerationStore(dsn)
    with pytest.raises(StoreUnavailable, match="cannot open the moderation database"):
        await store.open()
    with pytest.raises(StoreUnavailable):
        await store.ban("a", "s", "u", reason=None, duration=None, moderator_id="m")


async def test_a_change_applied_while_a_reload_reads_is_kept(fresh_database_url: str, clock: Clock) -> None:
    store = PgModerationStore(fresh_database_url, clock)
    await store.open()
    blocker = await asyncpg.connect(fresh_database_url)
    try:
        # Hold the reload's first SELECT on a table lock, so that a change arrives mid-reload.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE bans IN ACCESS EXCLUSIVE MODE")
        reload = asyncio.create_task(store.reload())
        for _ in range(200):
            if await blocker.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the reload never waited for the lock")
        heard = Ban("a", "s", "u", None, clock.now, None, "m")  # another node's ban, newer than the snapshot
        store.apply(Change(ChangeKind.BAN, "a", "s", "u", heard))
        await tx.rollback()
        await reload
        assert store.get_ban("a", "s", "u") == heard
    finally:
        await blocker.close()
        await store.close()
