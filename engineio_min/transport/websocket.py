"""WebSocket transport on the ``websockets`` sans-I/O ``ServerProtocol``.

Layer: transport. Takes over a TCP connection from the HTTP front door after an
``Upgrade: websocket`` request. Incoming bytes go through ``ServerProtocol`` (framing,
masking, control frames, size limit); complete messages go to the current
``WsHandler``. Outgoing Engine.IO packets are framed here by ``text_frame`` /
``binary_frame`` and written straight to the asyncio transport: server frames are
unmasked and we never negotiate permessage-deflate, so one framed ``bytes`` object can be
written to every recipient of a broadcast. ``ServerProtocol`` only ever writes control
frames of its own (pong, close), always whole, so the two writers never interleave inside
a frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final, Protocol

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from .http import HttpConnection, HttpRequest

__all__ = ["WsConnection", "WsHandler", "binary_frame", "text_frame"]

logger = logging.getLogger("engineio_min.websocket")

# RFC 6455 section 7.4.1 close codes we use.
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_INVALID_DATA: Final = 1007
CLOSE_POLICY: Final = 1008
CLOSE_TOO_BIG: Final = 1009


def _frame(opcode_byte: int, payload: bytes) -> bytes:
    """An unmasked, final server frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((opcode_byte, n)) + payload
    if n < 65536:
        return bytes((opcode_byte, 126)) + n.to_bytes(2, "big") + payload
    return bytes((opcode_byte, 127)) + n.to_bytes(8, "big") + payload


def text_frame(text: str) -> bytes:
    """Frame an Engine.IO text packet."""
    return _frame(0x81, text.encode())


def binary_frame(data: bytes) -> bytes:
    """Frame an Engine.IO binary message."""
    return _frame(0x82, data)


class WsHandler(Protocol):
    """Receives what arrives on a WebSocket connection."""

    def ws_message(self, conn: WsConnection, data: str | bytes) -> None:
        """One complete message: str for text, bytes for binary."""

    def ws_closed(self, conn: WsConnection) -> None:
        """The connection is gone (either side closed it, or it broke)."""


class WsConnection(asyncio.Protocol):
    """One WebSocket connection; ``handler`` may be swapped (upgrade probe -> session)."""

    __slots__ = (
        "_fragment_opcode", "_fragments", "_protocol", "closed", "handler", "lost_callback",
        "remote_addr", "transport",
    )

    def __init__(self, handler: WsHandler, max_message_size: int) -> None:
        self.handler: WsHandler = handler
        self._protocol = ServerProtocol(max_size=max_message_size)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.remote_addr = ""
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self.lost_callback: Callable[[asyncio.Transport], None] | None = None

    @classmethod
    def accept(
        cls, http: HttpConnection, request: HttpRequest, handler: WsHandler, max_message_size: int,
    ) -> WsConnection | None:
        """Complete the opening handshake on ``http``'s socket and take it over.

        Returns None (after answering with an HTTP error and closing) when the request is
        not a valid WebSocket handshake.
        """
        conn = cls(handler, max_message_size)
        transport = http.transport
        assert transport is not None
        # ServerProtocol's parser starts by reading the HTTP request itself; our front door
        # already parsed it, so hand it the request again in its canonical form.
        target = request.path + ("?" + request.raw_query if request.raw_query else "")
        head = [f"GET {target} HTTP/1.1"]
        head.extend(f"{key}: {value}" for key, value in request.headers.items())
        conn._protocol.receive_data(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        parsed = [e for e in conn._protocol.events_received() if isinstance(e, Request)]
        if not parsed:
            transport.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            transport.close()
            return None
        response = conn._protocol.accept(parsed[0])
        conn._protocol.send_response(response)
        for data in conn._protocol.data_to_send():
            if data:
                transport.write(data)
        if response.status_code != 101:
            transport.close()
            return None
        conn.transport = transport
        conn.remote_addr = http.remote_addr
        conn.lost_callback = http.lost_callback
        transport.set_protocol(conn)
        return conn

    # -- asyncio.Protocol -------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        protocol = self._protocol
        protocol.receive_data(data)
        for event in protocol.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
            if self.closed:
                break
        self._flush_protocol()

    def eof_received(self) -> bool | None:
        self._protocol.receive_eof()
        self._flush_protocol()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost_callback is not None and self.transport is not None:
            self.lost_callback(self.transport)
        if not self.closed:
            self.closed = True
            self.handler.ws_closed(self)

    # -- sending ----------------------------------------------------------------
    def write(self, frame: bytes) -> None:
        """Write an already framed message (see ``text_frame``)."""
        if not self.closed and self.transport is not None:
            self.transport.write(frame)

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Start the closing handshake; the TCP connection ends soon after."""
        if self.closed:
            return
        self.closed = True
        try:
            self._protocol.send_close(code, reason)
        except Exception:  # already closing: just drop the socket below
            logger.debug("send_close on a closing WebSocket", exc_info=True)
        self._flush_protocol()
        if self.transport is not None:
            # Do not wait for the peer's close frame: the session is over for us.
            loop = asyncio.get_running_loop()
            transport = self.transport
            loop.call_later(1.0, transport.abort)
        self.handler.ws_closed(self)

    def abort(self) -> None:
        """Drop the TCP connection at once (slow consumer, shutdown deadline)."""
        if self.transport is not None:
            self.transport.abort()
        if not self.closed:
            self.closed = True
            self.handler.ws_closed(self)

    # -- internals --------------------------------------------------------------
    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        data = bytes(frame.data)
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not frame.fin:
                self._fragment_opcode = opcode
                self._fragments = [data]
                return
            self._deliver(opcode, data)
        elif opcode is Opcode.CONT:
            if self._fragment_opcode is None:
                self.close(CLOSE_PROTOCOL_ERROR, "unexpected continuation")
                return
            self._fragments.append(data)
            if frame.fin:
                opcode, self._fragment_opcode = self._fragment_opcode, None
                data, self._fragments = b"".join(self._fragments), []
                self._deliver(opcode, data)
        elif opcode is Opcode.CLOSE:
            self.closed = True
            self.handler.ws_closed(self)

    def _deliver(self, opcode: Opcode, payload: bytes) -> None:
        if opcode is Opcode.TEXT:
            try:
                text = payload.decode()
            except UnicodeDecodeError:
                self.close(CLOSE_INVALID_DATA, "invalid UTF-8")
                return
            self.handler.ws_message(self, text)
        else:
            self.handler.ws_message(self, bytes(payload))

    def _flush_protocol(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self._protocol.data_to_send():
            if data:
                transport.write(data)
            elif not transport.is_closing():
                # An empty chunk means "close the TCP connection" (websockets' convention).
                transport.close()
        if self._protocol.state is not State.OPEN and not self.closed:
            # Protocol errors (bad frame, too big): ServerProtocol already sent its close frame.
            self.closed = True
            self.handler.ws_closed(self)
