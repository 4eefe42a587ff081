"""Found by benchmarks/soak.py (issue 12, delivery loss under churn): a session that closes
in the middle of a loop turn writes what it holds of the open broadcast batch at once. That
must not freeze the batch for everyone else: frames broadcast later in the same turn still
reach the other members.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from engineio_min import Server


async def test_a_member_closing_mid_turn_does_not_cut_the_batch_for_the_others() -> None:
    server = Server()
    nsp = server.of("/")

    @nsp.on("join")
    def join(sock: Any) -> None:
        sock.join("room")

    @nsp.on("burst")
    def burst(sock: Any) -> None:
        nsp.emit("m", 1, to="room")
        for member in nsp.room_members("room"):
            if member is not sock:
                member.disconnect(close_engine=True)  # flushes its share of the open batch now
        nsp.emit("m", 2, to="room")  # same room, same turn: joins the open batch

    await server.start()
    url = f"http://127.0.0.1:{server.port}"
    staying, leaving = socketio.AsyncClient(), socketio.AsyncClient()
    got: asyncio.Queue[int] = asyncio.Queue()
    staying.on("m", got.put_nowait)
    try:
        for client in (staying, leaving):
            await client.connect(url, transports=["websocket"], wait_timeout=5)
            await client.call("join", timeout=5)
        await staying.emit("burst")
        assert [await asyncio.wait_for(got.get(), 5) for _ in range(2)] == [1, 2]
    finally:
        for client in (staying, leaving):
            await client.disconnect()
        await server.shutdown()
