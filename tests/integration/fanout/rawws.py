"""A minimal raw WebSocket + Engine.IO/Socket.IO client for many-connection tests.

Cheaper than one python-socketio client per connection, so a test can open a thousand.
It speaks just enough: the HTTP upgrade, masked client frames, unmasked server frames,
pong on ping, and Socket.IO CONNECT/EVENT text packets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any


def client_frame(text: str) -> bytes:
    """A masked, final text frame (RFC 6455 section 5.3: clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = bytes((0x81, 0x80 | 126)) + struct.pack("!H", n)
    else:
        head = bytes((0x81, 0x80 | 127)) + struct.pack("!Q", n)
    return head + mask + masked


class RawSocketIOClient:
    """One WebSocket-only Socket.IO client on raw asyncio streams."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.events: list[list[Any]] = []
        self.closed = False

    async def connect(self, port: int, *, rcvbuf: int | None = None, path: str = "/socket.io/") -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        limit = rcvbuf if rcvbuf is not None else 2**16
        self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=limit)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            (f"GET {path}?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
             f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        opening = await self.recv_text()
        assert opening.startswith("0{"), opening
        self.send("40")
        reply = await self.recv_text()
        assert reply.startswith("40{"), reply

    def send(self, text: str) -> None:
        assert self.writer is not None
        self.writer.write(client_frame(text))

    def emit(self, event: str, *args: Any) -> None:
        self.send("42" + json.dumps([event, *args], separators=(",", ":")))

    async def recv_text(self) -> str:
        """The next text frame, answering pings on the way."""
        assert self.reader is not None
        while True:
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                self.closed = True
                raise ConnectionError("closed by server")
            if opcode != 0x1:
                continue
            text = payload.decode()
            if text == "2":
                self.send("3")
                continue
            return text

    async def recv_event(self) -> list[Any]:
        while True:
            text = await self.recv_text()
            if text.startswith("42"):
                event: list[Any] = json.loads(text[2:])
                return event

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
