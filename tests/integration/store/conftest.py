"""Both moderation stores behind one fixture: SQLite in a temporary file, PostgreSQL in a fresh
database of the session's private server (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from realcast.pgstore import PgModerationStore
from realcast.sqlitestore import SqliteModerationStore


class Clock:
    """Wall time that moves only when told to (expiry is tested without sleeping)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


AnyStore = SqliteModerationStore | PgModerationStore
OpenStore = Callable[[], Awaitable[AnyStore]]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgres"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> AsyncIterator[OpenStore]:
    """Opens another store on the same database each call (a restart, or a second node)."""
    opened: list[AnyStore] = []
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("fresh_database_url")

    async def make() -> AnyStore:
        store: AnyStore
        if request.param == "postgres":
            store = PgModerationStore(dsn, clock)
        else:
            # No data-directory lock here: two stores on one file stand for two opens in turn, or
            # for two nodes in the apply/reload tests. The lock has its own tests.
            store = SqliteModerationStore(tmp_path / "moderation.sqlite3", clock)
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> AnyStore:
    return await open_store()
