"""Rooms and broadcast delivery of one namespace: the seam between a namespace and its fan-out.

Layer: socketio (beside socketio.py; uses fanout.py and the WebSocket frame encoder).

A ``Namespace`` keeps its sockets and handlers; *who is in which room* and *how a broadcast
reaches its recipients* live in its adapter, one per namespace. ``LocalAdapter`` is the
single-process path and the default: a broadcast is framed once and queued by reference in
one shared ``FrameBatch`` (fanout.py). A cluster adapter (redis_adapter.py) subclasses it:
it also carries each broadcast to the other nodes, and each of those hands it to this same
``broadcast_text`` / ``broadcast_parts`` for its own local members, so every node uses the
one coalesced write path.

The node-to-node part of the API (``server_publish``, ``request``, ``on_server_message``,
``on_request``, ``on_resync``, ``healthy``) is inert here, so that an application can be
written once and run on one process or many.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from .fanout import Flusher, FrameBatch
from .transport.websocket import text_frame

if TYPE_CHECKING:
    from .socketio import Namespace, Socket

__all__ = ["Excluded", "LocalAdapter", "Rooms"]

# Where a broadcast goes: one room, several, or None (the whole namespace).
Rooms = str | tuple[str, ...] | None
# Sockets a broadcast skips: one socket as a 1-tuple (cheap to build and to compare as part
# of a batch key), several as a frozenset.
Excluded = frozenset["Socket"] | tuple["Socket", ...] | None

ServerMessageHook = Callable[[object], None]
RequestHook = Callable[[object], "object | Awaitable[object]"]
ResyncHook = Callable[[], "Awaitable[None] | None"]


class LocalAdapter:
    """Rooms and broadcast of one namespace, within this process.

    Rooms: ``add``/``remove`` keep ``rooms`` (room -> members, insertion-ordered); a
    socket's sid is a room holding just that socket, looked up rather than stored (a dict
    per connection saved). ``room_created`` / ``room_deleted`` run when a room gets its
    first local member and loses its last one: no-ops here, the points where a cluster
    adapter subscribes and unsubscribes.
    """

    def __init__(self, namespace: Namespace) -> None:
        self.namespace = namespace
        self.flusher: Flusher = namespace.server.flusher
        self.rooms: dict[str, dict[Socket, None]] = {}
        self.node_id: str = getattr(namespace.server, "node_id", None) or ""
        # Application hooks for the cluster API (see the module docstring).
        self.on_server_message: ServerMessageHook | None = None
        self.on_request: RequestHook | None = None
        self.on_resync: ResyncHook | None = None
        # Counters since start, read by monitoring: a few additions per broadcast, nothing per
        # recipient. Deliveries and bytes count each recipient (bytes as WebSocket frames);
        # dropped_frames counts a droppable frame once per slow consumer that skipped it.
        self.broadcasts = 0
        self.deliveries = 0
        self.broadcast_bytes = 0
        self.dropped_frames = 0

    # -- rooms --------------------------------------------------------------------------
    def add(self, sock: Socket, room: str) -> None:
        self._membership_changed(sock, room, joined=True)
        members = self.rooms.get(room)
        if members is None:
            self.rooms[room] = {sock: None}
            self.room_created(room)
        else:
            members[sock] = None

    def remove(self, sock: Socket, room: str) -> None:
        self._membership_changed(sock, room, joined=False)
        members = self.rooms.get(room)
        if members is not None:
            members.pop(sock, None)
            if not members:
                del self.rooms[room]
                self.room_deleted(room)

    def members(self, room: str) -> dict[Socket, None]:
        """This process's members of ``room`` (do not modify the result)."""
        members = self.rooms.get(room)
        if members is not None:
            return members
        sock = self.namespace.sockets.get(room)
        return {sock: None} if sock is not None else {}

    def room_size(self, room: str) -> int:
        """How many sockets of this process are in ``room``."""
        return len(self.members(room))

    def room_created(self, room: str) -> None:
        """``room`` got its first local member."""

    def room_deleted(self, room: str) -> None:
        """``room`` lost its last local member."""

    def socket_connected(self, sock: Socket) -> None:
        """``sock`` joined the namespace (called before it is listed in ``namespace.sockets``)."""
        self._membership_changed(sock, None, joined=True)

    def socket_disconnected(self, sock: Socket) -> None:
        """``sock`` left the namespace (called before it leaves its rooms)."""
        self._membership_changed(sock, None, joined=False)

    # -- broadcast ------------------------------------------------------------------------
    def broadcast_text(self, text: str, rooms: Rooms, exclude: Excluded, droppable: bool, local: bool) -> int:
        """Send an encoded Engine.IO text packet (``"42..."``) to this process's recipients.

        Framed once; joins the open batch when the previous broadcast of this loop turn went
        to the same recipients (O(1), whatever the room size). Returns how many sockets it
        was queued for. ``local`` only matters to cluster adapters.
        """
        frame = text_frame(text)
        flusher = self.flusher
        key = (self, rooms, droppable, exclude)
        batch = flusher.open_batch
        if batch is not None and batch.key == key:
            batch.add(frame, text)
            sent = batch.recipients
        else:
            batch = FrameBatch(key, droppable)
            batch.add(frame, text)
            flusher.open_batch = None  # closes the previous batch; its references just end
            sent = 0
            recipients = self._recipients(rooms, exclude)
            for sock in recipients:
                if sock.engine.queue_batch(batch):
                    sent += 1
            batch.recipients = sent
            if droppable:
                batch.skipped = len(recipients) - sent
            flusher.open_batch = batch
        self.broadcasts += 1
        self.deliveries += sent
        self.broadcast_bytes += len(frame) * sent
        self.dropped_frames += batch.skipped
        return sent

    def broadcast_parts(self, parts: list[str | bytes], rooms: Rooms, exclude: Excluded, local: bool) -> int:
        """Send an encoded packet with binary attachments (header text first) to this
        process's recipients; returns how many."""
        recipients = self._recipients(rooms, exclude)
        for sock in recipients:
            sock.send_parts(parts)
        self.broadcasts += 1
        self.deliveries += len(recipients)
        self.broadcast_bytes += sum(len(part) for part in parts) * len(recipients)
        return len(recipients)

    def _recipients(self, rooms: Rooms, exclude: Excluded) -> list[Socket]:
        if rooms is None:
            chosen: Iterable[Socket] = self.namespace.sockets.values()
        elif isinstance(rooms, str):
            chosen = self.members(rooms)
        else:
            union: dict[Socket, None] = {}
            for room in rooms:
                union.update(self.members(room))
            chosen = union
        if not exclude:
            return list(chosen)
        return [s for s in chosen if s not in exclude]

    def _membership_changed(self, sock: Socket, room: str | None, joined: bool) -> None:
        """Keep the open batch right: a new member reads it from now on, a leaver stops.

        ``room`` None means the namespace itself (the socket connects or disconnects).
        """
        batch = self.flusher.open_batch
        if batch is None:
            return
        adapter, rooms, _, excluded = batch.key
        if adapter is not self:
            return
        if room is None:
            if rooms is None or rooms == sock.sid:  # namespace-wide, or this socket's own sid
                if joined:
                    self.flusher.open_batch = None
                else:
                    sock.engine.cut_batch(batch)
            return
        if rooms == room and excluded is None:
            if joined:
                sock.engine.queue_tail(batch)
                batch.recipients += 1
            else:
                sock.engine.cut_batch(batch)
        elif rooms is None or excluded is not None or (isinstance(rooms, tuple) and room in rooms):
            self.flusher.open_batch = None  # a key we cannot follow: later broadcasts start anew

    # -- the cluster API (inert in one process) --------------------------------------------
    @property
    def healthy(self) -> bool:
        """False while a cluster adapter's link to the other nodes is down."""
        return True

    def server_publish(self, room: str | None, message: object) -> None:
        """Send ``message`` to the other nodes' ``on_server_message`` (none here)."""

    async def request(self, room: str | None, message: object, timeout: float) -> list[Any]:
        """Ask the other nodes' ``on_request``; their replies (none here)."""
        return []

    async def start(self) -> None:
        """Called by ``Server.start``."""

    async def close(self) -> None:
        """Called by ``Server.shutdown``."""
