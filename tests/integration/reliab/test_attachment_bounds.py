"""Issue 12, item 5: half-received binary attachments are bounded in bytes and in time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio

from engineio_min import Server
from tests.integration.engineio.eio_testkit import EioWs

LIMIT = 100_000
TIMEOUT = 0.5
HEADER_3 = '453-["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]'


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    server = Server(max_attachment_bytes=LIMIT, attachment_timeout=TIMEOUT)

    @server.of("/").on("file")
    def file(sock: Any, *parts: bytes) -> int:
        return sum(len(part) for part in parts)

    await server.start()
    yield server
    await server.shutdown()


async def joined(server: Server) -> EioWs:
    ws, _ = await EioWs.open_session(server.port, path="/socket.io/")
    await ws.send("40")
    assert str(await ws.recv_msg()).startswith("40")
    return ws


async def test_attachments_within_the_limit_arrive_whole(server: Server) -> None:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(f"http://127.0.0.1:{server.port}", transports=["websocket"], wait_timeout=5)
    try:
        size = await client.call("file", (b"a" * 40_000, b"b" * 40_000, b"c" * 19_000), timeout=5)
        assert size == 99_000
    finally:
        await client.disconnect()


async def test_attachments_over_the_byte_limit_close_the_session(server: Server) -> None:
    ws = await joined(server)
    await ws.send(HEADER_3)
    await ws.send(b"x" * 60_000)
    await ws.send(b"y" * 60_000)  # 120,000 > 100,000: not held, the session ends
    await ws.wait_closed(2)
    assert server.session_count() == 0


async def test_attachments_that_stop_arriving_close_the_session_in_time(server: Server) -> None:
    ws = await joined(server)
    await ws.send(HEADER_3)
    started = time.monotonic()
    await ws.send(b"x" * 10)
    await ws.send(b"y" * 10)  # the third never comes
    await ws.wait_closed(TIMEOUT + 2)
    assert TIMEOUT - 0.05 <= time.monotonic() - started <= TIMEOUT + 0.5
    assert server.session_count() == 0


async def test_a_completed_packet_stops_the_clock(server: Server) -> None:
    ws = await joined(server)
    for _ in range(3):  # 3 packets, each finished inside its own deadline
        await ws.send(HEADER_3.replace("453-", "453-7", 1))
        for chunk in (b"1", b"22", b"333"):
            await ws.send(chunk)
        assert await ws.recv_msg() == "437[6]"
    await ws.expect_no_msg(TIMEOUT + 0.3)  # no stale timer fires
    await ws.ws.close()
