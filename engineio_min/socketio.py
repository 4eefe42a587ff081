"""Socket.IO v5 on top of Engine.IO sessions: namespaces, sockets, acks, rooms, broadcast.

Layer: socketio, the asyncio glue above ``engineio_min.protocol.socketio`` (uses engine.py's
``EngineSession``, the codec and the adapter).

The rules of the protocol live in the sans-I/O machine: ``SioConnection`` *is* a
``SioMachine`` (one object per Engine.IO session) and ``Socket`` *is* a ``NamespaceLink`` (one
object per joined namespace), so the glue adds no object per session or socket. What this
module adds is what the machine must not do: it runs the application's hooks and handlers
(plain functions inline, coroutines as tasks), sets ``ack_requested()``, arms one asyncio
timer at the machine's ``deadline``, keeps the namespace's sockets and rooms (through its
adapter), counts for monitoring and logs. A packet that breaks the protocol (SPEC §3.2) closes
the whole Engine.IO session with ``CloseReason.PARSE_ERROR``, as the reference server does.

Broadcast. ``Namespace.emit(..., to=room)`` encodes the packet once and hands it to the
namespace's adapter (adapter.py), which keeps the rooms: it frames the packet once into one
``FrameBatch`` shared by every recipient, and consecutive broadcasts to the same recipients
within one loop turn join that batch (fanout.py). Each client then gets one write per turn
with everything it is owed, in emit order. A cluster adapter also carries the packet to the
other nodes (redis_adapter.py).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeGuard

from .adapter import Excluded, LocalAdapter
from .codec.binary import has_binary
from .codec.sio import SioPacket, SioType, encode_event_text, encode_sio
from .errors import AckTimeout, ConnectRefused
from .protocol.reasons import CloseReason
from .protocol.socketio import (
    AckReceived,
    ConnectRequested,
    InvalidEvent,
    InvalidNamespace,
    LinkState,
    NamespaceDisconnected,
    NamespaceLink,
    ProtocolViolation,
    SioEvent,
    SioMachine,
)

if TYPE_CHECKING:
    from .engine import EngineSession
    from .fanout import Flusher

__all__ = [
    "AdapterFactory", "ConnectionServer", "Namespace", "NamespaceServer", "SioConnection", "Socket",
    "ack_requested",
]

logger = logging.getLogger("engineio_min.socketio")

ConnectHook = Callable[["Socket", dict[str, Any]], "Awaitable[None] | None"]
DisconnectHook = Callable[["Socket", str], "Awaitable[None] | None"]
# hook(socket, reason) -> what answers the client's ack (see Namespace.on_invalid_event)
InvalidEventHook = Callable[["Socket", str], Any]
EventHandler = Callable[..., Any]
AdapterFactory = Callable[["Namespace"], LocalAdapter]

_CONNECTING: Final = LinkState.CONNECTING
_CONNECTED: Final = LinkState.CONNECTED


class NamespaceServer(Protocol):
    """What a ``Namespace``, its sockets and its adapter use of the server (``Server`` is one)."""

    # Prepended to every socket sid ("{node_id}." on a cluster node, else "").
    sid_prefix: str
    # Packets encoded (a broadcast counts once); incremented by every emit.
    encode_count: int
    # Builds the namespace's adapter; None: LocalAdapter.
    adapter_factory: AdapterFactory | None
    # The write coalescer the adapter queues broadcasts with (fanout.py).
    flusher: Flusher
    # This node's name in a cluster (read by the adapters).
    node_id: str | None


class ConnectionServer(NamespaceServer, Protocol):
    """What a ``SioConnection`` uses of the server, besides what its namespaces use."""

    @property
    def namespaces(self) -> Mapping[str, Namespace]:
        """The namespaces a client may join, by name."""
        ...

    max_attachment_bytes: int
    attachment_timeout: float
    # Events refused through Namespace.on_invalid_event.
    invalid_event_count: int
    # Refused CONNECTs by reason: "refused", "hook_failed", "invalid_namespace".
    connect_refusals: dict[str, int]


_tasks: set[asyncio.Task[Any]] = set()

# Whether the event being handled asked for an ack. A context variable, so that an async
# handler's task (which copies the context when it is created) sees its own event's value.
_ack_requested: contextvars.ContextVar[bool] = contextvars.ContextVar("ack_requested", default=False)


def ack_requested() -> bool:
    """True inside an event handler whose client asked for an ack (its return value answers it)."""
    return _ack_requested.get()


def _spawn(coro: Awaitable[Any]) -> None:
    """Run a handler coroutine as a task we keep a reference to until it ends."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_task_done)


