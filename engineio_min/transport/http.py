"""HTTP/1.1 front door: one asyncio.Protocol per TCP connection.

Layer: transport. Imports asyncio and httptools (the llhttp parser that node uses);
knows nothing about Engine.IO. It parses requests with hard limits, hands each complete
request to a ``RequestHandler`` and writes the responses back in order (keep-alive, no
pipelining ahead of a pending response). A request with ``Upgrade: websocket`` is handed
over whole, with the bytes that followed it, so that the WebSocket layer can take the
socket (``transport.set_protocol``).

Theory of operation: the parser fills ``_Pending`` from its callbacks; on
``on_message_complete`` the request joins ``_queue``. Only the head of the queue is being
answered; its ``Responder`` must be used exactly once (``send``), possibly much later (a
parked long-poll GET). When the peer goes away while a response is owed, the responder's
``on_abort`` callback runs so that the owner (the polling transport) can react.

Deadlines (``HttpTimeouts``), so that a peer cannot hold a socket by sending slowly: a
request's line and headers must all arrive within ``header`` seconds of its first byte
(of the connection opening, for the first request, as nginx's client_header_timeout);
its body within ``body`` seconds of the end of its headers; a keep-alive connection with
no request in progress closes after ``keep_alive`` idle seconds. Nothing is timed while
a response is owed (a parked long-poll GET waits for the heartbeat, not for us). A request
cut off by a deadline is answered ``408`` and the connection closed; an idle one is just
closed. One timer per connection, re-armed only when a deadline moves earlier.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast
from urllib.parse import parse_qsl

import httptools  # type: ignore[import-not-found,unused-ignore]

__all__ = ["HttpConnection", "HttpRequest", "HttpResponse", "HttpTimeouts", "RequestHandler", "Responder"]

logger = logging.getLogger("engineio_min.http")

# Limits. nginx's default large_client_header_buffers is 8 KiB per line; node's
# http server caps all headers at 16 KiB; 100 headers is what Go and h11 allow.
MAX_URL_BYTES: Final = 8 * 1024
MAX_HEADER_BYTES: Final = 16 * 1024
MAX_HEADERS: Final = 100
# Requests queued behind an unanswered one before we stop reading the socket.
MAX_QUEUED_REQUESTS: Final = 8

_REASONS: Final = {
    101: "Switching Protocols", 200: "OK", 204: "No Content", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 413: "Payload Too Large", 414: "URI Too Long", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class HttpTimeouts:
    """HTTP deadlines in seconds (see the module docstring); 0 turns one off."""

    header: float = 10.0  # request line and headers, from the request's first byte
    body: float = 30.0  # the body, from the end of the headers
    keep_alive: float = 60.0  # idle between requests


# What the connection's one timer is waiting for.
_IDLE: Final = 0  # between requests (keep-alive)
_HEADERS: Final = 1  # a request has begun; its headers are not complete
_BODY: Final = 2  # headers complete; the body is not
_ANSWERING: Final = 3  # a response is owed: nothing is timed


@dataclass(slots=True)
class HttpRequest:
    """One parsed HTTP request. Header names are lower-case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    remote_addr: str = ""
    raw_query: str = ""


@dataclass(slots=True)
class HttpResponse:
    """An HTTP response to write; ``body`` as bytes or str (UTF-8)."""

    status: int = 200
    body: bytes | str = b""
    content_type: str = "text/plain; charset=UTF-8"
    headers: dict[str, str] | None = None

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
        """A JSON response (compact encoding)."""
        import msgspec

        return cls(status, msgspec.json.encode(obj), "application/json", headers)

    def encode(self, keep_alive: bool) -> bytes:
        body = self.body.encode() if isinstance(self.body, str) else self.body
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Unknown')}"]
        if self.status != 204:
            lines.append(f"Content-Type: {self.content_type}")
            lines.append(f"Content-Length: {len(body)}")
        if self.headers:
            lines.extend(f"{k}: {v}" for k, v in self.headers.items())
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class RequestHandler(Protocol):
    """What the front door calls for each complete request."""

    def handle_request(self, request: HttpRequest, responder: Responder) -> None:
        """Answer ``request`` now or later through ``responder.send``."""

    def handle_upgrade(self, request: HttpRequest, conn: HttpConnection, rest: bytes) -> None:
        """Take over the connection for ``Upgrade: websocket``; ``rest`` is what followed."""

    def body_limit(self, path: str) -> int:
        """Largest request body accepted for ``path`` (413 above it)."""


