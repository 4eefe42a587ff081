"""`realcast serve --log-format json`: every stderr line is JSON, and says what an operator needs."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .harness import API_KEY_A, APP_A, SECRET_A, STREAM, Peer, token
from .process import ServerProcess, realcast_env, run_cli

ENV_APP = {"REALCAST_APP_ID": APP_A.app_id, "REALCAST_JWT_SECRET": SECRET_A, "REALCAST_API_KEY": API_KEY_A}
BAD_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLXRoYXQtZG9lcy1ub3QtbWF0Y2g"


def post(url: str, body: dict[str, Any], api_key: str) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


async def connected(url: str, user: str, **claims: Any) -> Peer:
    peer = Peer(url)
    await peer.connect({"token": token(APP_A, user, user.title(), **claims), "app_id": APP_A.app_id})
    await peer.next("authenticated")
    return peer


async def exercise(url: str) -> None:
    """Everything the log should report, done by real clients over 127.0.0.1."""
    mod = await connected(url, "mod", moderator_of=[STREAM])
    spammer = await connected(url, "spammer")
    await spammer.call("chat:join", {"stream_id": STREAM})
    ban = {"stream_id": STREAM, "target_user_id": "spammer", "reason": "spam", "duration": 600}
    assert (await mod.call("moderation:ban", ban))["ok"]
    assert not (await mod.call("moderation:ban", {"stream_id": STREAM, "target_user_id": "mod"}))["ok"]  # refused
    api = f"{url}/api/v1/apps/{APP_A.app_id}/streams/{STREAM}"
    assert await asyncio.to_thread(post, api + "/live", {"title": "Launch"}, API_KEY_A) == 200
    assert await asyncio.to_thread(post, api + "/live", {"title": "x"}, "wrong-key-0123456789") == 401
    # A flood of bad tokens in the handshake, all in well under a second...
    floods = [Peer(url) for _ in range(25)]
    for peer in floods:
        await peer.sio.connect(url, auth={"token": BAD_TOKEN, "app_id": APP_A.app_id}, transports=["websocket"],
                               wait=False)
    for peer in floods:
        await asyncio.wait_for(peer.connect_errors.get(), 5)
        await peer.close()
    await asyncio.sleep(1.1)
    # ...then one more after the second has turned: it brings the "suppressed" summary.
    late = Peer(url)
    await late.sio.connect(url, auth={"token": BAD_TOKEN, "app_id": "app_nope"}, transports=["websocket"], wait=False)
    await asyncio.wait_for(late.connect_errors.get(), 5)
    await late.close()
    await spammer.close()
    await mod.close()


def records(stderr: str) -> list[dict[str, Any]]:
    parsed = []
    for line in stderr.splitlines():
        record = json.loads(line)  # every line, or this fails with the line in the message
        assert isinstance(record, dict), line
        parsed.append(record)
    return parsed


async def test_json_logs_of_a_real_server(tmp_path: Path) -> None:
    env = realcast_env(**ENV_APP, REALCAST_DATA_DIR=str(tmp_path / "data"), REALCAST_LOG_FORMAT="json")
    server = await asyncio.to_thread(ServerProcess, "--log-level", "DEBUG", env=env)
    try:
        await exercise(server.url)
        await asyncio.sleep(0.3)  # the last disconnections reach the log
    finally:
        status, stderr = await asyncio.to_thread(server.stop)
    assert status == 0, stderr
    assert BAD_TOKEN not in stderr and SECRET_A not in stderr and API_KEY_A not in stderr
    logged = records(stderr)
    events = [r.get("event") for r in logged]
    assert events[0] == "configuration" and events[-1] == "stop"
    assert "start" in events and events.index("start") < events.index("api")

    config = logged[0]
    assert 'log_format = "json"' in config["settings"] and config["level"] == "INFO"

    start = next(r for r in logged if r.get("event") == "start")
    assert start["port"] == server.port and start["apps"] == [APP_A.app_id]

    (audit,) = [r for r in logged if r.get("event") == "moderation"]  # the refused ban is not an action
    assert audit["level"] == "INFO" and audit["message"] == "moderation ban"
    who = (audit["action"], audit["moderator"], audit["target"], audit["stream_id"])
    assert who == ("ban", "mod", "spammer", STREAM)
    assert (audit["duration"], audit["reason"], audit["app_id"]) == (600, "spam", APP_A.app_id)

    api = [r for r in logged if r.get("event") == "api"]
    assert [(r["route"], r["status"]) for r in api] == [
        ("POST /api/v1/apps/{app_id}/streams/{stream_id}/live", 200),
        ("POST /api/v1/apps/{app_id}/streams/{stream_id}/live", 401),
    ]

    failures = [r for r in logged if r.get("event") == "auth_failed"]
    summaries = [r for r in logged if r.get("event") == "suppressed" and r["kind"] == "authentication failure"]
    # 26 failures: at most 10 lines a second, the rest counted in the summaries (the flood
    # normally fits in one second: 10 lines, then one summary of 15 before the late line).
    assert len(failures) + sum(r["suppressed"] for r in summaries) == 26
    assert 11 <= len(failures) <= 21 and summaries
    assert all(r["level"] == "WARNING" for r in summaries)
    assert logged.index(summaries[-1]) < logged.index(failures[-1])
    assert all(r["reason"] == "invalid token" and r["during"] == "handshake" for r in failures)
    assert failures[-1]["app_id"] == "app_nope" and failures[-1]["known_app"] is False
    assert failures[0]["known_app"] is True and failures[0]["transport"] == "websocket"

    connects = [r for r in logged if r.get("event") == "connected"]
    disconnects = [r for r in logged if r.get("event") == "disconnected"]
    assert {r["user_id"] for r in connects} == {"mod", "spammer"}
    assert all(r["level"] == "DEBUG" for r in connects + disconnects)
    # python-socketio's disconnect() closes the WebSocket.
    assert sorted((r["user_id"], r["reason"]) for r in disconnects if r["user_id"]) == [
        ("mod", "transport close"),
        ("spammer", "transport close"),
    ]
    assert all(r["sid"] and r["transport"] == "websocket" for r in disconnects)


async def test_info_level_text_logs_leave_out_connections(tmp_path: Path) -> None:
    env = realcast_env(**ENV_APP, REALCAST_DATA_DIR=str(tmp_path / "data"))
    server = await asyncio.to_thread(ServerProcess, "--log-format", "text", env=env)
    try:
        peer = await connected(server.url, "alice")
        await peer.close()
    finally:
        status, stderr = await asyncio.to_thread(server.stop)
    assert status == 0, stderr
    lines = stderr.splitlines()
    assert any(" INFO realcast: realcast started event=start " in line for line in lines), stderr
    assert any(" INFO realcast: realcast stopped event=stop " in line for line in lines), stderr
    assert not any("connected" in line for line in lines), stderr


def test_an_unknown_log_format_is_a_configuration_error(tmp_path: Path) -> None:
    env = realcast_env(**ENV_APP, REALCAST_DATA_DIR=str(tmp_path / "data"), REALCAST_LOG_FORMAT="xml")
    result = run_cli("check-config", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == "realcast: error: REALCAST_LOG_FORMAT must be one of text, json"
    flag = run_cli("check-config", "--log-format", "JSON", env=realcast_env(**ENV_APP))
    assert flag.returncode == 0 and 'log_format = "json"' in flag.stdout
