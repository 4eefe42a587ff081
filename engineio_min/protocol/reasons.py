"""Why an Engine.IO session or a Socket.IO socket ended.

Layer: protocol (pure; imports only the standard library).

The values are the reasons the reference implementations report (Engine.IO protocol,
"Session close"; Socket.IO's disconnect reasons), so an application that compares the
``reason`` of a disconnect hook with a string keeps working: a ``StrEnum`` member equals
its value.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CloseReason"]


class CloseReason(StrEnum):
    """Every reason a session or a namespace socket is closed with."""

    # Engine.IO session
    TRANSPORT_CLOSE = "transport close"  # the client closed the transport, or sent "1"
    TRANSPORT_ERROR = "transport error"  # the transport failed (aborted GET, slow consumer, two GETs)
    PARSE_ERROR = "parse error"  # the client broke the protocol
    PING_TIMEOUT = "ping timeout"  # no pong within ping_timeout
    FORCED_CLOSE = "forced close"  # the server closed the session
    SERVER_SHUTDOWN = "server shutting down"  # the server is stopping
    # Socket.IO namespace
    CLIENT_NAMESPACE_DISCONNECT = "client namespace disconnect"  # the client sent DISCONNECT
    SERVER_NAMESPACE_DISCONNECT = "server namespace disconnect"  # the server disconnected the socket
