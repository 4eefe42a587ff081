"""The whole exception tree of engineio_min.

Layer: shared by every layer; imports nothing from the package.

::

    EngineIOError
      ProtocolError          the peer broke the protocol (bad input we received)
        DecodeError          a malformed Engine.IO/Socket.IO packet or polling payload
        PayloadTooLarge      over max_payload / the packet-count limit
      HandshakeError         a bad HTTP request to the Engine.IO endpoint; carries code + http_status
      IllegalTransition      a session state machine was asked for a transition its table does not have
      ConnectRefused         raised by a connect hook to refuse a namespace CONNECT (CONNECT_ERROR)
      AckTimeout             an emit-with-ack got no answer in time (also a TimeoutError)

The codec raises only ``DecodeError`` and ``PayloadTooLarge``; anything else escaping
it is a bug.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar

__all__ = [
    "AckTimeout",
    "ConnectRefused",
    "DecodeError",
    "EngineIOError",
    "HandshakeCode",
    "HandshakeError",
    "IllegalTransition",
    "PayloadTooLarge",
    "ProtocolError",
]


class EngineIOError(Exception):
    """Base class of every error raised by engineio_min."""


class ProtocolError(EngineIOError):
    """The peer sent something the protocol does not allow."""


class DecodeError(ProtocolError, ValueError):
    """A packet or payload could not be decoded."""


class PayloadTooLarge(ProtocolError):
    """A payload is over the configured byte or packet-count limit."""


class HandshakeCode(IntEnum):
    """Engine.IO error codes of a refused HTTP request (the ``code`` of the JSON body)."""

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5


class HandshakeError(EngineIOError):
    """An HTTP request to the Engine.IO endpoint was refused.

    ``code`` is the Engine.IO error code (0-5) sent in the JSON body,
    ``http_status`` the HTTP status (400, or 403 for code 4).
    """

    MESSAGES: ClassVar[dict[int, str]] = {
        0: "Transport unknown",
        1: "Session ID unknown",
        2: "Bad handshake method",
        3: "Bad request",
        4: "Forbidden",
        5: "Unsupported protocol version",
    }

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = HandshakeCode(code)
        self.message = message if message is not None else self.MESSAGES[code]
        self.http_status = 403 if code == HandshakeCode.FORBIDDEN else 400
        super().__init__(f"{self.code}: {self.message}")


class IllegalTransition(EngineIOError):
    """A session state machine (engineio_min.protocol) was driven out of its table.

    ``state`` is the state the machine was in and ``event`` what was asked of it. The
    machines raise it instead of ignoring the request; what the peer sends never raises it
    (a protocol violation by the peer is a close with ``parse error``), so it means the
    layer driving the machine has a bug.
    """

    def __init__(self, state: object, event: str) -> None:
        self.state = state
        self.event = event
        super().__init__(f"{event} is not allowed in state {state}")


class ConnectRefused(EngineIOError):
    """Raise from a namespace connect hook to refuse the client.

    The client receives ``CONNECT_ERROR {"message": message, "data": data}``
    (``data`` left out when None); its Engine.IO connection stays open.
    """

    def __init__(self, message: str, data: Any = None) -> None:
        self.message = message
        self.data = data
        super().__init__(message)


class AckTimeout(EngineIOError, TimeoutError):
    """The peer did not acknowledge an emit within its timeout."""
