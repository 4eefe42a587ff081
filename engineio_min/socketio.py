"""Socket.IO v5 on top of Engine.IO sessions: namespaces, sockets, acks, rooms, broadcast.

Layer: socketio (uses engine.py's ``EngineSession`` and the codec).

``SioConnection`` is the Engine.IO handler of one session: it decodes Socket.IO packets
(``SioDecoder`` reassembles binary attachments) and drives the ``Socket`` of each joined
namespace. A packet that breaks the protocol (SPEC §3.2, invalid packets and invalid
states) closes the whole Engine.IO session with reason ``parse error``, as the reference
server does.

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
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeGuard

from .adapter import Excluded, LocalAdapter
from .codec.binary import has_binary
from .codec.json import dumps
from .codec.sio import InvalidEventPayload, SioDecoder, SioPacket, SioType, encode_event_text, encode_sio
from .engine import PARSE_ERROR, EngineSession
from .errors import AckTimeout, ConnectRefused, DecodeError

__all__ = ["AdapterFactory", "Namespace", "SioConnection", "Socket", "ack_requested"]

logger = logging.getLogger("engineio_min.socketio")

CLIENT_NAMESPACE_DISCONNECT: Final = "client namespace disconnect"
SERVER_NAMESPACE_DISCONNECT: Final = "server namespace disconnect"

ConnectHook = Callable[["Socket", dict[str, Any]], "Awaitable[None] | None"]
DisconnectHook = Callable[["Socket", str], "Awaitable[None] | None"]
# hook(socket, reason) -> what answers the client's ack (see Namespace.on_invalid_event)
InvalidEventHook = Callable[["Socket", str], Any]
EventHandler = Callable[..., Any]
AdapterFactory = Callable[["Namespace"], LocalAdapter]

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

    def __init__(self, server: Any, name: str) -> None:
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
        factory: AdapterFactory = getattr(server, "adapter_factory", None) or LocalAdapter
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


class Socket:
    """One client connected to one namespace."""

    __slots__ = (
        "_ack_id", "_acks", "_conn", "_pending", "auth", "connected", "data", "engine",
        "namespace", "remote_addr", "rooms", "sid",
    )

    def __init__(self, conn: SioConnection, namespace: Namespace, auth: dict[str, Any]) -> None:
        self._conn = conn
        self.engine: EngineSession = conn.engine
        self.namespace = namespace
        # "{node_id}." first on a cluster node, so that any node can tell whose socket it is.
        self.sid = namespace.server.sid_prefix + secrets.token_urlsafe(15)
        self.auth = auth
        self.data: dict[str, Any] = {}
        self.remote_addr = conn.engine.remote_addr
        # The rooms joined (the socket's own sid room is implicit, see LocalAdapter.members).
        self.rooms: set[str] = set()
        self.connected = False
        # Emits made before the CONNECT reply is written (inside the connect hook) wait here.
        self._pending: list[list[str | bytes]] | None = []
        self._acks: dict[int, Callable[[list[Any]], None]] = {}
        self._ack_id = 0

    def __repr__(self) -> str:
        return f"<Socket {self.namespace.name} {self.sid}>"

    # -- sending --------------------------------------------------------------------
    def emit(self, event: str, *args: Any) -> None:
        """Send an event to this client. Never waits."""
        if has_binary(args):
            self._send_packet(SioPacket(SioType.EVENT, self.namespace.name, [event, *args]))
            return
        # The common case: one JSON encode, no packet object, no second walk for binary.
        self.namespace.server.encode_count += 1
        text = encode_event_text(self.namespace.name, event, args)
        if self._pending is not None:
            self._pending.append([text[1:]])  # queued parts leave out Engine.IO's "4"
        else:
            self.engine.send_text(text)

    async def call(self, event: str, *args: Any, timeout: float = 5.0) -> list[Any]:
        """Send an event and wait for the client's ack; raises AckTimeout."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        ack_id = self._ack_id
        self._ack_id += 1

        def resolve(ack_args: list[Any]) -> None:
            if not future.done():
                future.set_result(ack_args)

        self._acks[ack_id] = resolve
        self._send_packet(SioPacket(SioType.EVENT, self.namespace.name, [event, *args], ack_id))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AckTimeout(f"no ack for {event!r} within {timeout} s") from None
        finally:
            self._acks.pop(ack_id, None)

    def send_parts(self, parts: list[str | bytes]) -> None:
        """Send an encoded packet: Socket.IO header text, then binary attachments."""
        if self._pending is not None:
            self._pending.append(parts)
            return
        engine = self.engine
        header = parts[0]
        assert isinstance(header, str)
        engine.send_text("4" + header)
        for attachment in parts[1:]:
            assert isinstance(attachment, bytes)
            engine.send_binary(attachment)

    def _send_packet(self, packet: SioPacket) -> None:
        self.namespace.server.encode_count += 1
        self.send_parts(encode_sio(packet))

    # -- rooms ------------------------------------------------------------------------
    def join(self, room: str) -> None:
        if room in self.rooms:
            return
        self.rooms.add(room)
        if self.connected:
            self.namespace.adapter.add(self, room)

    def leave(self, room: str) -> None:
        if room not in self.rooms:
            return
        self.rooms.discard(room)
        if self.connected:
            self.namespace.adapter.remove(self, room)

    # -- lifecycle ----------------------------------------------------------------------
    def disconnect(self, close_engine: bool = False) -> None:
        """Disconnect this socket from its namespace (``41``), or the whole connection."""
        if not self.connected:
            return
        self._send_packet(SioPacket(SioType.DISCONNECT, self.namespace.name))
        self._conn.remove(self, SERVER_NAMESPACE_DISCONNECT)
        if close_engine:
            self.engine.close()

    def _commit(self) -> None:
        """The connect hook accepted: join rooms, write CONNECT, release buffered emits."""
        namespace = self.namespace
        adapter = namespace.adapter
        self.connected = True
        adapter.socket_connected(self)
        namespace.sockets[self.sid] = self
        for room in self.rooms:
            adapter.add(self, room)
        pending, self._pending = self._pending, None
        self.send_parts(encode_sio(SioPacket(SioType.CONNECT, namespace.name, {"sid": self.sid})))
        for parts in pending or ():
            self.send_parts(parts)

    def _closed(self, reason: str) -> None:
        """Leave everything (O(rooms joined)) and run the disconnect hook."""
        namespace = self.namespace
        was_connected = self.connected
        self.connected = False
        if was_connected:
            adapter = namespace.adapter
            adapter.socket_disconnected(self)
            for room in self.rooms:
                adapter.remove(self, room)
            namespace.sockets.pop(self.sid, None)
        self._acks.clear()
        hook = namespace._disconnect_hook
        if hook is not None and was_connected:
            try:
                result = hook(self, reason)
                if _is_awaitable(result):
                    _spawn(result)
            except Exception:
                logger.exception("disconnect hook failed")

    def _receive_ack(self, ack_id: int, args: list[Any]) -> None:
        callback = self._acks.pop(ack_id, None)
        if callback is not None:  # an unknown or repeated ack id is ignored (SPEC §3.2)
            callback(args)

    def _send_ack(self, ack_id: int, result: Any) -> None:
        if self.connected:
            self._send_packet(SioPacket(SioType.ACK, self.namespace.name, _ack_args(result), ack_id))


