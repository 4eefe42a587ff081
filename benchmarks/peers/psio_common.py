"""The minimal chat app shared by the two python-socketio peers.

JWT (HS256, PyJWT; exp, sub, aud = app id) and app_id are checked on connect; `chat:join` joins the room
keyed by stream_id and answers `chat:joined`; `chat:message` is broadcast to the room
(sender included) with a generated message_id and an ISO-8601 timestamp.
Configuration: --port, --host, --app-id (env BENCH_APP_ID), env BENCH_JWT_SECRET.
"""

from __future__ import annotations

import argparse
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import socketio


def parse_args(default_port: int) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", default_port)))
    p.add_argument("--app-id", default=os.environ.get("BENCH_APP_ID", "app_bench"))
    p.add_argument("--ping-interval", type=float, default=25.0, help="seconds")
    p.add_argument("--ping-timeout", type=float, default=20.0, help="seconds")
    return p.parse_args()


def make_server(async_mode: str, args: argparse.Namespace) -> socketio.AsyncServer:
    secret = os.environ.get("BENCH_JWT_SECRET", "bench-secret")
    app_id = args.app_id
    sio = socketio.AsyncServer(
        async_mode=async_mode,
        transports=["websocket"],
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        cors_allowed_origins="*",
    )

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        if not isinstance(auth, dict) or auth.get("app_id") != app_id:
            raise socketio.exceptions.ConnectionRefusedError("invalid app_id")
        try:
            claims = jwt.decode(
                auth.get("token", ""),
                secret,
                algorithms=["HS256"],
                audience=app_id,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise socketio.exceptions.ConnectionRefusedError("authentication failed") from exc
        await sio.save_session(sid, {"user_id": claims["sub"], "username": claims.get("name", claims["sub"])})

    @sio.on("chat:join")
    async def chat_join(sid: str, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("stream_id"), str):
            return
        room = data["stream_id"]
        await sio.enter_room(sid, room)
        online = len(sio.manager.rooms.get("/", {}).get(room, ()))
        await sio.emit("chat:joined", {"stream_id": room, "online_users": online}, to=sid)

    @sio.on("chat:message")
    async def chat_message(sid: str, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            return
        room = data.get("stream_id")
        if room not in sio.rooms(sid):
            return
        sess = await sio.get_session(sid)
        await sio.emit(
            "chat:message",
            {
                "message_id": "msg_" + uuid.uuid4().hex,
                "stream_id": room,
                "user_id": sess["user_id"],
                "username": sess["username"],
                "message": data["message"],
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            },
            room=room,
        )

    return sio
