"""The private services start, answer, and can be restarted (the fault tests rely on that)."""

from __future__ import annotations

import asyncpg
import redis

from tests.services import PostgresServer, RedisServer


def test_redis_answers_and_restarts(redis_server: RedisServer, fresh_redis_url: str) -> None:
    client = redis.Redis.from_url(fresh_redis_url)
    client.set("k", "v")
    assert client.get("k") == b"v"
    assert client.info("server")["redis_version"].startswith("7.")
    redis_server.stop()
    redis_server.start()
    assert client.get("k") is None  # no persistence: a restart is a clean slate
    client.close()


async def test_postgres_answers(postgres_server: PostgresServer, fresh_database_url: str) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        assert (await conn.fetchval("SHOW server_version")).startswith("15")
        await conn.execute("CREATE TABLE t (x int)")
        await conn.execute("INSERT INTO t VALUES (1)")
        assert await conn.fetchval("SELECT count(*) FROM t") == 1
    finally:
        await conn.close()
