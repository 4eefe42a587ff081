"""The Server facade: one port, Engine.IO/Socket.IO endpoints, extra HTTP routes.

Layer: facade. This is what applications use (with ``Namespace`` and ``Socket``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from ssl import SSLContext

from .budget import BufferBudget
from .codec.sio import DEFAULT_MAX_ATTACHMENT_BYTES
from .engine import EngineEndpoint, EngineOptions, EngineSession, SessionFactory
from .fanout import Flusher
from .protocol.reasons import CloseReason
from .socketio import AdapterFactory, Namespace, SioConnection
from .transport.http import HttpConnection, HttpRequest, HttpResponse, HttpTimeouts, Responder

__all__ = ["RouteHandler", "Server"]

logger = logging.getLogger("engineio_min.server")

RouteHandler = Callable[[HttpRequest], "HttpResponse | Awaitable[HttpResponse]"]
# Body limit of the application's own HTTP routes (the Engine.IO path uses max_payload).
ROUTE_BODY_LIMIT = 1024 * 1024


def _matches(route: str, path: str) -> bool:
    """A route matches its exact path, or every path under it when it ends with ``/``."""
    return path == route or (route.endswith("/") and path.startswith(route))


def _valid_node_id(node_id: str) -> bool:
    # It goes into sids (URL query strings, routed on by balancers) and Redis channel names.
    return 0 < len(node_id) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in node_id)


def _mount(path: str) -> str:
    return "/" + path.strip("/") + "/"


class Server:
    """A Socket.IO v4 server (Engine.IO protocol 4, Socket.IO protocol 5) on one port.

    Args:
        path: the Socket.IO mount path; None: none (an HTTP server for ``route``s only).
        ping_interval, ping_timeout: heartbeat, in seconds.
        max_payload: largest POST body / WebSocket message, in bytes.
        allowed_origins: None (same origin), "*" (any) or a list of origins.
        connect_timeout: seconds a connection may stay without joining a namespace.
        transports: the enabled transports.
        max_buffered_bytes: a client with more unsent bytes is disconnected (1 MiB).
        max_total_buffered_bytes: unsent bytes of all clients together; above it the
            clients holding the most are disconnected first (0: no budget). See budget.py.
        droppable_buffered_bytes: above this, droppable broadcasts skip the client.
        header_timeout: seconds for a request's line and headers to arrive (408 after).
        body_timeout: seconds for a request's body to arrive after its headers (408 after).
        keep_alive_timeout: seconds an HTTP connection may sit idle between requests.
        max_attachment_bytes: the most bytes of binary attachments one packet may carry
            (the sum; a connection holds at most one such packet half received).
        attachment_timeout: seconds for all attachments of a binary packet to arrive.
        Either limit exceeded closes the session (parse error).
        node_id: this node's name in a cluster or behind a load balancer: every Engine.IO sid
            starts with ``node_id + "."`` so that a balancer can route on the ``sid`` query
            parameter, and Socket.IO sids too, so that an emit to a sid finds its node.
        adapter_factory: builds each namespace's adapter (rooms and broadcast delivery);
            None: ``LocalAdapter``, this process only. For a cluster, e.g.
            ``lambda nsp: RedisAdapter(nsp, client, node_id)``.
    """

    def __init__(
        self,
        path: str | None = "/socket.io/",
        *,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_payload: int = 1_000_000,
        allowed_origins: str | Sequence[str] | None = None,
        connect_timeout: float = 45.0,
        transports: Sequence[str] = ("polling", "websocket"),
        allow_upgrades: bool = True,
        max_buffered_bytes: int = 1024 * 1024,
        droppable_buffered_bytes: int = 256 * 1024,
        max_total_buffered_bytes: int = 256 * 1024 * 1024,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        keep_alive_timeout: float = 60.0,
        max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
        attachment_timeout: float = 10.0,
        node_id: str | None = None,
        adapter_factory: AdapterFactory | None = None,
    ) -> None:
        if node_id is not None and not _valid_node_id(node_id):
            raise ValueError(f"node_id must be 1-64 characters of A-Z a-z 0-9 _ -, got {node_id!r}")
        self.node_id = node_id
        # Socket sids start with it, so that an emit to a sid of another node finds that node.
        self.sid_prefix = f"{node_id}." if node_id else ""
        self.adapter_factory = adapter_factory
        # Awaited by shutdown() once every session is closed, before the adapters close.
        self.on_sessions_closed: Callable[[], Awaitable[None]] | None = None
        self.options = EngineOptions(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_payload=max_payload,
            transports=tuple(transports),
            allow_upgrades=allow_upgrades,
            allowed_origins=allowed_origins,
            max_buffered_bytes=max_buffered_bytes,
            droppable_buffered_bytes=droppable_buffered_bytes,
            node_id=node_id,
        )
        self.connect_timeout = connect_timeout
        self.http_timeouts = HttpTimeouts(header_timeout, body_timeout, keep_alive_timeout)
        self.max_attachment_bytes = max_attachment_bytes
        self.attachment_timeout = attachment_timeout
        self.namespaces: dict[str, Namespace] = {}
        self.flusher = Flusher()
        self.budget = BufferBudget(max_total_buffered_bytes)
        # How many packets were encoded (each broadcast counts once); tests read it.
        self.encode_count = 0
        # Events refused because their JSON did not decode (Namespace.on_invalid_event).
        self.invalid_event_count = 0
        # Socket.IO CONNECTs refused, per reason: "refused" (the connect hook raised
        # ConnectRefused), "hook_failed" (it raised something else), "invalid_namespace".
        self.connect_refusals: dict[str, int] = {}
        self._endpoints: list[EngineEndpoint] = []
        self._routes: list[tuple[str, str, RouteHandler]] = []
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Transport] = set()
        self._route_tasks: set[asyncio.Future[None]] = set()
        self.port = 0
        self._started = False
        self._adapter_tasks: set[asyncio.Future[None]] = set()
        if path is not None:
            self.mount_engine(path, self._new_connection, self.options)

    # -- application API ----------------------------------------------------------
    def of(self, name: str = "/") -> Namespace:
        """The namespace ``name``, created on first use."""
        namespace = self.namespaces.get(name)
        if namespace is None:
            namespace = self.namespaces[name] = Namespace(self, name)
            if self._started:  # created while serving: its adapter starts now (in the background)
                task = asyncio.ensure_future(namespace.adapter.start())
                self._adapter_tasks.add(task)
                task.add_done_callback(self._adapter_started)
        return namespace

    def _adapter_started(self, task: asyncio.Future[None]) -> None:
        self._adapter_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("adapter failed to start", exc_info=task.exception())

    def route(self, method: str, path: str, handler: RouteHandler) -> None:
        """Serve ``method path`` (a trailing ``/`` matches the prefix) with ``handler``."""
        self._routes.append((method.upper(), path, handler))

    def mount_engine(self, path: str, factory: SessionFactory, options: EngineOptions | None = None) -> EngineEndpoint:
        """Serve a bare Engine.IO endpoint at ``path``; ``factory`` builds each session's handler."""
        endpoint = EngineEndpoint(_mount(path), factory, options or self.options, self.flusher, self.budget)
        self._endpoints.append(endpoint)
        return endpoint

    def _new_connection(self, session: EngineSession) -> SioConnection:
        return SioConnection(self, session, self.connect_timeout)

    # -- RequestHandler (the HTTP front door calls these) ----------------------------
    def _endpoint_for(self, path: str) -> EngineEndpoint | None:
        for endpoint in self._endpoints:
            if path.startswith(endpoint.path) or path + "/" == endpoint.path:
                return endpoint
        return None

    def body_limit(self, path: str) -> int:
        endpoint = self._endpoint_for(path)
        return endpoint.options.max_payload if endpoint is not None else ROUTE_BODY_LIMIT

    def handle_request(self, request: HttpRequest, responder: Responder) -> None:
        endpoint = self._endpoint_for(request.path)
        if endpoint is not None:
            endpoint.handle_http(request, responder)
            return
        matching = [(method, handler) for method, path, handler in self._routes if _matches(path, request.path)]
        for method, handler in matching:
            if method == request.method:
                self._run_route(handler, request, responder)
                return
        if matching:
            allow = ", ".join(sorted({method for method, _ in matching}))
            responder.send(HttpResponse.json({"error": "method not allowed"}, 405, {"Allow": allow}))
            return
        responder.send(HttpResponse.json({"error": "not found"}, 404))

    def _run_route(self, handler: RouteHandler, request: HttpRequest, responder: Responder) -> None:
        result = handler(request)
        if inspect.isawaitable(result):
            async def finish(pending: Awaitable[HttpResponse]) -> None:
                try:
                    responder.send(await pending)
                except Exception:
                    logger.exception("route %s failed", request.path)
                    responder.send(HttpResponse.json({"error": "internal error"}, 500))

            task = asyncio.ensure_future(finish(result))
            self._route_tasks.add(task)
            task.add_done_callback(self._route_tasks.discard)
        else:
            responder.send(result)

    def handle_upgrade(self, request: HttpRequest, conn: HttpConnection, rest: bytes) -> None:
        endpoint = self._endpoint_for(request.path)
        if endpoint is None:
            transport = conn.transport
            if transport is not None:
                transport.write(HttpResponse(404, "Not Found").encode(keep_alive=False))
                transport.close()
            return
        endpoint.handle_upgrade(request, conn, rest)

    # -- lifecycle ------------------------------------------------------------------
    def _protocol_factory(self) -> HttpConnection:
        return _TrackedHttpConnection(self)

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False, ssl: SSLContext | None = None
    ) -> int:
        """Start every namespace's adapter, then listen on ``host:port``; returns the bound port.

        ``reuse_port``: bind with SO_REUSEPORT, so that several processes share the port and the
        kernel spreads new connections over them. ``ssl``: serve HTTPS / WSS with this server
        context (TLS is asyncio's: the protocols above it see plain bytes).
        """
        for namespace in list(self.namespaces.values()):
            await namespace.adapter.start()
        self._started = True
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol_factory, host, port, backlog=4096, reuse_port=reuse_port, ssl=ssl
        )
        sockname = self._server.sockets[0].getsockname()
        self.port = int(sockname[1])
        return self.port

    async def shutdown(self, reason: str = CloseReason.SERVER_SHUTDOWN) -> None:
        """Stop accepting, close every session cleanly, then drop what is left."""
        if self._server is not None:
            self._server.close()
        self.flusher.flush()
        for endpoint in self._endpoints:
            endpoint.close_all(reason)
        # Let close frames and final polling answers reach the kernel.
        for _ in range(20):
            if not any(t.get_write_buffer_size() for t in self._connections if not t.is_closing()):
                break
            await asyncio.sleep(0.05)
        for transport in list(self._connections):
            transport.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        self._started = False
        if self.on_sessions_closed is not None:
            # The application's last words to the other nodes (its clients' departures) still
            # travel: the adapters close after it.
            try:
                await self.on_sessions_closed()
            except Exception:
                logger.exception("on_sessions_closed failed")
        for namespace in list(self.namespaces.values()):
            try:
                await namespace.adapter.close()
            except Exception:
                logger.exception("adapter of %s failed to close", namespace.name)

    async def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run until SIGTERM or SIGINT, then shut down cleanly.

        ``on_ready`` is called once the signal handlers are in place: announce readiness there,
        so that a SIGTERM sent the moment it is announced is a clean stop, not a kill.
        """
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        if on_ready is not None:
            on_ready()
        try:
            await stop.wait()
        finally:
            await self.shutdown()

    @property
    def connection_count(self) -> int:
        """Open TCP connections (HTTP and WebSocket)."""
        return len(self._connections)

    def session_count(self) -> int:
        return sum(len(e.sessions) for e in self._endpoints)

    @property
    def endpoints(self) -> tuple[EngineEndpoint, ...]:
        """The Engine.IO endpoints served (their sessions and counters, for monitoring)."""
        return tuple(self._endpoints)

    def _track(self, transport: asyncio.Transport) -> None:
        self._connections.add(transport)

    def _untrack(self, transport: asyncio.Transport | None) -> None:
        if transport is not None:
            self._connections.discard(transport)


class _TrackedHttpConnection(HttpConnection):
    """An HttpConnection that the server can find again at shutdown."""

    def __init__(self, server: Server) -> None:
        super().__init__(server, server.http_timeouts)
        self._owner = server
        self.lost_callback = server._untrack

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.transport is not None:
            self._owner._track(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._untrack(self.transport)
        super().connection_lost(exc)