class Responder:
    """The one-shot answer slot of a request; ``on_abort`` runs if the peer leaves first."""

    __slots__ = ("_conn", "_keep_alive", "done", "on_abort")

    def __init__(self, conn: HttpConnection, keep_alive: bool) -> None:
        self._conn = conn
        self._keep_alive = keep_alive
        self.done = False
        self.on_abort: Callable[[], None] | None = None

    @property
    def is_connected(self) -> bool:
        return not self._conn.closed

    def send(self, response: HttpResponse, *, close: bool = False) -> None:
        """Write the response (once; later calls are ignored)."""
        if self.done:
            return
        self.done = True
        self.on_abort = None
        self._conn.write_response(self, response, self._keep_alive and not close)


@dataclass(slots=True)
class _Pending:
    url: bytearray = field(default_factory=bytearray)
    headers: dict[str, str] = field(default_factory=dict)
    header_bytes: int = 0
    body: bytearray = field(default_factory=bytearray)
    body_limit: int = 0
    too_large: bool = False


def _parse_query(raw: str) -> dict[str, str]:
    """The query's parameters (the last of a repeated name wins)."""
    if "%" in raw or "+" in raw:
        return dict(parse_qsl(raw, keep_blank_values=True))
    # Nothing to unquote: Engine.IO's own queries ("EIO=4&transport=websocket&sid=...").
    return dict(pair.partition("=")[::2] for pair in raw.split("&") if pair)


