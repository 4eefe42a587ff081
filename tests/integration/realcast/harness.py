"""Helpers for realcast integration tests: a real server on 127.0.0.1:0 and real clients.

Clients are python-socketio's ``AsyncClient`` (the interop oracle, never imported by realcast).
Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import urllib.request
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import socketio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from realcast.app import RealcastApp
from realcast.auth import mint_token
from realcast.config import AppConfig, ServerConfig

TIMEOUT = 5.0
SECRET_A = "secret-of-app-a-0123456789abcdef"
SECRET_B = "secret-of-app-b-0123456789abcdef"
API_KEY_A = "api-key-app-a-0123456789"
API_KEY_B = "api-key-app-b-0123456789"
API_KEY_RS = "api-key-app-rs-012345678"
APP_A = AppConfig("app_xyz789", "HS256", SECRET_A, API_KEY_A)  # the seed's app id
APP_B = AppConfig("app_b", "HS256", SECRET_B, API_KEY_B)
STREAM = "stream_qwe456"


@functools.cache
def rsa_pems() -> tuple[str, str]:
    """(private PEM, public PEM), generated once per test run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def app_rs() -> AppConfig:
    return AppConfig("app_rs", "RS256", rsa_pems()[1], API_KEY_RS)


def token(app: AppConfig, user: str, name: str | None = None, **kwargs: Any) -> str:
    if app.jwt_algorithm.startswith("RS"):
        kwargs.setdefault("private_key", rsa_pems()[0])
    return mint_token(app, user, username=name, **kwargs)


class Peer:
    """One Socket.IO client that records every event it receives, per event name."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.queues: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.received: list[tuple[str, Any]] = []
        self.connect_errors: asyncio.Queue[Any] = asyncio.Queue()
        self.disconnected = asyncio.Event()
        self.sio.on("*", self._on_any)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)

    async def _on_any(self, event: str, *args: Any) -> None:
        data = args[0] if len(args) == 1 else list(args)
        self.received.append((event, data))
        self.queues[event].put_nowait(data)

    async def _on_connect_error(self, data: Any) -> None:
        self.connect_errors.put_nowait(data)

    async def _on_disconnect(self, *args: Any) -> None:
        self.disconnected.set()

    async def connect(self, auth: dict[str, Any] | None = None, transports: tuple[str, ...] = ("websocket",)) -> None:
        await asyncio.wait_for(
            self.sio.connect(self.url, auth=auth, transports=list(transports), wait_timeout=TIMEOUT),
            TIMEOUT + 1,
        )

    async def next(self, event: str, timeout: float = TIMEOUT) -> Any:
        """The next ``event`` received (waits for it)."""
        return await asyncio.wait_for(self.queues[event].get(), timeout)

    async def nothing(self, event: str, within: float = 0.5) -> None:
        """Assert that no ``event`` arrives within ``within`` seconds."""
        try:
            data = await asyncio.wait_for(self.queues[event].get(), within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {event}: {data!r}")

    def drain(self, event: str) -> list[Any]:
        """Everything queued for ``event`` so far."""
        q = self.queues[event]
        items = []
        while not q.empty():
            items.append(q.get_nowait())
        return items

    async def call(self, event: str, payload: Any, timeout: float = TIMEOUT) -> Any:
        """Emit with an ack and return the ack's argument."""
        return await self.sio.call(event, payload, timeout=timeout)

    async def emit(self, event: str, payload: Any) -> None:
        await asyncio.wait_for(self.sio.emit(event, payload), TIMEOUT)

    async def close(self) -> None:
        if self.sio.connected:
            await asyncio.wait_for(self.sio.disconnect(), TIMEOUT)


class Harness:
    """A realcast server running in this process, plus client and HTTP helpers."""

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        config = ServerConfig(
            host="127.0.0.1",
            port=0,
            data_dir=data_dir,
            apps=(APP_A, APP_B, app_rs()),
            analytics_interval=0.5,
        )
        self.config = replace(config, **overrides)
        self.app: RealcastApp | None = None
        self.url = ""
        self.peers: list[Peer] = []

    async def start(self) -> None:
        self.app = RealcastApp(self.config)
        port = await self.app.start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for peer in self.peers:
            with contextlib.suppress(Exception):  # best effort at teardown
                await peer.close()
        if self.app is not None:
            await asyncio.wait_for(self.app.stop(), TIMEOUT)

    def peer(self) -> Peer:
        peer = Peer(self.url)
        self.peers.append(peer)
        return peer

    async def user(
        self,
        user: str,
        name: str | None = None,
        app: AppConfig = APP_A,
        transports: tuple[str, ...] = ("websocket",),
        **claims: Any,
    ) -> Peer:
        """A client authenticated in the handshake as ``user``."""
        peer = self.peer()
        await peer.connect({"token": token(app, user, name, **claims), "app_id": app.app_id}, transports)
        await peer.next("authenticated")
        return peer

    async def http(self, method: str, path: str, body: Any = None, api_key: str | None = API_KEY_A) -> tuple[int, Any]:
        """One HTTP request to the backend API; returns (status, decoded JSON body)."""

        def do() -> tuple[int, Any]:
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(self.url + path, data=data, method=method)
            if api_key is not None:
                request.add_header("Authorization", f"Bearer {api_key}")
            if data is not None:
                request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                    return response.status, json.loads(response.read() or b"null")
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read() or b"null")

        return await asyncio.wait_for(asyncio.to_thread(do), TIMEOUT + 1)
