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
import base64
import binascii
import logging
from collections.abc import Callable
from typing import Final, Protocol

from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.utils import accept_key

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


def _refuse(status: str, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n{extra}\r\n".encode("ascii")


def _has_token(value: str, token: str) -> bool:
    return token in (part.strip().lower() for part in value.split(","))


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
        self._protocol = ServerProtocol(max_size=max_message_size, state=State.OPEN)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.remote_addr = ""
        self._fragments: list[bytes] | None = None
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
        transport = http.transport
        assert transport is not None
        refusal = _check_handshake(request)
        if refusal is not None:
            transport.write(refusal)
            transport.close()
            return None
        # The front door already parsed the request, so the opening handshake is answered
        # here (RFC 6455 section 4.2.2) and ServerProtocol starts in the OPEN state: it then
        # only frames, and keeps no copy of the request's headers for the connection's life.
        key = request.headers["sec-websocket-key"].strip()
        transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key).encode("ascii") + b"\r\n\r\n"
        )
        conn = cls(handler, max_message_size)
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
            fragments = self._fragments
            assert fragments is not None
            fragments.append(data)
            if frame.fin:
                opcode, self._fragment_opcode = self._fragment_opcode, None
                data, self._fragments = b"".join(fragments), None
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
