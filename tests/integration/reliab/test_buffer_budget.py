"""Issue 12, item 6: outbound buffers, per connection (1 MiB by default) and process-wide.

The clients here are raw WebSocket clients on sockets with small kernel buffers that stop
reading once joined, so what the server sends them piles up in its transports.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from engineio_min import Server
from engineio_min.budget import SWEEP_INTERVAL
from engineio_min.engine import EngineOptions

MiB = 1024 * 1024
CHUNK = "x" * (64 * 1024)


class Stalled:
    """A Socket.IO client over a raw WebSocket that reads nothing after joining."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sid = ""

    @classmethod
    async def join(cls, server: Server) -> Stalled:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # keep the kernel out of it
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(sock, (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        client = cls(sock)
        await client._read_until(b'"sid"')
        # "40", masked with a zero key (RFC 6455 allows any key)
        await loop.sock_sendall(sock, b"\x81\x82\x00\x00\x00\x0040")
        await client._read_until(b"40{")
        return client

    async def _read_until(self, marker: bytes) -> None:
        loop = asyncio.get_running_loop()
        data = b""
        while marker not in data:
            chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), 5)
            assert chunk, "closed by the server"
            data += chunk

    def close(self) -> None:
        self.sock.close()


def sockets_of(server: Server) -> list[Any]:
    return list(server.of("/").sockets.values())


def shrink_send_buffer(sock: Any) -> None:
    """Make the server's kernel send buffer for ``sock`` small, so bytes stay in the transport."""
    transport = sock.engine.ws.transport
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def stalled_clients(server: Server, count: int) -> tuple[list[Stalled], list[Any]]:
    clients = [await Stalled.join(server) for _ in range(count)]
    socks = sockets_of(server)
    assert len(socks) == count
    for sock in socks:
        shrink_send_buffer(sock)
    return clients, socks


async def send(sock: Any, nbytes: int) -> None:
    """Emit ``nbytes`` to ``sock`` in 64 KiB events, one loop turn each (one write each)."""
    for _ in range(nbytes // len(CHUNK)):
        sock.emit("blob", CHUNK)
        await asyncio.sleep(0)


@pytest.fixture
async def budget_server() -> AsyncIterator[Server]:
    server = Server(max_buffered_bytes=8 * MiB, max_total_buffered_bytes=3 * MiB)
    server.of("/")
    await server.start()
    yield server
    await server.shutdown()


def test_the_default_per_connection_cap_is_at_most_one_mib() -> None:
    assert EngineOptions().max_buffered_bytes <= MiB
    assert Server().options.max_buffered_bytes <= MiB


async def test_a_client_over_the_default_cap_is_cut_off_and_others_are_not() -> None:
    server = Server()
    server.of("/")
    await server.start()
    try:
        clients, (slow, other) = await stalled_clients(server, 2)
        await send(slow, 2 * MiB)
        await send(other, MiB // 2)
        assert slow.engine.closed
        assert not other.engine.closed
        # Counted for monitoring: one cut, over its own cap (not the budget's).
        assert server.endpoints[0].slow_consumer_cuts == 1
        assert server.budget.cut_count == 0
        for client in clients:
            client.close()
    finally:
        await server.shutdown()


async def test_over_the_process_budget_the_largest_backlog_goes_first(budget_server: Server) -> None:
    clients, (big, middle, small) = await stalled_clients(budget_server, 3)
    await send(big, 5 * MiB // 2)
    await send(middle, MiB)
    await send(small, MiB // 2)
    # 4 MiB buffered in all, over the 3 MiB budget: cutting the 2.5 MiB one is enough.
    await asyncio.sleep(SWEEP_INTERVAL * 3)
    assert big.engine.closed
    assert not middle.engine.closed
    assert not small.engine.closed
    assert budget_server.budget.cut_count == 1
    assert budget_server.endpoints[0].slow_consumer_cuts == 1
    for client in clients:
        client.close()


async def test_droppable_broadcasts_skip_backlogged_clients_under_pressure() -> None:
    server = Server(max_total_buffered_bytes=256 * 1024)
    server.of("/")
    await server.start()
    try:
        clients, (stalled, _fresh) = await stalled_clients(server, 2)
        # 192 KiB: under the soft mark (256 KiB) that skips droppable traffic for one client,
        # over half the process budget.
        await send(stalled, 192 * 1024)
        await asyncio.sleep(SWEEP_INTERVAL * 2)
        assert server.budget.pressed
        assert not stalled.engine.closed
        assert stalled.engine.buffered_bytes() < server.options.droppable_buffered_bytes
        nsp = server.of("/")
        # The backlogged client is skipped, the one with nothing buffered is not.
        assert nsp.emit("typing", "x", droppable=True) == 1
        assert nsp.emit("typing", "y", droppable=True) == 1  # joins the same batch: skipped again
        assert nsp.emit("chat", "x") == 2  # what is not droppable still goes to both
        # Counted for monitoring: two frames dropped for the one slow consumer; 4 deliveries in all.
        assert nsp.adapter.dropped_frames == 2
        assert (nsp.adapter.broadcasts, nsp.adapter.deliveries) == (3, 4)
        for client in clients:
            client.close()
    finally:
        await server.shutdown()
