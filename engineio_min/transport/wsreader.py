"""Client WebSocket frames in, messages and control events out: a sans-I/O reader.

Layer: transport; imports only ``websockets.frames`` (and the ``apply_mask`` it uses).

Each frame is decoded and checked by websockets' frame codec (``Frame.parse``: header,
masking, reserved bits and opcodes, control-frame rules, size limit; ``Close.parse`` for
close codes and reasons). This module cuts the byte stream into frames, reassembles
fragmented messages, enforces the size limit over a whole message and turns control
frames into events. A read that holds exactly one whole, final, masked text frame (what a
client sends nearly every time) is decoded here without the generator-driven parser; any
other read, and anything odd in that one, goes through ``Frame.parse``.

Why not websockets' ``ServerProtocol``: it keeps, per connection, a suspended parser
coroutine (three generator frames), a stream reader, a UUID and some twenty attributes,
about 1.4 KB, for the life of the connection. Between frames this reader keeps nothing but
the bytes of a frame still arriving, and a server holding many idle clients pays for
that per client. (permessage-deflate is never negotiated, so no extension ever applies.)
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Final

from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.frames import Close, Frame, Opcode

try:
    from websockets.speedups import apply_mask  # what Frame.parse uses too
except ImportError:  # pragma: no cover - websockets without its C extension
    from websockets.utils import apply_mask

__all__ = [
    "CLOSE_INVALID_DATA",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_TOO_BIG",
    "CloseReceived",
    "FrameReader",
    "PingReceived",
    "ReaderEvent",
    "Violation",
]

# RFC 6455 section 7.4.1
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_INVALID_DATA: Final = 1007
CLOSE_TOO_BIG: Final = 1009


@dataclass(frozen=True, slots=True)
class PingReceived:
    """Answer with a pong carrying ``payload``."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The client started (or answered) the closing handshake; ``code`` is None if it gave none."""

    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Violation:
    """The client broke the protocol: close with ``code``; the reader reads nothing more."""

    code: int
    reason: str


# A complete message (str for text, bytes for binary) or a control event.
ReaderEvent = str | bytes | PingReceived | CloseReceived | Violation


class _Incomplete(Exception):
    """The buffer ends inside a frame; ``needed`` bytes from the frame's start would finish its
    next part."""

    def __init__(self, needed: int) -> None:
        self.needed = needed


class _Cursor:
    """``read_exact`` for ``Frame.parse`` over one buffer."""

    __slots__ = ("data", "pos", "start")

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data
        self.pos = 0
        self.start = 0  # where the frame being parsed starts

    def read_exact(self, n: int) -> Generator[None, None, bytes | bytearray]:
        end = self.pos + n
        if end > len(self.data):
            raise _Incomplete(end - self.start)
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk
        yield  # a generator, as Frame.parse expects: never reached, it never waits


