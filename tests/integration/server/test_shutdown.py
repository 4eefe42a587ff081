"""Graceful shutdown: SIGTERM closes every session cleanly and the process exits 0."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import socketio

APP = Path(__file__).resolve().parents[2] / "apps" / "conformance.py"


async def start_app() -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(APP), "--port", "0", stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
    assert line.startswith("listening on "), line
    return proc, int(line.rsplit(":", 1)[1])


async def test_sigterm_disconnects_clients_and_exits_cleanly() -> None:
    proc, port = await start_app()
    clients = [socketio.AsyncClient(reconnection=False) for _ in range(3)]
    gone = [asyncio.Event() for _ in clients]
    try:
        for client, event in zip(clients, gone, strict=True):
            client.on("disconnect", lambda *_, e=event: e.set())
        await asyncio.wait_for(clients[0].connect(f"http://127.0.0.1:{port}", transports=["websocket"]), 10)
        await asyncio.wait_for(clients[1].connect(f"http://127.0.0.1:{port}", transports=["polling"]), 10)
        await asyncio.wait_for(clients[2].connect(f"http://127.0.0.1:{port}"), 10)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in gone)), 10)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for client in clients:
            await client.disconnect()
