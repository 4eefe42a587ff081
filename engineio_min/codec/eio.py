"""Engine.IO protocol 4 packets: encode and decode one packet.

Layer: codec (pure; no I/O, no asyncio, no logging, no clock). Imports only the
standard library and ``engineio_min.errors``.

Wire forms (SPEC §2.4):

* text packet: the type digit followed by the payload, e.g. ``4hello``, ``2``,
  ``3probe``; an empty message is ``4``;
* binary packet (always a MESSAGE, no type digit): raw bytes in a WebSocket
  binary frame, or ``b`` + standard padded base64 as a polling record
  (bytes ``01 02 03 04`` -> ``bAQIDBA==``).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from engineio_min.errors import DecodeError

__all__ = [
    "BINARY_PREFIX",
    "CLOSE_TEXT",
    "EIO_VERSION",
    "MESSAGE_PREFIX",
    "NOOP_TEXT",
    "PING_PROBE_TEXT",
    "PING_TEXT",
    "POLLING_CLOSE_REPLY",
    "PONG_PROBE_TEXT",
    "UPGRADE_TEXT",
    "EioPacket",
    "EioType",
    "decode_eio",
    "encode_eio",
    "encode_eio_polling",
]


class EioType(IntEnum):
    """Engine.IO packet types (SPEC §2.4)."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


@dataclass(frozen=True, slots=True)
class EioPacket:
    """One Engine.IO packet.

    ``data`` is ``str`` for every text packet, and ``bytes`` only for a binary
    MESSAGE.
    """

    type: EioType
    data: str | bytes = ""


# The protocol revision this codec speaks: the ``EIO`` query parameter of a handshake.
EIO_VERSION: Final[str] = "4"

# Prebuilt packets the transports send to many sessions (STYLE §8.6). Every Engine.IO
# wire literal lives here; the layers above import them instead of spelling them.
PING_TEXT: Final[str] = "2"
PONG_PROBE_TEXT: Final[str] = "3probe"
NOOP_TEXT: Final[str] = "6"
CLOSE_TEXT: Final[str] = "1"
# The upgrade handshake on the probing WebSocket: the client's "2probe", then its "5".
PING_PROBE_TEXT: Final[str] = "2probe"
UPGRADE_TEXT: Final[str] = "5"
# The first character of a text MESSAGE: the hot receive path tests it without decoding.
MESSAGE_PREFIX: Final[str] = "4"
# The last answer of a server-closed polling session: a noop and the close in one payload
# (a polling payload's record separator is "\x1e", codec.payload.SEPARATOR).
POLLING_CLOSE_REPLY: Final[str] = NOOP_TEXT + "\x1e" + CLOSE_TEXT

# Index by type value: a tuple lookup is cheaper than str(int(type)).
_TYPE_DIGITS: Final[tuple[str, ...]] = tuple(str(t.value) for t in EioType)
# Map the first character of a text packet to its type; a dict miss means
# "not 0-6" without a separate range check.
_DIGIT_TYPES: Final[dict[str, EioType]] = {str(t.value): t for t in EioType}
_MESSAGE: Final = EioType.MESSAGE
# A polling record that starts with it is a binary MESSAGE in base64.
BINARY_PREFIX: Final[str] = "b"
_BINARY_PREFIX: Final = BINARY_PREFIX


def _check_binary(packet_type: EioType, data: bytes) -> bytes:
    if packet_type != _MESSAGE:
        raise ValueError(f"only a MESSAGE can carry binary data, not {packet_type.name}")
    # Tolerate bytearray/memoryview from callers; bytes(x) is x for exact bytes.
    return bytes(data)


def encode_eio(packet: EioPacket) -> str | bytes:
    """Encode ``packet`` for WebSocket: one packet per WebSocket message.

    Returns:
        ``str`` (type digit + data) to send as a text frame, or the raw
        ``bytes`` of a binary MESSAGE to send as a binary frame.

    Raises:
        ValueError: binary data on a packet that is not a MESSAGE (a caller bug).
    """
    data = packet.data
    if isinstance(data, str):
        return _TYPE_DIGITS[packet.type] + data
    return _check_binary(packet.type, data)


def encode_eio_polling(packet: EioPacket) -> str:
    """Encode ``packet`` as one record of a polling payload.

    Text packets are encoded as by :func:`encode_eio`; a binary MESSAGE becomes
    ``"b"`` followed by standard base64 with ``=`` padding.

    Raises:
        ValueError: binary data on a packet that is not a MESSAGE (a caller bug).
    """
    data = packet.data
    if isinstance(data, str):
        return _TYPE_DIGITS[packet.type] + data
    raw = _check_binary(packet.type, data)
    return _BINARY_PREFIX + binascii.b2a_base64(raw, newline=False).decode("ascii")


def decode_eio(data: str | bytes) -> EioPacket:
    """Decode one Engine.IO packet.

    Args:
        data: ``bytes`` is the payload of a WebSocket binary frame (a binary
            MESSAGE; an empty frame is an empty binary message). ``str`` is a
            WebSocket text frame or one polling record: ``b`` + base64 is a
            binary MESSAGE, otherwise the first character is the type digit.

    Raises:
        DecodeError: empty text, a first character other than ``0``-``6`` or
            ``b``, or invalid base64 (SPEC §2.4: "parse error").
    """
    if not isinstance(data, str):
        # bytes(x) returns x itself for an exact bytes object: no copy.
        return EioPacket(_MESSAGE, bytes(data))
    if not data:
        raise DecodeError("empty Engine.IO packet")
    first = data[0]
    packet_type = _DIGIT_TYPES.get(first)
    if packet_type is not None:
        return EioPacket(packet_type, data[1:])
    if first == _BINARY_PREFIX:
        try:
            # strict_mode rejects characters outside the alphabet, missing or
            # misplaced padding, and data after the padding.
            raw = binascii.a2b_base64(data[1:], strict_mode=True)
        # binascii.Error for bad base64, ValueError for non-ASCII text.
        except ValueError as exc:
            raise DecodeError(f"invalid base64 in binary packet: {exc}") from exc
        return EioPacket(_MESSAGE, raw)
    raise DecodeError(f"invalid Engine.IO packet type {first!r}")
