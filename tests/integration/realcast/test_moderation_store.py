"""The moderation store seen from outside: `realcast serve` refuses a second process on one SQLite
data directory, uses PostgreSQL when database_url is set (a ban survives restarting every process),
and refuses moderation with service_unavailable while PostgreSQL is down, chat going on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.services import PostgresServer

from .harness import STREAM, Harness, Peer
from .process import ServerProcess, realcast_env, run_cli
from .test_process import ENV_APP, peers, user

__all__ = ["peers"]  # the fixture, imported for use here

S = {"stream_id": STREAM}


async def test_a_second_process_on_the_same_data_directory_is_refused(
    tmp_path: Path, peers: Callable[[str], Peer]
) -> None:
    data_dir = tmp_path / "data"
    env = realcast_env(**ENV_APP, REALCAST_DATA_DIR=str(data_dir))
    first = await asyncio.to_thread(ServerProcess, env=env)
    try:
        second = await asyncio.to_thread(run_cli, "serve", "--host", "127.0.0.1", "--port", "0", env=env)
        assert second.returncode == 2
        assert (
            f"realcast: error: data directory {data_dir} is in use by another realcast process (pid {first.proc.pid})"
            in second.stderr
        )
        assert "realcast listening" not in second.stdout
        assert first.proc.poll() is None  # the first one serves on
    finally:
        status, err = await asyncio.to_thread(first.stop)
    assert status == 0, err
    # Once the first has exited, the directory is free again.
    third = await asyncio.to_thread(ServerProcess, env=env)
    try:
        # Served a client, so past start-up: a SIGTERM right after the "listening" line can land
        # before serve_forever installs its handler (a start-up race outside the store).
        await user(peers, third.url, "alice")
    finally:
        status, err = await asyncio.to_thread(third.stop)
    assert status == 0, err


async def test_with_database_url_processes_share_a_directory_and_a_ban_survives_restarting_them_all(
    tmp_path: Path, fresh_database_url: str, peers: Callable[[str], Peer]
) -> None:
    env = realcast_env(**ENV_APP, REALCAST_DATA_DIR=str(tmp_path / "data"), REALCAST_DATABASE_URL=fresh_database_url)
    first, second = await asyncio.gather(
        asyncio.to_thread(ServerProcess, env=env), asyncio.to_thread(ServerProcess, env=env)
    )
    try:
        mod = await user(peers, first.url, "mod", moderator_of=[STREAM])
        spammer = await user(peers, first.url, "spammer")
        await spammer.call("chat:join", S)
        ack = await mod.call("moderation:ban", {"stream_id": STREAM, "target_user_id": "spammer"})
        assert ack["ok"] is True
        assert (await mod.call("moderation:slow-mode", {"stream_id": STREAM, "enabled": True, "interval": 30}))["ok"]
        await spammer.next("user.banned")
    finally:
        statuses = await asyncio.gather(asyncio.to_thread(first.stop), asyncio.to_thread(second.stop))
    assert [s for s, _ in statuses] == [0, 0], statuses

    again = await asyncio.to_thread(ServerProcess, env=env)
    try:
        spammer = await user(peers, again.url, "spammer")
        ack = await spammer.call("chat:join", S)
        assert ack["error"]["type"] == "permission_denied"
        other = await user(peers, again.url, "other")
        assert (await other.call("chat:join", S))["slow_mode"] == {"enabled": True, "interval": 30}
    finally:
        status, err = await asyncio.to_thread(again.stop)
    assert status == 0, err


async def test_serve_with_an_unreachable_database_exits_2(tmp_path: Path) -> None:
    from tests.services import free_port

    env = realcast_env(
        **ENV_APP,
        REALCAST_DATA_DIR=str(tmp_path / "data"),
        REALCAST_DATABASE_URL=f"postgresql://realcast:hunter2@127.0.0.1:{free_port()}/realcast",
    )
    result = await asyncio.to_thread(run_cli, "serve", "--host", "127.0.0.1", "--port", "0", env=env)
    assert result.returncode == 2, result.stderr
    assert "realcast: error: database_url: cannot open the moderation database" in result.stderr
    assert "hunter2" not in result.stderr  # the URL's password is never printed


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, free to be stopped (the session's server is shared)."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
async def rc_pg(tmp_path: Path, private_postgres: PostgresServer) -> AsyncIterator[Harness]:
    dsn = await asyncio.to_thread(private_postgres.create_database, "realcast")
    harness = Harness(tmp_path / "data")
    harness.config = replace(harness.config, database_url=dsn)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def test_postgres_down_refuses_moderation_and_chat_goes_on(
    rc_pg: Harness, private_postgres: PostgresServer
) -> None:
    mod = await rc_pg.user("mod", "Mod", moderator_of=[STREAM])
    banned = await rc_pg.user("banned", "Banned")
    viewer = await rc_pg.user("viewer", "Viewer")
    assert (await mod.call("moderation:ban", {"stream_id": STREAM, "target_user_id": "banned"}))["ok"] is True
    for peer in (mod, viewer):
        assert (await peer.call("chat:join", S))["ok"] is True

    await asyncio.to_thread(private_postgres.stop)
    ack = await mod.call("moderation:mute", {"stream_id": STREAM, "target_user_id": "viewer", "duration": 60})
    assert ack["ok"] is False and ack["error"]["type"] == "service_unavailable"
    assert ack["error"]["message"]
    await viewer.nothing("user.muted", within=0.2)  # nothing announced for an action not saved
    # Without an ack the refusal comes as an `error` event.
    await mod.emit("moderation:ban", {"stream_id": STREAM, "target_user_id": "viewer"})
    assert (await mod.next("error"))["type"] == "service_unavailable"
    # Chat goes on, and the ban already known is still enforced.
    assert (await viewer.call("chat:message", {"stream_id": STREAM, "message": "still here"}))["ok"] is True
    assert (await banned.call("chat:join", S))["error"]["type"] == "permission_denied"

    await asyncio.to_thread(private_postgres.start)
    ack = await mod.call("moderation:mute", {"stream_id": STREAM, "target_user_id": "viewer", "duration": 60})
    assert ack["ok"] is True
    assert (await viewer.next("user.muted"))["user_id"] == "viewer"
