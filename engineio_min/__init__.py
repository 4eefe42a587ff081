"""engineio_min: a from-scratch asyncio Socket.IO v4 server (Engine.IO 4, Socket.IO 5).

The public surface is this module's ``__all__``, exactly what docs/design/server-api.md
documents: ``Server`` (one port: Socket.IO, bare Engine.IO endpoints, extra HTTP routes),
``Namespace`` and ``Socket`` (what handlers receive), ``ack_requested``, the HTTP types for
routes, and the two errors an application raises or catches (``ConnectRefused``,
``AckTimeout``). Lower layers are documented in their modules and imported from there:
``engineio_min.adapter`` / ``engineio_min.redis_adapter`` (rooms and broadcast),
``engineio_min.engine`` (bare Engine.IO sessions for ``Server.mount_engine``),
``engineio_min.errors`` (the whole exception tree), ``engineio_min.codec`` (the pure codec)
and ``engineio_min.testing`` (hypothesis strategies, with the ``testing`` extra).
"""

from __future__ import annotations

from .errors import AckTimeout, ConnectRefused
from .fanout import LatencyHistogram
from .server import Server
from .socketio import Namespace, Socket, ack_requested
from .transport.http import HttpRequest, HttpResponse

__all__ = [
    "AckTimeout",
    "ConnectRefused",
    "HttpRequest",
    "HttpResponse",
    "LatencyHistogram",
    "Namespace",
    "Server",
    "Socket",
    "ack_requested",
]