class FrameReader:
    """Turns the bytes a client sends into messages and control events.

    Args:
        max_message_size: the largest message, in bytes, over all its fragments.
    """

    __slots__ = (
        "_fragment_opcode", "_fragment_size", "_fragments", "_needed", "_pending", "done", "max_message_size",
    )

    def __init__(self, max_message_size: int) -> None:
        self.max_message_size = max_message_size
        self.done = False  # after a close frame or a violation: nothing more is read
        self._pending: bytearray | None = None  # the start of a frame still arriving
        self._needed = 0  # bytes of _pending needed before parsing it again is worth it
        self._fragments: list[bytes] | None = None
        self._fragment_opcode: Opcode | None = None
        self._fragment_size = 0

    def feed(self, data: bytes) -> list[ReaderEvent]:
        """The events that ``data`` completes, in order."""
        if self.done:
            return []
        if self._pending is None and self._fragment_opcode is None:
            text = self._whole_text_frame(data)
            if text is not None:
                return [text]
        buffer: bytes | bytearray = data
        pending = self._pending
        if pending is not None:
            pending += data
            if len(pending) < self._needed:
                return []
            buffer, self._pending = pending, None
        events: list[ReaderEvent] = []
        cursor = _Cursor(buffer)
        while cursor.pos < len(buffer) and not self.done:
            cursor.start = cursor.pos
            try:
                frame = self._parse(cursor)
            except _Incomplete as incomplete:
                self._pending = bytearray(buffer[cursor.start:])
                self._needed = incomplete.needed
                break
            except PayloadTooBig:
                events.append(self._violation(CLOSE_TOO_BIG, "message too big"))
                break
            except ProtocolError as exc:
                events.append(self._violation(CLOSE_PROTOCOL_ERROR, str(exc)))
                break
            event = self._on_frame(frame)
            if event is not None:
                events.append(event)
        return events

    def _whole_text_frame(self, data: bytes) -> str | None:
        """``data`` decoded if it is exactly one valid, final, masked text frame within the
        size limit, else None (then the parser reads it, and reports what is wrong)."""
        if len(data) < 6 or data[0] != 0x81:  # FIN, no reserved bits, text
            return None
        length = data[1] ^ 0x80  # 128 and up: the mask bit was not set
        if length < 126:
            start = 6
        elif length == 126 and len(data) >= 8:
            length = data[2] << 8 | data[3]
            start = 8
        else:
            return None  # 127: a 64-bit length, never this short a read
        if len(data) != start + length or length > self.max_message_size:
            return None
        try:
            return apply_mask(data[start:], data[start - 4:start]).decode()
        except UnicodeDecodeError:
            return None

    def _parse(self, cursor: _Cursor) -> Frame:
        # Control frames (at most 125 bytes) may come between fragments, whatever room is left.
        room = self.max_message_size - self._fragment_size
        parser = Frame.parse(cursor.read_exact, mask=True, max_size=max(room, 125))
        try:
            next(parser)
        except StopIteration as parsed:
            frame: Frame = parsed.value
            return frame
        raise AssertionError("read_exact never waits")  # pragma: no cover

    def _on_frame(self, frame: Frame) -> ReaderEvent | None:
        opcode = frame.opcode
        data = bytes(frame.data)  # already bytes (apply_mask's result): no copy
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if self._fragment_opcode is not None:
                return self._violation(CLOSE_PROTOCOL_ERROR, "expected a continuation frame")
            if not frame.fin:
                self._fragment_opcode = opcode
                self._fragments = [data]
                self._fragment_size = len(data)
                return None
            return self._message(opcode, data)
        if opcode is Opcode.CONT:
            fragments = self._fragments
            if fragments is None or self._fragment_opcode is None:
                return self._violation(CLOSE_PROTOCOL_ERROR, "unexpected continuation frame")
            fragments.append(data)
            self._fragment_size += len(data)
            if not frame.fin:
                return None
            opcode, self._fragment_opcode, self._fragments = self._fragment_opcode, None, None
            self._fragment_size = 0
            return self._message(opcode, b"".join(fragments))
        if opcode is Opcode.PING:
            return PingReceived(data)
        if opcode is Opcode.CLOSE:
            return self._close(data)
        return None  # PONG: we never ping at the WebSocket level, an unsolicited pong is allowed

    def _message(self, opcode: Opcode, payload: bytes) -> ReaderEvent:
        if len(payload) > self.max_message_size:
            return self._violation(CLOSE_TOO_BIG, "message too big")
        if opcode is Opcode.BINARY:
            return payload
        try:
            return payload.decode()
        except UnicodeDecodeError:
            return self._violation(CLOSE_INVALID_DATA, "invalid UTF-8")

    def _close(self, payload: bytes) -> ReaderEvent:
        self.done = True
        if not payload:
            return CloseReceived(None, "")
        try:
            close = Close.parse(payload)
        except UnicodeDecodeError:
            return self._violation(CLOSE_INVALID_DATA, "invalid UTF-8 in close reason")
        except ProtocolError as exc:
            return self._violation(CLOSE_PROTOCOL_ERROR, str(exc))
        return CloseReceived(int(close.code), close.reason)

    def _violation(self, code: int, reason: str) -> Violation:
        self.done = True
        self._pending = None
        self._fragments = None
        return Violation(code, reason)