# Handlers mostly return None or an ack payload: answer those without the Awaitable ABC check.
_PLAIN_RESULTS: Final = frozenset({type(None), dict, list, tuple, str, int, float, bool})


def _is_awaitable(result: object) -> TypeGuard[Awaitable[Any]]:
    return type(result) not in _PLAIN_RESULTS and inspect.isawaitable(result)


def _task_done(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("handler task failed", exc_info=task.exception())


def _ack_args(result: Any) -> list[Any]:
    """A handler's return value as ack arguments: None -> none, tuple -> several."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


class Namespace:
    """A Socket.IO namespace: its handlers, sockets and rooms."""

    def __init__(self, server: NamespaceServer, name: str) -> None:
        self.server = server
        self.name = name
        self.sockets: dict[str, Socket] = {}
        self._handlers: dict[str, EventHandler] = {}
        self._connect_hook: ConnectHook | None = None
        self._disconnect_hook: DisconnectHook | None = None
        self._invalid_event_hook: InvalidEventHook | None = None
        # Events received since start, per registered name (a bounded set: the application's
        # own), and those no handler took; read by monitoring.
        self.event_counts: dict[str, int] = {}
        self.unhandled_event_count = 0
        factory: AdapterFactory = server.adapter_factory or LocalAdapter
        # Rooms and broadcast delivery (adapter.py); replaced by a cluster adapter on a cluster.
        self.adapter: LocalAdapter = factory(self)

    # -- registration -------------------------------------------------------------
    def on(self, event: str) -> Callable[[EventHandler], EventHandler]:
        """Decorator: handle ``event``; the return value answers the client's ack."""

        def register(handler: EventHandler) -> EventHandler:
            self._handlers[event] = handler
            self.event_counts.setdefault(event, 0)
            return handler

        return register

    def on_connect(self, hook: ConnectHook) -> ConnectHook:
        """Decorator: ``hook(socket, auth)``; raise ConnectRefused to refuse."""
        self._connect_hook = hook
        return hook

    def on_disconnect(self, hook: DisconnectHook) -> DisconnectHook:
        """Decorator: ``hook(socket, reason)``."""
        self._disconnect_hook = hook
        return hook

    def on_invalid_event(self, hook: InvalidEventHook) -> InvalidEventHook:
        """Decorator: ``hook(socket, reason)`` refuses an event whose JSON did not decode.

        Runs inline like an event handler (``ack_requested()`` works); its return value
        answers the client's ack. Without a hook such an event is an invalid packet and
        closes the session (SPEC §3.2), as the reference server does.
        """
        self._invalid_event_hook = hook
        return hook

    # -- rooms (kept by the adapter) ----------------------------------------------------
    @property
    def rooms(self) -> dict[str, dict[Socket, None]]:
        """This process's rooms: name -> members (the adapter's; do not modify)."""
        return self.adapter.rooms

    def join(self, sock: Socket, room: str) -> None:
        """Put ``sock`` in ``room`` (same as ``sock.join(room)``)."""
        sock.join(room)

    def leave(self, sock: Socket, room: str) -> None:
        """Take ``sock`` out of ``room`` (same as ``sock.leave(room)``)."""
        sock.leave(room)

    def room_size(self, room: str) -> int:
        """How many sockets of this process are in ``room``."""
        return len(self.adapter.members(room))

    def room_members(self, room: str) -> list[Socket]:
        """The sockets of this process in ``room``."""
        return list(self.adapter.members(room))

    # -- broadcast ----------------------------------------------------------------
    def emit(
        self,
        event: str,
        *args: Any,
        to: str | Iterable[str] | None = None,
        exclude: Socket | Iterable[Socket] | None = None,
        droppable: bool = False,
        local: bool = False,
    ) -> int:
        """Send an event to a room, several rooms, or the whole namespace. Never waits.

        The packet is encoded once, here, and handed to the adapter, which frames it once
        (and, in a cluster, carries it to the other nodes unless ``local``). Returns the
        number of sockets of this process it was written to (or queued for, when batched).
        """
        rooms = to if to is None or isinstance(to, str) else tuple(to)
        if exclude is None:
            excluded: Excluded = None
        elif isinstance(exclude, Socket):
            excluded = (exclude,)
        else:
            excluded = frozenset(exclude) or None
        self.server.encode_count += 1
        if has_binary(args):
            parts = encode_sio(SioPacket(SioType.EVENT, self.name, [event, *args]))
            return self.adapter.broadcast_parts(parts, rooms, excluded, local)
        return self.adapter.broadcast_text(encode_event_text(self.name, event, args), rooms, excluded, droppable, local)


class Socket(NamespaceLink["EngineSession"]):
    """One client connected to one namespace.

    Its protocol state (CONNECTING, CONNECTED, ...; the emits held before the CONNECT reply,
    the pending acks) is the ``NamespaceLink`` it is, moved only by its ``SioConnection``.
    """

    __slots__ = ("_conn", "auth", "data", "namespace", "remote_addr", "rooms", "sid")

    def __init__(self, conn: SioConnection, namespace: Namespace, auth: dict[str, Any]) -> None:
        NamespaceLink.__init__(self, conn.engine, namespace.name)
        self._conn = conn
        self.namespace = namespace
        # "{node_id}." first on a cluster node, so that any node can tell whose socket it is.
        self.sid = namespace.server.sid_prefix + secrets.token_urlsafe(15)
        self.auth = auth
        self.data: dict[str, Any] = {}
        self.remote_addr = conn.engine.remote_addr
        # The rooms joined (the socket's own sid room is implicit, see LocalAdapter.members).
        self.rooms: set[str] = set()

    def __repr__(self) -> str:
        return f"<Socket {self.nsp} {self.sid}>"

    @property
    def connected(self) -> bool:
        """True from the CONNECT reply until the socket leaves (either side, or the session ends)."""
        return self.state is _CONNECTED

    # -- sending --------------------------------------------------------------------
    def emit(self, event: str, *args: Any) -> None:
        """Send an event to this client. Never waits."""
        if has_binary(args):
            self._send_packet(SioPacket(SioType.EVENT, self.nsp, [event, *args]))
            return
        # The common case: one JSON encode, no packet object, no second walk for binary.
        self.namespace.server.encode_count += 1
        text = encode_event_text(self.nsp, event, args)
        if self.state is _CONNECTED:
            self.engine.send_text(text)  # the common case, without the machine's call
        else:
            self.send_text(text)  # held until the CONNECT reply, or dropped (machine)

    async def call(self, event: str, *args: Any, timeout: float = 5.0) -> list[Any]:
        """Send an event and wait for the client's ack; raises AckTimeout."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

        def resolve(ack_args: list[Any]) -> None:
            if not future.done():
                future.set_result(ack_args)

        conn = self._conn
        ack_id = conn.register_ack(self, resolve)
        self._send_packet(SioPacket(SioType.EVENT, self.nsp, [event, *args], ack_id))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AckTimeout(f"no ack for {event!r} within {timeout} s") from None
        finally:
            conn.forget_ack(self, ack_id)

    def _send_packet(self, packet: SioPacket) -> None:
        self.namespace.server.encode_count += 1
        self.send_parts(encode_sio(packet))

    def _send_ack(self, ack_id: int, result: Any) -> None:
        if self._conn.answer(self, ack_id, _ack_args(result)):
            self.namespace.server.encode_count += 1

    # -- rooms ------------------------------------------------------------------------
    def join(self, room: str) -> None:
        if room in self.rooms:
            return
        self.rooms.add(room)
        if self.state is _CONNECTED:
            self.namespace.adapter.add(self, room)

    def leave(self, room: str) -> None:
        if room not in self.rooms:
            return
        self.rooms.discard(room)
        if self.state is _CONNECTED:
            self.namespace.adapter.remove(self, room)

    # -- lifecycle ----------------------------------------------------------------------
    def disconnect(self, close_engine: bool = False) -> None:
        """Disconnect this socket from its namespace (``41``), or the whole connection."""
        if self.state is not _CONNECTED:
            return
        self.namespace.server.encode_count += 1
        self._conn.disconnect(self)
        self._left(CloseReason.SERVER_NAMESPACE_DISCONNECT)
        if close_engine:
            self.engine.close()

    def _entered(self) -> None:
        """Accepted (the CONNECT reply is written): list it, put it in its rooms."""
        namespace = self.namespace
        adapter = namespace.adapter
        adapter.socket_connected(self)
        namespace.sockets[self.sid] = self
        for room in self.rooms:
            adapter.add(self, room)

    def _left(self, reason: str) -> None:
        """It left CONNECTED: leave everything (O(rooms joined)) and run the disconnect hook."""
        namespace = self.namespace
        adapter = namespace.adapter
        adapter.socket_disconnected(self)
        for room in self.rooms:
            adapter.remove(self, room)
        namespace.sockets.pop(self.sid, None)
        hook = namespace._disconnect_hook
        if hook is not None:
            try:
                result = hook(self, reason)
                if _is_awaitable(result):
                    _spawn(result)
            except Exception:
                logger.exception("disconnect hook failed")


class SioConnection(SioMachine["EngineSession", Socket]):
    """The Socket.IO side of one Engine.IO session (its ``EngineHandler``): drives the machine."""

    __slots__ = ("_loop", "_timer", "_timer_at", "server")

    def __init__(self, server: ConnectionServer, engine: EngineSession, connect_timeout: float) -> None:
        # The machine's base is called by name, not through super(): a zero-argument super()
        # builds a super object and looks the method up through it, on every connect.
        loop = asyncio.get_running_loop()
        now = loop.time()
        SioMachine.__init__(
            self,
            engine,
            server.namespaces,
            now,
            connect_timeout=connect_timeout,
            max_attachment_bytes=server.max_attachment_bytes,
            attachment_timeout=server.attachment_timeout,
        )
        self.server = server
        # The loop this session runs on: on_message reads its clock for every packet, and
        # asyncio.get_running_loop() is a getpid() system call each time on Python 3.11.
        self._loop = loop
        # One timer, at the machine's deadline (the connect deadline first).
        self._timer_at = deadline = self.deadline
        self._timer: asyncio.TimerHandle | None = None
        if deadline is not None:
            # call_later(deadline - now) is call_at(deadline) without uvloop's detour through a
            # Python-level call_later lookup and a second clock read (~0.4 us a connect).
            self._timer = loop.call_later(deadline - now, self._deadline_passed)

    # -- timers -----------------------------------------------------------------------
    def _rearm(self) -> None:
        """Move the timer to the machine's deadline (which changed)."""
        timer = self._timer
        if timer is not None:
            timer.cancel()
        deadline = self._timer_at = self.deadline
        self._timer = None if deadline is None else self._loop.call_at(deadline, self._deadline_passed)

    def _deadline_passed(self) -> None:
        self._timer = self._timer_at = None
        reason = self.expire(self._loop.time())
        if reason is not None:
            logger.debug("closing %s: %s (a deadline passed)", self.engine.sid, reason)
            self.engine.close(reason)
        elif self.deadline is not None:
            self._rearm()

    # -- EngineHandler ----------------------------------------------------------------
    def on_message(self, data: str | bytes) -> None:
        result = self.receive(data, self._loop.time())
        if self.deadline != self._timer_at:
            self._rearm()
        if result is None:
            return
        if type(result) is SioPacket:  # the hot path: an EVENT for a connected namespace
            self._on_event(self.links[result.namespace], result)
        elif type(result) is ConnectRequested:  # once per namespace: spare it _handle's tests
            self._on_connect(result)
        else:
            self._handle(result)

    def on_close(self, reason: str) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()
            self._timer = self._timer_at = None
        for sock in self.session_closed():
            sock._left(reason)

    # -- what the machine reports ---------------------------------------------------------
    def _handle(self, result: SioPacket | SioEvent[Socket]) -> None:
        if type(result) is SioPacket:
            self._on_event(self.links[result.namespace], result)
        elif type(result) is AckReceived:
            result.waiter(result.args)
        elif type(result) is ConnectRequested:
            self._on_connect(result)
        elif type(result) is NamespaceDisconnected:
            result.link._left(result.reason)
        elif type(result) is InvalidEvent:
            self._on_invalid_event(result)
        elif type(result) is InvalidNamespace:
            self._count_refusal("invalid_namespace")
        else:
            assert type(result) is ProtocolViolation
            logger.debug("closing %s: %s", self.engine.sid, result.reason)
            self.engine.close(CloseReason.PARSE_ERROR)

    def _on_invalid_event(self, invalid: InvalidEvent[Socket]) -> None:
        """An EVENT whose JSON did not decode: refuse it through the namespace's hook, if any."""
        sock = invalid.link
        hook = sock.namespace._invalid_event_hook
        if hook is None:
            logger.debug("closing %s: %s", self.engine.sid, invalid.reason)
            self.engine.close(CloseReason.PARSE_ERROR)
            return
        self.server.invalid_event_count += 1
        token = _ack_requested.set(invalid.ack_id is not None)
        try:
            result = hook(sock, invalid.reason)
        except Exception:
            logger.exception("invalid-event hook failed")
            return
        finally:
            _ack_requested.reset(token)
        if invalid.ack_id is not None:
            sock._send_ack(invalid.ack_id, result)

    def _on_event(self, sock: Socket, packet: SioPacket) -> None:
        args = packet.data
        namespace = sock.namespace
        name = str(args[0])
        handler = namespace._handlers.get(name)
        if handler is None:
            namespace.unhandled_event_count += 1
            return
        namespace.event_counts[name] += 1
        token = _ack_requested.set(packet.id is not None)
        try:
            result = handler(sock, *args[1:])
            if _is_awaitable(result):
                _spawn(self._finish_event(sock, packet.id, result))
                return
        except Exception:
            logger.exception("handler for %r failed", args[0])
            return
        finally:
            _ack_requested.reset(token)
        if packet.id is not None:
            sock._send_ack(packet.id, result)

    async def _finish_event(self, sock: Socket, ack_id: int | None, pending: Awaitable[Any]) -> None:
        try:
            result = await pending
        except Exception:
            logger.exception("async handler failed")
            return
        if ack_id is not None:
            sock._send_ack(ack_id, result)

    # -- joining a namespace -----------------------------------------------------------------
    def _on_connect(self, request: ConnectRequested) -> None:
        namespace = self.server.namespaces[request.namespace]
        auth = request.auth
        sock = Socket(self, namespace, auth)
        self.begin_connect(sock)
        hook = namespace._connect_hook
        if hook is None:
            self._accept(sock)
            return
        try:
            result = hook(sock, auth)
        except ConnectRefused as refused:
            self._refuse(sock, refused)
            return
        except Exception:
            logger.exception("connect hook failed")
            self._refuse(sock, ConnectRefused("Internal server error"), "hook_failed")
            return
        if _is_awaitable(result):
            _spawn(self._finish_connect(sock, result))
        else:
            self._accept(sock)

    async def _finish_connect(self, sock: Socket, pending: Awaitable[Any]) -> None:
        try:
            await pending
        except ConnectRefused as refused:
            self._refuse(sock, refused)
            return
        except Exception:
            logger.exception("connect hook failed")
            self._refuse(sock, ConnectRefused("Internal server error"), "hook_failed")
            return
        self._accept(sock)

    def _accept(self, sock: Socket) -> None:
        if sock.state is not _CONNECTING:
            return  # the session closed while the hook ran
        self.server.encode_count += 1  # the CONNECT reply
        buffered = self.accept(sock, sock.sid)
        if self.deadline != self._timer_at:
            self._rearm()
        sock._entered()
        # What the client sent while the hook ran, in order (until it leaves or the session ends).
        while buffered and (result := self.take_buffered(sock)) is not None:
            self._handle(result)

    def _refuse(self, sock: Socket, refused: ConnectRefused, reason: str = "refused") -> None:
        self._count_refusal(reason)
        if sock.state is not _CONNECTING:
            return  # the session closed while the hook ran
        payload: dict[str, Any] = {"message": refused.message}
        if refused.data is not None:
            payload["data"] = refused.data
        self.refuse(sock, payload)

    def _count_refusal(self, reason: str) -> None:
        refusals = self.server.connect_refusals
        refusals[reason] = refusals.get(reason, 0) + 1
