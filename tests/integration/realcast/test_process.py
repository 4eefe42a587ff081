"""`realcast serve` / `realcast token` as processes: env config, dev mode, restarts keep moderation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from .harness import API_KEY_A, APP_A, SECRET_A, STREAM, Peer, token
from .process import ServerProcess, realcast_env, run_cli

S = {"stream_id": STREAM}
ENV_APP = {"REALCAST_APP_ID": APP_A.app_id, "REALCAST_JWT_SECRET": SECRET_A, "REALCAST_API_KEY": API_KEY_A}


@pytest.fixture
async def peers() -> AsyncIterator[Callable[[str], Peer]]:
    made: list[Peer] = []

    def make(url: str) -> Peer:
        peer = Peer(url)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        await peer.close()


async def user(make: Callable[[str], Peer], url: str, user_id: str, **claims: object) -> Peer:
    peer = make(url)
    await peer.connect({"token": token(APP_A, user_id, user_id.title(), **claims), "app_id": APP_A.app_id})
    await peer.next("authenticated")
    return peer


async def test_moderation_survives_a_server_restart(tmp_path: Path, peers: Callable[[str], Peer]) -> None:
    env = realcast_env(**ENV_APP, REALCAST_DATA_DIR=str(tmp_path / "data"))
    first = await asyncio.to_thread(ServerProcess, env=env)
    try:
        mod = await user(peers, first.url, "mod", moderator_of=[STREAM])
        spammer = await user(peers, first.url, "spammer")
        loud = await user(peers, first.url, "loud")
        await spammer.call("chat:join", S)
        assert (await mod.call("moderation:ban", {"stream_id": STREAM, "target_user_id": "spammer"}))["ok"]
        assert (await mod.call("moderation:mute", {"stream_id": STREAM, "target_user_id": "loud", "duration": 600}))[
            "ok"
        ]
        assert (await mod.call("moderation:slow-mode", {"stream_id": STREAM, "enabled": True, "interval": 30}))["ok"]
        await spammer.next("user.banned")
        await loud.close()
    finally:
        status, err = await asyncio.to_thread(first.stop)
    assert status == 0, err

    second = await asyncio.to_thread(ServerProcess, env=env)
    try:
        spammer = await user(peers, second.url, "spammer")  # a fresh token, a new process
        ack = await spammer.call("chat:join", S)
        assert ack["error"]["type"] == "permission_denied"
        loud = await user(peers, second.url, "loud")
        joined = await loud.call("chat:join", S)
        assert joined["slow_mode"] == {"enabled": True, "interval": 30}
        ack = await loud.call("chat:message", {"stream_id": STREAM, "message": "still muted?"})
        assert ack["error"]["type"] == "permission_denied"
    finally:
        status, err = await asyncio.to_thread(second.stop)
    assert status == 0, err


async def test_dev_mode_creates_an_app_and_token_mints_for_it(tmp_path: Path, peers: Callable[[str], Peer]) -> None:
    data_dir = tmp_path / "data"
    env = realcast_env()
    server = await asyncio.to_thread(ServerProcess, "--data-dir", str(data_dir), env=env)
    try:
        minted = await asyncio.to_thread(
            run_cli, "token", "--data-dir", str(data_dir), "--app", "app_dev", "--user", "u1", "--name", "One", env=env
        )
        assert minted.returncode == 0, minted.stderr
        peer = peers(server.url)
        await peer.connect({"token": minted.stdout.strip(), "app_id": "app_dev"})
        assert await peer.next("authenticated") == {"user_id": "u1", "username": "One", "app_id": "app_dev"}
    finally:
        status, err = await asyncio.to_thread(server.stop)
    assert status == 0
    assert "dev mode" in err and "realcast token" in err
    assert (data_dir / "dev-app.json").exists()


async def test_toml_config_file_and_flags(tmp_path: Path, peers: Callable[[str], Peer]) -> None:
    config = tmp_path / "realcast.toml"
    config.write_text(
        f"""
[server]
port = 1  # overridden by --port 0
data_dir = "state"

[apps.{APP_A.app_id}]
jwt_secret = "{SECRET_A}"
api_key = "{API_KEY_A}"
rate_limits = {{ chat_per_second = 2 }}
""",
        encoding="utf-8",
    )
    server = await asyncio.to_thread(ServerProcess, "--config", str(config), env=realcast_env())
    try:
        alice = await user(peers, server.url, "alice")
        acks = [await alice.call("chat:message", {"stream_id": STREAM, "message": f"{i}"}) for i in range(3)]
        assert [a["ok"] for a in acks] == [True, True, False]
    finally:
        status, _ = await asyncio.to_thread(server.stop)
    assert status == 0
    assert (tmp_path / "state" / "realcast.sqlite3").exists()


async def test_bad_configuration_exits_2_with_a_message(tmp_path: Path) -> None:
    env = realcast_env(REALCAST_APP_ID="app_x", REALCAST_JWT_SECRET="short", REALCAST_API_KEY=API_KEY_A)
    result = await asyncio.to_thread(run_cli, "serve", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 2
    assert "realcast: error:" in result.stderr and "32 bytes" in result.stderr