class HttpConnection(asyncio.Protocol):
    """HTTP/1.1 server side of one TCP connection."""

    def __init__(self, handler: RequestHandler, timeouts: HttpTimeouts = HttpTimeouts()) -> None:
        self._handler = handler
        self._parser: Any = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.remote_addr = ""
        self.closed = False
        self._pending = _Pending()
        self._queue: deque[tuple[HttpRequest, bool]] = deque()
        self._current: Responder | None = None
        self._paused = False
        self._timeouts = timeouts
        self._phase = _HEADERS
        self._deadline = 0.0  # loop time at which the current phase is over (0: untimed)
        self._timer: asyncio.TimerHandle | None = None
        self._received = False  # a byte of the current request arrived
        self._detached = False
        # Called with the transport when the TCP connection ends, even after a WebSocket
        # took it over (the server keeps a set of open connections for shutdown).
        self.lost_callback: Callable[[asyncio.Transport], None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its interface.
        self.transport = cast(asyncio.Transport, transport)
        peer = self.transport.get_extra_info("peername")
        self.remote_addr = str(peer[0]) if peer else ""
        self._enter(_HEADERS, self._timeouts.header)

    def data_received(self, data: bytes) -> None:
        if self._detached or self.closed:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._start_upgrade(data[upgrade.args[0]:] if upgrade.args else b"")
        except httptools.HttpParserError as exc:
            # httptools wraps what a callback raised; a _Refused carries our status.
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self._fail(refused.status, refused.message)
            else:
                logger.debug("bad HTTP from %s: %s", self.remote_addr, exc)
                self._fail(400, "Bad Request")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._parser = None  # see _start_upgrade
        self._cancel_timer()
        current, self._current = self._current, None  # it points back here: no cycle left
        if current is not None and not current.done and current.on_abort is not None:
            callback, current.on_abort = current.on_abort, None
            callback()
        self._queue.clear()

    # -- httptools callbacks ----------------------------------------------------
    def on_message_begin(self) -> None:
        self._pending = _Pending()
        self._received = True
        if self._phase == _IDLE or self._phase == _ANSWERING:  # (pipelined behind a pending answer)
            self._enter(_HEADERS, self._timeouts.header)

    def on_url(self, url: bytes) -> None:
        self._pending.url += url
        if len(self._pending.url) > MAX_URL_BYTES:
            raise _Refused(414, "URI Too Long")

    def on_header(self, name: bytes, value: bytes) -> None:
        pending = self._pending
        pending.header_bytes += len(name) + len(value)
        if pending.header_bytes > MAX_HEADER_BYTES or len(pending.headers) >= MAX_HEADERS:
            raise _Refused(431, "Request Header Fields Too Large")
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        # Repeated headers are joined as RFC 9110 section 5.3 allows.
        pending.headers[key] = f"{pending.headers[key]}, {text}" if key in pending.headers else text

    def on_headers_complete(self) -> None:
        pending = self._pending
        path = bytes(pending.url).split(b"?", 1)[0].decode("latin-1")
        pending.body_limit = self._handler.body_limit(path)
        length = pending.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > pending.body_limit:
            raise _Refused(413, "Payload Too Large")
        if self._phase == _HEADERS:
            self._enter(_BODY, self._timeouts.body)

    def on_body(self, body: bytes) -> None:
        pending = self._pending
        if len(pending.body) + len(body) > pending.body_limit:
            raise _Refused(413, "Payload Too Large")
        pending.body += body

    def on_message_complete(self) -> None:
        if self._parser.should_upgrade():
            return  # handled by HttpParserUpgrade in data_received
        request = self._build_request()
        self._received = False
        self._phase = _ANSWERING
        self._deadline = 0.0
        self._queue.append((request, bool(self._parser.should_keep_alive())))
        if len(self._queue) > MAX_QUEUED_REQUESTS and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        if self._current is None:
            self._next()

    # -- internals --------------------------------------------------------------
    def _build_request(self) -> HttpRequest:
        pending = self._pending
        raw = bytes(pending.url).decode("latin-1")
        path, _, raw_query = raw.partition("?")
        query = _parse_query(raw_query) if raw_query else {}
        return HttpRequest(
            method=self._parser.get_method().decode("latin-1"),
            path=path,
            query=query,
            headers=pending.headers,
            body=bytes(pending.body),
            remote_addr=self.remote_addr,
            raw_query=raw_query,
        )

    def _next(self) -> None:
        while self._queue and self._current is None and not self.closed:
            request, keep_alive = self._queue.popleft()
            responder = Responder(self, keep_alive)
            self._current = responder
            try:
                self._handler.handle_request(request, responder)
            except Exception:
                logger.exception("request handler failed for %s %s", request.method, request.path)
                responder.send(HttpResponse(500, b""), close=True)
        if self._paused and len(self._queue) < MAX_QUEUED_REQUESTS and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def write_response(self, responder: Responder, response: HttpResponse, keep_alive: bool) -> None:
        if self.closed or self.transport is None or responder is not self._current:
            return
        self.transport.write(response.encode(keep_alive))
        self._current = None
        if not keep_alive:
            self.closed = True
            self.transport.close()
            return
        if self._queue:
            self._next()
        elif self._phase == _ANSWERING:  # not while the next request is arriving (its deadline runs)
            self._enter(_IDLE, self._timeouts.keep_alive)

    def _start_upgrade(self, rest: bytes) -> None:
        request = self._build_request()
        if self._current is not None or self._queue:
            self._fail(400, "Bad Request")
            return
        self._detached = True
        self._cancel_timer()
        # The parser holds our bound callbacks, a reference cycle; nothing is parsed after the
        # upgrade, so let refcounting free this object rather than the cyclic GC.
        self._parser = None
        try:
            self._handler.handle_upgrade(request, self, rest)
        except Exception:
            logger.exception("upgrade handler failed")
            self._fail(500, "Internal Server Error")

    def _fail(self, status: int, message: str) -> None:
        """Answer with an error and close: the parser state is not trustworthy any more."""
        if self.closed or self.transport is None:
            return
        self.closed = True
        # JSON like every other error answer of the server (413, 431, 414, 400 land here).
        self.transport.write(HttpResponse.json({"error": message}, status).encode(keep_alive=False))
        self.transport.close()

    # -- deadlines --------------------------------------------------------------
    def _enter(self, phase: int, seconds: float) -> None:
        """Start ``phase`` with ``seconds`` to finish it (0: untimed)."""
        self._phase = phase
        if seconds <= 0:
            self._deadline = 0.0
            return
        loop = asyncio.get_running_loop()
        deadline = self._deadline = loop.time() + seconds
        timer = self._timer
        # A later deadline reuses the armed timer (it re-arms itself when it fires early);
        # only an earlier one needs a new timer.
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._on_deadline)

    def _cancel_timer(self) -> None:
        self._deadline = 0.0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_deadline(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline == 0.0 or self.closed or self._detached or self.transport is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < deadline:
            self._timer = loop.call_at(deadline, self._on_deadline)
            return
        phase = self._phase
        if (phase == _HEADERS and self._received) or phase == _BODY:
            logger.debug("request from %s too slow: 408", self.remote_addr)
            self._fail(408, "Request Timeout")
        elif phase in (_HEADERS, _IDLE):
            # Nothing of a request arrived: close quietly (an idle keep-alive connection).
            self.closed = True
            self.transport.close()


class _Refused(Exception):
    """Raised inside parser callbacks to refuse a request with a status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)
