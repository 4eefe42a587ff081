"""The dashboard's feed: ``/admin`` sign-in and snapshots (python-socketio), and the page's HTTP side."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any

import pytest
import socketio

from .harness import API_KEY_A, API_KEY_B, APP_A, STREAM, TIMEOUT, Harness, token

ADMIN = "/admin"


class AdminClient:
    """A python-socketio client of the ``/admin`` namespace, keeping the snapshots it gets."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.snapshots: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.refusals: asyncio.Queue[Any] = asyncio.Queue()
        self.sio.on("dashboard:snapshot", self.snapshots.put_nowait, namespace=ADMIN)
        self.sio.on("connect_error", self.refusals.put_nowait, namespace=ADMIN)

    async def sign_in(self, auth: dict[str, Any]) -> None:
        await self.sio.connect(self.url, namespaces=[ADMIN], auth=auth, transports=["websocket"], wait=False)

    async def next_snapshot(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.snapshots.get(), TIMEOUT)

    async def snapshot_where(self, check: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The first snapshot for which ``check(snapshot)`` holds (one comes every second)."""
        async with asyncio.timeout(timeout):
            while True:
                snap = await self.snapshots.get()
                if check(snap):
                    return snap

    async def close(self) -> None:
        await asyncio.wait_for(self.sio.disconnect(), TIMEOUT)


@pytest.fixture
async def admins(rc: Harness) -> Any:
    made: list[AdminClient] = []

    def make() -> AdminClient:
        client = AdminClient(rc.url)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def test_api_key_signs_in_and_snapshots_follow_the_streams(rc: Harness, admins: Any) -> None:
    admin = admins()
    await admin.sign_in({"app_id": APP_A.app_id, "api_key": API_KEY_A})
    first = await admin.next_snapshot()
    assert first["app_id"] == APP_A.app_id and first["streams"] == [] and first["cluster"] is False
    assert first["totals"] == {"streams": 0, "viewers": 0, "messages_per_minute": 0, "reactions_per_minute": 0}

    alice = await rc.user("alice")
    bob = await rc.user("bob", transports=("polling",))
    mod = await rc.user("mod", moderator_of=[STREAM])
    for peer in (alice, bob, mod):
        assert (await peer.call("chat:join", {"stream_id": STREAM}))["ok"]
    for text in ("hi", "hello", "o/"):
        assert (await alice.call("chat:message", {"stream_id": STREAM, "message": text}))["ok"]
    assert (await bob.call("reaction:send", {"stream_id": STREAM, "emoji": "❤️"}))["ok"]
    assert (await mod.call("moderation:slow-mode", {"stream_id": STREAM, "enabled": True, "interval": 10}))["ok"]
    mute = {"stream_id": STREAM, "target_user_id": "bob", "duration": 60}
    assert (await mod.call("moderation:mute", mute))["ok"]
    status, _ = await rc.http("POST", f"/api/v1/apps/{APP_A.app_id}/streams/{STREAM}/live", {"title": "Launch"})
    assert status == 200

    snap = await admin.snapshot_where(lambda s: s["streams"] and s["streams"][0]["messages_per_minute"] == 3)
    (stream,) = snap["streams"]
    assert stream["stream_id"] == STREAM and stream["title"] == "Launch" and stream["status"] == "live"
    assert (stream["viewers"], stream["peak_viewers"], stream["reactions_per_minute"]) == (3, 3, 1)
    assert stream["slow_mode"] == {"enabled": True, "interval": 10}
    assert snap["connections"]["by_transport"] == {"polling": 1, "websocket": 2}
    assert snap["connections"]["authenticated"] == 3
    assert [(m["action"], m["moderator"], m["target"]) for m in snap["moderation"]] == [
        ("mute", "mod", "bob"),  # newest first
        ("slow-mode", "mod", None),
    ]
    assert snap["moderation"][0]["duration"] == 60 and snap["moderation"][1]["interval"] == 10

    await alice.close()
    snap = await admin.snapshot_where(lambda s: s["totals"]["viewers"] == 2)
    assert snap["streams"][0]["peak_viewers"] == 3


async def test_each_app_sees_only_itself(rc: Harness, admins: Any) -> None:
    peer = await rc.user("alice")
    assert (await peer.call("chat:join", {"stream_id": STREAM}))["ok"]
    other = admins()
    await other.sign_in({"app_id": "app_b", "api_key": API_KEY_B})
    snap = await other.next_snapshot()
    assert snap["app_id"] == "app_b" and snap["streams"] == [] and snap["connections"]["authenticated"] == 0


async def test_an_admin_token_signs_in(rc: Harness, admins: Any) -> None:
    admin = admins()
    await admin.sign_in({"app_id": APP_A.app_id, "token": token(APP_A, "boss", roles=["admin"])})
    assert (await admin.next_snapshot())["app_id"] == APP_A.app_id


@pytest.mark.parametrize(
    "auth",
    [
        {"app_id": APP_A.app_id, "api_key": API_KEY_B},  # another app's key
        {"app_id": "app_nope", "api_key": API_KEY_A},
        {"app_id": APP_A.app_id, "token": token(APP_A, "alice")},  # not an admin
        {"app_id": APP_A.app_id, "token": token(APP_A, "mod", roles=["moderator"])},
        {"app_id": APP_A.app_id, "token": "not.a.token"},
        {"app_id": APP_A.app_id},
        {"api_key": API_KEY_A},
        {"app_id": ["x"], "api_key": 5},
    ],
)
async def test_everything_else_is_refused_alike(rc: Harness, admins: Any, auth: dict[str, Any]) -> None:
    admin = admins()
    await admin.sign_in(auth)
    refusal = await asyncio.wait_for(admin.refusals.get(), TIMEOUT)
    expected = {"type": "authentication_failed", "message": "invalid credentials"}
    assert refusal == {"message": "invalid credentials", "data": expected}
    assert admin.snapshots.empty()


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


async def test_the_page_and_its_files_are_served_from_the_package(rc: Harness) -> None:
    status, headers, body = await asyncio.to_thread(get, rc.url + "/dashboard")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=UTF-8"
    assert b'<script src="/dashboard/dashboard.js">' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    status, headers, body = await asyncio.to_thread(get, rc.url + "/dashboard/dashboard.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert b'"40" + nsp' in body  # the page's own Socket.IO client
    status, headers, _ = await asyncio.to_thread(get, rc.url + "/dashboard/dashboard.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    status, headers, body = await asyncio.to_thread(get, rc.url + "/dashboard/../pyproject.toml")
    assert status == 404 and body == b'{"error":"not found"}'
