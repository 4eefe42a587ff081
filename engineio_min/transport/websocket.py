"""WebSocket transport: the opening handshake, then frames both ways.

Layer: transport. Takes over a TCP connection from the HTTP front door after an
``Upgrade: websocket`` request. Incoming bytes go through ``FrameReader`` (websockets'
frame codec underneath: framing, masking, control frames, size limit); complete messages
go to the current ``WsHandler``. Outgoing Engine.IO packets are framed here by
``text_frame`` / ``binary_frame`` and written straight to the asyncio transport: server
frames are unmasked and we never negotiate permessage-deflate, so one framed ``bytes``
object can be written to every recipient of a broadcast. Control frames we send (pong,
close) are written whole, so they never land inside another frame.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from typing import Final, Protocol

from websockets.utils import accept_key

from .http import HttpConnection, HttpRequest
from .wsreader import CloseReceived, FrameReader, PingReceived

__all__ = ["WsConnection", "WsHandler", "binary_frame", "text_frame"]

# RFC 6455 section 7.4.1 close codes we use (1002, 1007 and 1009 come with the reader).
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_POLICY: Final = 1008
# How long a closed connection waits for the client's close frame before dropping the socket.
CLOSE_GRACE: Final = 1.0


def _refuse(status: str, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n{extra}\r\n".encode("ascii")


def _has_token(value: str, token: str) -> bool:
    value = value.lower()
    if value == token:  # what browsers and most clients send
        return True
    return token in (part.strip() for part in value.split(","))


def _check_handshake(request: HttpRequest) -> bytes | None:
    """The refusal to write for a request that is not a valid opening handshake, else None."""
    headers = request.headers
    if request.method != "GET" or not _has_token(headers.get("upgrade", ""), "websocket") \
            or not _has_token(headers.get("connection", ""), "upgrade"):
        return _refuse("400 Bad Request")
    if headers.get("sec-websocket-version", "").strip() != "13":
        # RFC 6455 section 4.4: tell the client which version we speak.
        return _refuse("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n")
    try:
        raw_key = base64.b64decode(headers.get("sec-websocket-key", "").strip(), validate=True)
    except binascii.Error:
        raw_key = b""
    if len(raw_key) != 16:
        return _refuse("400 Bad Request")
    return None


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


def close_frame(code: int | None, reason: str = "") -> bytes:
    """A close frame; ``code`` None sends none (the answer to a close frame that had none)."""
    if code is None:
        return _frame(0x88, b"")
    # A close frame's payload is at most 125 bytes; cut the reason on a character boundary so
    # that it stays valid UTF-8 (RFC 6455 section 5.5.1).
    text = reason.encode()[:123].decode("utf-8", "ignore").encode()
    return _frame(0x88, code.to_bytes(2, "big") + text)


class WsHandler(Protocol):
    """Receives what arrives on a WebSocket connection."""

    def ws_message(self, conn: WsConnection, data: str | bytes) -> None:
        """One complete message: str for text, bytes for binary."""

    def ws_closed(self, conn: WsConnection) -> None:
        """The connection is gone (either side closed it, or it broke)."""


class WsConnection(asyncio.Protocol):
    """One WebSocket connection; ``handler`` may be swapped (upgrade probe -> session)."""

    __slots__ = ("_reader", "closed", "handler", "lost_callback", "remote_addr", "transport")

    def __init__(self, handler: WsHandler, max_message_size: int) -> None:
        self.handler: WsHandler = handler
        self._reader = FrameReader(max_message_size)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.remote_addr = ""
        self.lost_callback: Callable[[asyncio.Transport], None] | None = None

    @classmethod
    def accept(
        cls, http: HttpConnection, request: HttpRequest, handler: WsHandler, max_message_size: int,
        first_frame: bytes = b"",
    ) -> WsConnection | None:
        """Complete the opening handshake on ``http``'s socket and take it over.

        ``first_frame`` goes out in the same write as the 101 response (one system call and
        one TCP segment fewer per connection). Returns None (after answering with an HTTP
        error and closing) when the request is not a valid WebSocket handshake.
        """
        transport = http.transport
        assert transport is not None
        refusal = _check_handshake(request)
        if refusal is not None:
            transport.write(refusal)
            transport.close()
            return None
        # The front door already parsed the request, so the opening handshake is answered
        # here (RFC 6455 section 4.2.2); the connection then only reads frames (FrameReader)
        # and keeps no copy of the request's headers for its life.
        key = request.headers["sec-websocket-key"].strip()
        transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key).encode("ascii") + b"\r\n\r\n" + first_frame
        )
        conn = cls(handler, max_message_size)
        conn.transport = transport
        conn.remote_addr = http.remote_addr
        conn.lost_callback = http.lost_callback
        transport.set_protocol(conn)
        return conn

    # -- asyncio.Protocol -------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        for event in self._reader.feed(data):
            if isinstance(event, (str, bytes)):
                if not self.closed:
                    self.handler.ws_message(self, event)
            elif isinstance(event, PingReceived):
                self.write(_frame(0x8A, event.payload))
            elif isinstance(event, CloseReceived):
                self._on_close_frame(event)
            else:  # Violation
                self.close(event.code, event.reason)
                return

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

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
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(close_frame(code, reason))
            # Do not wait long for the client's close frame: the session is over for us.
            asyncio.get_running_loop().call_later(CLOSE_GRACE, transport.abort)
        self.handler.ws_closed(self)

    def abort(self) -> None:
        """Drop the TCP connection at once (slow consumer, shutdown deadline)."""
        if self.transport is not None:
            self.transport.abort()
        if not self.closed:
            self.closed = True
            self.handler.ws_closed(self)

    # -- internals --------------------------------------------------------------
    def _on_close_frame(self, event: CloseReceived) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if not self.closed:  # the client started the handshake: answer it (RFC 6455 5.5.1)
                transport.write(close_frame(event.code))
            transport.close()
        if not self.closed:
            self.closed = True
            self.handler.ws_closed(self)
