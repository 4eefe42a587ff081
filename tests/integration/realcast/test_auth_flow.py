"""Authentication over real sockets: handshake auth, `authenticate`, JWT pitfalls, app isolation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import socketio

from .harness import API_KEY_B, APP_A, APP_B, SECRET_A, STREAM, Harness, app_rs, rsa_pems, token


async def refused_at_handshake(rc: Harness, auth: dict[str, Any]) -> dict[str, Any]:
    peer = rc.peer()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await peer.connect(auth)
    data = await asyncio.wait_for(peer.connect_errors.get(), 5)
    assert isinstance(data, dict)
    return data


def b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def claims(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "user_1", "aud": APP_A.app_id, "exp": int(time.time()) + 600}
    base.update(extra)
    return base


async def test_handshake_auth_answers_authenticated(rc: Harness) -> None:
    peer = rc.peer()
    await peer.connect({"token": token(APP_A, "user_abc123", "GamerPro"), "app_id": APP_A.app_id})
    assert await peer.next("authenticated") == {
        "user_id": "user_abc123",
        "username": "GamerPro",
        "app_id": "app_xyz789",
    }


async def test_bad_handshake_token_is_refused_with_connect_error(rc: Harness) -> None:
    data = await refused_at_handshake(rc, {"token": "garbage", "app_id": APP_A.app_id})
    assert data["data"]["type"] == "authentication_failed"


def _forged_hs256_with_public_key() -> str:
    header = b64({"alg": "HS256", "typ": "JWT"})
    body = b64(claims(aud="app_rs"))
    mac = hmac.new(rsa_pems()[1].encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    ("case", "make", "app_id"),
    [
        ("alg none", lambda: jwt.encode(claims(), None, algorithm="none"), "app_xyz789"),
        ("HS256 signed with the RS256 public key", _forged_hs256_with_public_key, "app_rs"),
        ("expired", lambda: jwt.encode(claims(exp=int(time.time()) - 60), SECRET_A, "HS256"), "app_xyz789"),
        ("not yet valid", lambda: jwt.encode(claims(nbf=int(time.time()) + 600), SECRET_A, "HS256"), "app_xyz789"),
        ("wrong app", lambda: token(APP_B, "user_1"), "app_xyz789"),
        ("no exp", lambda: jwt.encode({"sub": "u", "aud": "app_xyz789"}, SECRET_A, "HS256"), "app_xyz789"),
        ("unknown app", lambda: token(APP_A, "user_1"), "app_nope"),
    ],
)
async def test_jwt_pitfalls_are_refused(rc: Harness, case: str, make: Any, app_id: str) -> None:
    data = await refused_at_handshake(rc, {"token": make(), "app_id": app_id})
    assert data["data"]["type"] == "authentication_failed", case


async def test_unknown_app_and_bad_token_get_the_same_refusal(rc: Harness) -> None:
    """App ids cannot be probed: an unknown app reads exactly like a bad token for a real one."""
    forged = jwt.encode(claims(), "not the app's secret, 32 bytes..", "HS256")
    unknown = await refused_at_handshake(rc, {"token": token(APP_A, "user_1"), "app_id": "app_nope"})
    bad = await refused_at_handshake(rc, {"token": forged, "app_id": APP_A.app_id})
    assert unknown == bad
    assert unknown["message"] == "invalid token"
    answers = []
    for auth in ({"token": token(APP_A, "user_1"), "app_id": "app_nope"}, {"token": forged, "app_id": APP_A.app_id}):
        peer = rc.peer()
        await peer.connect()
        ack = await peer.call("authenticate", auth)
        answers.append((ack, await peer.next("unauthorized")))
    assert answers[0] == answers[1]
    assert answers[0][0] == {"ok": False, "error": {"type": "authentication_failed", "message": "invalid token"}}


async def test_rs256_app_accepts_its_own_tokens(rc: Harness) -> None:
    peer = await rc.user("rs_user", "Rs", app=app_rs())
    assert (await peer.call("chat:join", {"stream_id": STREAM}))["ok"] is True


async def test_authenticate_after_connecting(rc: Harness) -> None:
    peer = rc.peer()
    await peer.connect()
    ack = await peer.call("chat:join", {"stream_id": STREAM})
    assert ack["error"]["type"] == "authentication_failed"
    await peer.nothing("error", within=0.2)  # with an ack, the ack carries the error
    await peer.emit("chat:join", {"stream_id": STREAM})
    assert (await peer.next("error"))["type"] == "authentication_failed"
    ack = await peer.call("authenticate", {"token": "bad", "app_id": APP_A.app_id})
    assert ack["ok"] is False
    assert "message" in await peer.next("unauthorized")
    ack = await peer.call("authenticate", {"token": token(APP_A, "u2", "Bob"), "app_id": APP_A.app_id})
    assert ack == {"ok": True, "user_id": "u2", "username": "Bob", "app_id": "app_xyz789"}
    assert await peer.next("authenticated") == {"user_id": "u2", "username": "Bob", "app_id": "app_xyz789"}
    assert (await peer.call("chat:join", {"stream_id": STREAM}))["ok"] is True


async def test_reauthenticating_as_someone_else_is_refused(rc: Harness) -> None:
    peer = await rc.user("u1", "One")
    ack = await peer.call("authenticate", {"token": token(APP_A, "u2", "Two"), "app_id": APP_A.app_id})
    assert ack["ok"] is False
    await peer.next("unauthorized")
    ack = await peer.call("authenticate", {"token": token(APP_A, "u1", "One"), "app_id": APP_A.app_id})
    assert ack["ok"] is True  # a token refresh for the same user


async def test_unauthenticated_connection_is_disconnected_after_the_timeout(tmp_path: Path) -> None:
    rc = Harness(tmp_path, auth_timeout=0.5)
    await rc.start()
    try:
        idle = rc.peer()
        await idle.connect()
        prompt = rc.peer()
        await prompt.connect()
        await prompt.call("authenticate", {"token": token(APP_A, "u1"), "app_id": APP_A.app_id})
        await asyncio.wait_for(idle.disconnected.wait(), 5)
        assert (await idle.next("unauthorized"))["message"] == "authentication timeout"
        await asyncio.sleep(0.3)
        assert prompt.sio.connected
    finally:
        await rc.stop()


async def test_forged_user_id_is_refused(rc: Harness) -> None:
    peer = await rc.user("user_abc123", "GamerPro")
    ack = await peer.call("chat:join", {"stream_id": STREAM, "user_id": "user_admin", "username": "GamerPro"})
    assert ack["error"]["type"] == "permission_denied"
    ack = await peer.call("chat:message", {"stream_id": STREAM, "user_id": "someone_else", "message": "hi"})
    assert ack["error"]["type"] == "permission_denied"
    ack = await peer.call("chat:join", {"stream_id": STREAM, "username": "Admin"})
    assert ack["error"]["type"] == "permission_denied"


async def test_app_a_token_cannot_join_or_hear_app_b(rc: Harness) -> None:
    # An app-A token presented for app B is refused outright...
    data = await refused_at_handshake(rc, {"token": token(APP_A, "mallory"), "app_id": APP_B.app_id})
    assert data["data"]["type"] == "authentication_failed"
    # ...and the same stream id in two apps is two rooms.
    a = await rc.user("alice", "Alice", app=APP_A)
    b = await rc.user("bob", "Bob", app=APP_B)
    assert (await a.call("chat:join", {"stream_id": STREAM}))["ok"]
    assert (await b.call("chat:join", {"stream_id": STREAM}))["ok"]
    assert (await a.call("stream:subscribe", {"stream_id": STREAM}))["ok"]
    await b.call("chat:message", {"stream_id": STREAM, "message": "app B only"})
    assert (await b.next("chat:message"))["message"] == "app B only"
    status, _ = await rc.http("POST", f"/api/v1/apps/app_b/streams/{STREAM}/live", {"title": "B"}, API_KEY_B)
    assert status == 200
    await b.next("stream.live")
    await a.nothing("chat:message")
    await a.nothing("stream.live", within=0.1)
    joined = await rc.user("carol", "Carol", app=APP_A)
    ack = await joined.call("chat:join", {"stream_id": STREAM})
    assert ack["recent_messages"] == []  # app B's history is not app A's
