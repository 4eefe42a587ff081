"""Fixtures shared by every test directory: private redis-server and PostgreSQL instances.

They start lazily (only a session that uses them pays for them) and stop at the end of the session.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.services import PostgresServer, RedisServer

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """A private redis-server shared by the session."""
    return redis_server.url


@pytest.fixture
def fresh_redis_url(redis_server: RedisServer) -> str:
    """The session's redis-server, emptied (FLUSHALL) before the test; restarted first if a test stopped it."""
    import redis

    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """The private PostgreSQL's maintenance database URL (superuser postgres, trust auth)."""
    return postgres_server.dsn


@pytest.fixture
def fresh_database_url(postgres_server: PostgresServer) -> str:
    """A new, empty database of the session's PostgreSQL; restarted first if a test stopped it."""
    try:
        return postgres_server.create_database(f"t{next(_database_numbers)}")
    except Exception:
        postgres_server.start()
        return postgres_server.create_database(f"t{next(_database_numbers)}")