class SioConnection:
    """The Socket.IO side of one Engine.IO session (an ``EngineHandler``)."""

    __slots__ = ("_attachment_timer", "_connect_timer", "_connecting", "decoder", "engine", "server", "sockets")

    def __init__(self, server: Any, engine: EngineSession, connect_timeout: float) -> None:
        self.server = server
        self.engine = engine
        self.decoder = SioDecoder(server.max_attachment_bytes)
        # Runs while a binary packet waits for its attachments (Server.attachment_timeout).
        self._attachment_timer: asyncio.TimerHandle | None = None
        self.sockets: dict[str, Socket] = {}
        # Namespace -> packets that arrived while its async connect hook was running.
        self._connecting: dict[str, list[SioPacket]] = {}
        loop = asyncio.get_running_loop()
        self._connect_timer: asyncio.TimerHandle | None = loop.call_later(connect_timeout, self._connect_expired)

    def _connect_expired(self) -> None:
        self._connect_timer = None
        if not self.sockets:
            self.engine.close()

    # -- EngineHandler ----------------------------------------------------------------
    def on_message(self, data: str | bytes) -> None:
        try:
            packet = self.decoder.feed(data)
        except InvalidEventPayload as exc:
            self._on_invalid_event(exc)
            return
        except DecodeError as exc:
            logger.debug("closing %s: %s", self.engine.sid, exc)
            self.engine.close(PARSE_ERROR)
            return
        if packet is None:
            if self._attachment_timer is None and self.decoder.is_awaiting_attachments:
                loop = asyncio.get_running_loop()
                self._attachment_timer = loop.call_later(self.server.attachment_timeout, self._attachments_expired)
            return
        if self._attachment_timer is not None:
            self._attachment_timer.cancel()
            self._attachment_timer = None
        self._dispatch(packet)

    def _attachments_expired(self) -> None:
        """A binary packet's attachments did not all arrive in time: what came is dropped."""
        self._attachment_timer = None
        logger.debug("closing %s: binary attachments incomplete after %s s", self.engine.sid,
                     self.server.attachment_timeout)
        self.engine.close(PARSE_ERROR)

    def _on_invalid_event(self, exc: InvalidEventPayload) -> None:
        """An EVENT whose JSON did not decode: refuse it through the namespace's hook, if any."""
        sock = self.sockets.get(exc.namespace)
        hook = None if sock is None else sock.namespace._invalid_event_hook
        if sock is None or hook is None or exc.namespace in self._connecting:
            logger.debug("closing %s: %s", self.engine.sid, exc)
            self.engine.close(PARSE_ERROR)
            return
        self.server.invalid_event_count += 1
        token = _ack_requested.set(exc.ack_id is not None)
        try:
            result = hook(sock, str(exc))
        except Exception:
            logger.exception("invalid-event hook failed")
            return
        finally:
            _ack_requested.reset(token)
        if exc.ack_id is not None:
            sock._send_ack(exc.ack_id, result)

    def on_close(self, reason: str) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        if self._attachment_timer is not None:
            self._attachment_timer.cancel()
            self._attachment_timer = None
        sockets, self.sockets = self.sockets, {}
        for sock in sockets.values():
            sock._closed(reason)

    # -- dispatch -----------------------------------------------------------------------
    def _dispatch(self, packet: SioPacket) -> None:
        kind = packet.type
        name = packet.namespace
        if kind is SioType.CONNECT:
            self._on_connect(packet)
            return
        waiting = self._connecting.get(name)
        if waiting is not None:
            waiting.append(packet)
            return
        sock = self.sockets.get(name)
        if sock is None or kind is SioType.CONNECT_ERROR:
            # A packet for a namespace not joined, or a CONNECT_ERROR from a client.
            self.engine.close(PARSE_ERROR)
            return
        self._dispatch_joined(sock, packet)

    def _dispatch_joined(self, sock: Socket, packet: SioPacket) -> None:
        kind = packet.type
        if kind is SioType.EVENT or kind is SioType.BINARY_EVENT:
            self._on_event(sock, packet)
        elif kind is SioType.ACK or kind is SioType.BINARY_ACK:
            assert packet.id is not None
            sock._receive_ack(packet.id, packet.data)
        elif kind is SioType.DISCONNECT:
            self.remove(sock, CLIENT_NAMESPACE_DISCONNECT)
        else:
            self.engine.close(PARSE_ERROR)

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

    def _on_connect(self, packet: SioPacket) -> None:
        name = packet.namespace
        namespace = self.server.namespaces.get(name)
        if namespace is None:
            if not name.isprintable() or "," in name:
                # It is echoed back raw; a control character (\x1e!) would corrupt a polling payload.
                self.engine.close(PARSE_ERROR)
                return
            self._count_refusal("invalid_namespace")
            self._send_connect_error(name, {"message": "Invalid namespace"})
            return
        if name in self.sockets or name in self._connecting:
            self.engine.close(PARSE_ERROR)  # CONNECT for a namespace already joined
            return
        auth = packet.data if isinstance(packet.data, dict) else {}
        sock = Socket(self, namespace, auth)
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
            self._connecting[name] = []
            _spawn(self._finish_connect(sock, result))
        else:
            self._accept(sock)

    async def _finish_connect(self, sock: Socket, pending: Awaitable[Any]) -> None:
        name = sock.namespace.name
        try:
            await pending
        except ConnectRefused as refused:
            self._connecting.pop(name, None)
            self._refuse(sock, refused)
            return
        except Exception:
            logger.exception("connect hook failed")
            self._connecting.pop(name, None)
            self._refuse(sock, ConnectRefused("Internal server error"), "hook_failed")
            return
        queued = self._connecting.pop(name, [])
        if self.engine.closed:
            return
        self._accept(sock)
        for packet in queued:
            if self.engine.closed or name not in self.sockets:
                break
            self._dispatch_joined(sock, packet)

    def _accept(self, sock: Socket) -> None:
        if self.engine.closed:
            return
        self.sockets[sock.namespace.name] = sock
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        sock._commit()

    def _refuse(self, sock: Socket, refused: ConnectRefused, reason: str = "refused") -> None:
        self._count_refusal(reason)
        payload: dict[str, Any] = {"message": refused.message}
        if refused.data is not None:
            payload["data"] = refused.data
        self._send_connect_error(sock.namespace.name, payload)

    def _count_refusal(self, reason: str) -> None:
        refusals: dict[str, int] = self.server.connect_refusals
        refusals[reason] = refusals.get(reason, 0) + 1

    def _send_connect_error(self, name: str, payload: dict[str, Any]) -> None:
        prefix = "44" if name == "/" else f"44{name},"
        self.engine.send_text(prefix + dumps(payload))

    def remove(self, sock: Socket, reason: str) -> None:
        """Take ``sock`` out of this connection (namespace disconnect)."""
        if self.sockets.get(sock.namespace.name) is sock:
            del self.sockets[sock.namespace.name]
            sock._closed(reason)

