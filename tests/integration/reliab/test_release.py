"""Issue 12, item 1: a closed connection leaves nothing behind for the cyclic GC.

With the GC disabled, objects in a reference cycle are never freed; so after clients of
every transport came and went (and the server closed some of them itself), no
EngineSession, WsConnection, HttpConnection or SioConnection may still be alive.
Run under asyncio's default loop and under uvloop (what realcast runs on).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import pytest
import socketio
import uvloop

from engineio_min import Server
from engineio_min.engine import EngineSession
from engineio_min.socketio import SioConnection
from engineio_min.transport.http import HttpConnection
from engineio_min.transport.websocket import WsConnection

TRACKED = (EngineSession, WsConnection, HttpConnection, SioConnection)


def live_objects() -> dict[str, int]:
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        if isinstance(obj, TRACKED):
            name = type(obj).__name__
            counts[name] = counts.get(name, 0) + 1
    return counts


async def churn() -> dict[str, int]:
    # The default 25 s heartbeat: a closed session still queued for its ping would be counted.
    server = Server()

    @server.of("/").on("bye")
    def bye(sock: Any) -> None:
        sock.disconnect(close_engine=True)  # the server ends this one

    port = await server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for transports in (["websocket"], ["polling"], ["polling", "websocket"]):
            clients = [socketio.AsyncClient(reconnection=False) for _ in range(5)]
            gone = [asyncio.Event() for _ in clients]
            for client, event in zip(clients, gone, strict=True):
                client.on("disconnect", lambda *_, e=event: e.set())
                await asyncio.wait_for(client.connect(url, transports=transports), 5)
            # Upgrades finish in the background; the test waits for them so both paths run.
            await asyncio.sleep(0.2)
            for index, client in enumerate(clients):
                if index % 2:
                    await client.emit("bye")
                else:
                    await client.disconnect()
            # (AsyncClient.wait() polls once a second; the events are quicker.)
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in gone)), 5)
        # Let the server finish every close (WebSocket close handshakes, polling "1" replies).
        for _ in range(100):
            if server.session_count() == 0 and server.connection_count == 0:
                break
            await asyncio.sleep(0.1)
        assert server.session_count() == 0
        assert server.connection_count == 0
        return live_objects()
    finally:
        await server.shutdown()


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_closed_connections_are_freed_without_the_cyclic_gc(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    gc.collect()
    assert live_objects() == {}
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            left = runner.run(churn())
    finally:
        gc.enable()
    assert left == {}
