"""Issue 12, item 8: SIGTERM ends every transport, and stock clients come back.

A deploy stops the server and starts it again on the same port. Clients on every transport
must see their transport close (not a Socket.IO disconnect, which tells the stock clients
to stay away) and reconnect by themselves once the new process listens.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import socketio

APP = Path(__file__).resolve().parents[2] / "apps" / "conformance.py"
TRANSPORTS = (["polling"], ["polling"], ["websocket"], ["polling", "websocket"])


async def start_app(port: int = 0) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(APP), "--port", str(port), stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
    assert line.startswith("listening on "), line
    return proc, int(line.rsplit(":", 1)[1])


class Watched:
    """A stock client with reconnection on, recording its connects and disconnect reasons."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.3,
                                        randomization_factor=0.0)
        self.connects = 0
        self.reasons: list[str] = []
        self.changed = asyncio.Event()
        self.sio.on("connect", self._connected)
        self.sio.on("disconnect", self._disconnected)

    def _connected(self) -> None:
        self.connects += 1
        self.changed.set()

    def _disconnected(self, reason: str = "") -> None:
        self.reasons.append(reason)
        self.changed.set()

    async def until(self, predicate: object, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


async def test_sigterm_then_restart_brings_every_client_back() -> None:
    proc, port = await start_app()
    clients = [Watched() for _ in TRANSPORTS]
    try:
        for client, transports in zip(clients, TRANSPORTS, strict=True):
            await asyncio.wait_for(client.sio.connect(f"http://127.0.0.1:{port}", transports=transports), 10)
        await asyncio.sleep(0.3)  # the upgrading client finishes its upgrade
        proc.send_signal(signal.SIGTERM)
        for client in clients:
            await client.until(lambda c=client: c.reasons, 10)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        for client in clients:
            # The transport closed; "io server disconnect" would mean a Socket.IO disconnect (41).
            assert client.reasons[0] != client.sio.reason.SERVER_DISCONNECT, client.reasons
        proc, _ = await start_app(port)
        for client in clients:
            await client.until(lambda c=client: c.connects >= 2, 15)
        for client in clients:  # and they work: a round trip to the new process
            assert await client.sio.call("message-with-ack", "back", timeout=5) == "back"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 10)
        for client in clients:
            await client.sio.disconnect()
