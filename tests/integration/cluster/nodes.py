"""Several real ``realcast serve`` processes sharing one Redis (and PostgreSQL): a cluster for tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.integration.realcast.harness import API_KEY_A, APP_A, SECRET_A, Peer, token
from tests.integration.realcast.process import ServerProcess, realcast_env

__all__ = ["Cluster", "http", "user"]


def node_env(redis_url: str, database_url: str | None, node_id: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = realcast_env(
        REALCAST_APP_ID=APP_A.app_id,
        REALCAST_JWT_SECRET=SECRET_A,
        REALCAST_API_KEY=API_KEY_A,
        REALCAST_DEV="false",
        REALCAST_REDIS_URL=redis_url,
        REALCAST_NODE_ID=node_id,
        REALCAST_DATA_DIR=str(data_dir),
        REALCAST_ANALYTICS_INTERVAL="0.5",
        REALCAST_LOG_LEVEL="INFO",
        **extra,
    )
    if database_url is not None:
        env["REALCAST_DATABASE_URL"] = database_url
    return env


class Cluster:
    """``n`` nodes ``n1``..``nN`` on free ports, each with its own data directory."""

    def __init__(self, redis_url: str, database_url: str | None, n: int = 3, **extra: str) -> None:
        self.redis_url = redis_url
        self.database_url = database_url
        self.extra = extra
        self.root = Path(tempfile.mkdtemp(prefix="realcast-cluster-"))
        self.nodes: dict[str, ServerProcess] = {}
        for i in range(1, n + 1):
            self.start(f"n{i}")

    def start(self, node_id: str) -> ServerProcess:
        env = node_env(self.redis_url, self.database_url, node_id, self.root / node_id, **self.extra)
        self.nodes[node_id] = ServerProcess(env=env)
        return self.nodes[node_id]

    def url(self, node_id: str) -> str:
        return self.nodes[node_id].url

    def kill(self, node_id: str) -> None:
        """``kill -9``: the node leaves nothing behind on purpose."""
        proc = self.nodes.pop(node_id).proc
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self, node_id: str) -> tuple[int, str]:
        return self.nodes.pop(node_id).stop()

    def stop_all(self) -> dict[str, tuple[int, str]]:
        return {node_id: self.stop(node_id) for node_id in list(self.nodes)}


async def user(url: str, user_id: str, name: str | None = None, *, peers: list[Peer] | None = None,
               transports: tuple[str, ...] = ("websocket",), **claims: Any) -> Peer:
    """A client of ``url`` authenticated in the handshake as ``user_id`` of the seed's app."""
    peer = Peer(url)
    if peers is not None:
        peers.append(peer)
    await peer.connect({"token": token(APP_A, user_id, name, **claims), "app_id": APP_A.app_id}, transports)
    await peer.next("authenticated")
    return peer


async def http(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One backend API request; returns (status, decoded JSON)."""

    def do() -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {API_KEY_A}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    return await asyncio.to_thread(do)
