"""engineio_min: a from-scratch asyncio Socket.IO v4 server (Engine.IO 4, Socket.IO 5).

The public surface is this module: ``Server`` (one port: Socket.IO, bare Engine.IO
endpoints, extra HTTP routes), ``Namespace`` and ``Socket`` (what handlers receive),
the HTTP types for routes, and the errors an application raises or catches.
See docs/design/server-api.md.
"""

from __future__ import annotations

from .engine import EngineHandler, EngineOptions, EngineSession
from .errors import AckTimeout, ConnectRefused, DecodeError, EngineIOError, HandshakeError, PayloadTooLarge
from .fanout import LatencyHistogram
from .server import Server
from .socketio import Namespace, Socket, ack_requested
from .transport.http import HttpRequest, HttpResponse

__all__ = [
    "AckTimeout",
    "ConnectRefused",
    "DecodeError",
    "EngineHandler",
    "EngineIOError",
    "EngineOptions",
    "EngineSession",
    "HandshakeError",
    "HttpRequest",
    "HttpResponse",
    "LatencyHistogram",
    "Namespace",
    "PayloadTooLarge",
    "Server",
    "Socket",
    "ack_requested",
]
