"""The server side of Socket.IO 5 over one Engine.IO session, sans I/O.

Layer: protocol (no asyncio, no clock, no logging). Imports the standard library, the codec,
``engineio_min.errors`` and ``engineio_min.protocol.reasons``.

Theory of operation. A session carries any number of namespaces; each one the client joins is
a :class:`NamespaceLink` whose ``state`` moves only through :data:`TRANSITIONS`::

    (joined by CONNECT) -> CONNECTING --accept----------------> CONNECTED
                           CONNECTING --refuse----------------> REFUSED        (terminal)
                           CONNECTING --session close---------> DISCONNECTED   (terminal, not reported)
                           CONNECTED  --client/server disconnect, session close--> DISCONNECTED

CONNECTING is the time the application's connect hook runs: what the client sends for that
namespace is held in the link's inbox (delivered in order after ``accept``, dropped on
``refuse``), and what the application emits to it is held in its outbox (written right after
the CONNECT reply). A link in a terminal state is forgotten by the session, so the client may
join the namespace again. Asking for a transition the table lacks raises
:class:`~engineio_min.errors.IllegalTransition`: the driving layer has a bug. What the peer
sends never raises it: a packet that breaks SPEC §3.2 (bad text, a packet for a namespace not
joined, a second CONNECT, a CONNECT_ERROR from a client, a namespace name with control
characters) comes out as :class:`ProtocolViolation`, and the driver closes the Engine.IO
session with ``CloseReason.PARSE_ERROR``.

Per session (:class:`SioMachine`): the decoder, which reassembles binary attachments; the
attachment deadline (a binary packet's attachments must all come within
``attachment_timeout`` of its header); the connect deadline (no namespace accepted within
``connect_timeout``: the session is closed); the joined links by namespace name.

In: :meth:`SioMachine.receive` (each Engine.IO MESSAGE payload, text without its ``4`` or an
attachment, and the current time), :meth:`SioMachine.expire` (the current time, once
``deadline`` has passed), the application's decisions (``begin_connect``, ``accept``,
``refuse``, ``disconnect``, ``register_ack`` / ``forget_ack``, ``answer``) and
``session_closed`` when the Engine.IO session ends.

Out: ``receive`` returns what the application must handle: the decoded EVENT packet itself
(the hot path allocates no event object: the driver finds its link in ``links``), or one of
the event classes below, or None. Packets go out through the Engine.IO session given to the
machine and to each link (a :class:`PacketSink`: ``send_text`` / ``send_binary`` only queue,
the Engine.IO layer writes once per loop turn), in the order the rules say. ``deadline`` is the
next time :meth:`SioMachine.expire` must be called (None: no timer).
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Generic, Protocol, TypeVar

from engineio_min.codec.sio import (
    INVALID_NAMESPACE_MESSAGE,
    MESSAGE_PREFIX,
    InvalidEventPayload,
    SioDecoder,
    SioPacket,
    SioType,
    encode_connect_error_text,
    encode_connect_text,
    encode_disconnect_text,
    encode_sio,
)
from engineio_min.errors import DecodeError, IllegalTransition
from engineio_min.protocol.reasons import CloseReason

__all__ = [
    "TRANSITIONS",
    "AckReceived",
    "AckWaiter",
    "ConnectRequested",
    "InvalidEvent",
    "InvalidNamespace",
    "LinkState",
    "LinkTrigger",
    "NamespaceDisconnected",
    "NamespaceLink",
    "PacketSink",
    "ProtocolViolation",
    "SioEvent",
    "SioMachine",
]


class PacketSink(Protocol):
    """Where a machine's packets go: the Engine.IO session's send queue."""

    def send_text(self, text: str) -> None: ...

    def send_binary(self, data: bytes) -> None: ...


class LinkState(Enum):
    """Where one namespace of a session is."""

    CONNECTING = "connecting"  # the connect hook runs; the client's packets wait in the inbox
    CONNECTED = "connected"
    REFUSED = "refused"  # CONNECT_ERROR written; terminal
    DISCONNECTED = "disconnected"  # by either side, or with the session; terminal

    # Members are compared by identity; hash them so too. Enum's own __hash__ is a Python
    # function (hash of the name) run at every table lookup, on the connect path.
    __hash__ = object.__hash__


class LinkTrigger(Enum):
    """What may move a namespace link (the rows of the table)."""

    ACCEPT = "accept"
    REFUSE = "refuse"
    CLIENT_DISCONNECT = "client disconnect"
    SERVER_DISCONNECT = "server disconnect"
    SESSION_CLOSE = "session close"

    __hash__ = object.__hash__  # identity, as LinkState's


_CONNECTING: Final = LinkState.CONNECTING
_CONNECTED: Final = LinkState.CONNECTED
_REFUSED: Final = LinkState.REFUSED
_DISCONNECTED: Final = LinkState.DISCONNECTED
# (Module globals, not ``LinkTrigger.ACCEPT``: Python 3.11's EnumType.__getattr__ makes a member
# read through the class slow, and this one is on every connect.)
_ACCEPT: Final = LinkTrigger.ACCEPT

# The whole lifecycle of a namespace link. Anything not here is an IllegalTransition.
TRANSITIONS: Final[dict[tuple[LinkState, LinkTrigger], LinkState]] = {
    (_CONNECTING, LinkTrigger.ACCEPT): _CONNECTED,
    (_CONNECTING, LinkTrigger.REFUSE): _REFUSED,
    (_CONNECTING, LinkTrigger.SESSION_CLOSE): _DISCONNECTED,
    (_CONNECTED, LinkTrigger.CLIENT_DISCONNECT): _DISCONNECTED,
    (_CONNECTED, LinkTrigger.SERVER_DISCONNECT): _DISCONNECTED,
    (_CONNECTED, LinkTrigger.SESSION_CLOSE): _DISCONNECTED,
}

# Called with the client's ack arguments; the machine holds it, the driver calls it.
AckWaiter = Callable[[list[Any]], object]

S = TypeVar("S", bound=PacketSink)

_CONNECT: Final = SioType.CONNECT
_DISCONNECT: Final = SioType.DISCONNECT
_EVENT: Final = SioType.EVENT
_ACK: Final = SioType.ACK
_CONNECT_ERROR: Final = SioType.CONNECT_ERROR


class NamespaceLink(Generic[S]):
    """One namespace joined by one client: its state, inbox, outbox and pending acks.

    The driving layer subclasses it (``engineio_min.socketio.Socket``), so that a socket is one
    object. ``state`` belongs to the machine: read it, never assign it.
    """

    __slots__ = ("_acks", "_inbox", "_next_ack_id", "_outbox", "engine", "nsp", "state")

    def __init__(self, engine: S, nsp: str) -> None:
        self.engine = engine
        self.nsp = nsp
        self.state = _CONNECTING
        # Engine.IO texts ("42...") and encode_sio() parts emitted before the CONNECT reply.
        self._outbox: list[str | list[str | bytes]] | None = []
        # The client's packets while CONNECTING (created with the first one).
        self._inbox: list[SioPacket] | None = None
        # Ack id -> waiter of the emits with an ack still unanswered (created with the first).
        self._acks: dict[int, AckWaiter] | None = None
        self._next_ack_id = 0

    def send_text(self, text: str) -> None:
        """Send one Engine.IO text packet of this namespace (``"42..."``).

        Held until the CONNECT reply while CONNECTING; dropped once refused or closed before
        being accepted.
        """
        outbox = self._outbox
        if outbox is None:
            self.engine.send_text(text)
        elif self.state is _CONNECTING:
            outbox.append(text)

    def send_parts(self, parts: list[str | bytes]) -> None:
        """Send an encoded packet (``encode_sio`` parts: header text, then attachments); as
        ``send_text`` for when."""
        outbox = self._outbox
        if outbox is not None:
            if self.state is _CONNECTING:
                outbox.append(parts)
            return
        engine = self.engine
        header = parts[0]
        assert isinstance(header, str)
        engine.send_text(MESSAGE_PREFIX + header)
        for attachment in parts[1:]:
            assert isinstance(attachment, bytes)
            engine.send_binary(attachment)


L = TypeVar("L", bound=NamespaceLink[Any])


# -- what receive() reports besides EVENT packets ----------------------------------------------
# (Not frozen: a frozen dataclass pays an object.__setattr__ per field, and ConnectRequested is
# on the connect path. Treat them as read only.)


@dataclass(slots=True)
class ConnectRequested:
    """The client asks to join ``namespace`` (which exists and is not joined): build its link,
    ``begin_connect`` it, run the connect hook, then ``accept`` or ``refuse``."""

    namespace: str
    auth: dict[str, Any]


@dataclass(slots=True)
class InvalidNamespace:
    """A CONNECT to a namespace the server does not have; its CONNECT_ERROR is written."""

    namespace: str


@dataclass(slots=True)
class AckReceived(Generic[L]):
    """The client answered an emit with an ack: call ``waiter(args)`` (once: the id is gone)."""

    link: L
    waiter: AckWaiter
    args: list[Any]


@dataclass(slots=True)
class NamespaceDisconnected(Generic[L]):
    """``link`` left CONNECTED for ``reason`` (reported once per link)."""

    link: L
    reason: CloseReason


@dataclass(slots=True)
class InvalidEvent(Generic[L]):
    """An EVENT for a CONNECTED namespace whose JSON did not decode. The application may
    refuse it (answering ``ack_id`` if any); otherwise it is a protocol violation."""

    link: L
    ack_id: int | None
    reason: str


@dataclass(slots=True)
class ProtocolViolation:
    """The client broke the protocol: close the session with ``CloseReason.PARSE_ERROR``."""

    reason: str


SioEvent = (
    ConnectRequested | InvalidNamespace | AckReceived[L] | NamespaceDisconnected[L] | InvalidEvent[L]
    | ProtocolViolation
)


def _transition(link: NamespaceLink[Any], trigger: LinkTrigger) -> None:
    """Move ``link`` as the table says, or raise IllegalTransition."""
    new_state = TRANSITIONS.get((link.state, trigger))
    if new_state is None:
        raise IllegalTransition(link.state, trigger.value)
    link.state = new_state


class SioMachine(Generic[S, L]):
    """The Socket.IO side of one Engine.IO session; see the module docstring.

    Args:
        engine: where packets that belong to no link go (an unknown namespace's CONNECT_ERROR).
        namespaces: the namespace names the server has (looked up at each CONNECT).
        now: the current time (the connect deadline counts from it).
        connect_timeout: seconds for the first namespace to be accepted.
        max_attachment_bytes, attachment_timeout: the bounds of a binary packet's attachments.
    """

    __slots__ = (
        "_attachment_deadline", "_attachment_timeout", "_connect_deadline", "_namespaces", "closed", "deadline",
        "decoder", "engine", "links",
    )

    def __init__(
        self,
        engine: S,
        namespaces: Container[str],
        now: float,
        *,
        connect_timeout: float,
        max_attachment_bytes: int,
        attachment_timeout: float,
    ) -> None:
        self.engine = engine
        self._namespaces = namespaces
        self.decoder = SioDecoder(max_attachment_bytes)
        self._attachment_timeout = attachment_timeout
        # Links in CONNECTING or CONNECTED, by namespace name (join order).
        self.links: dict[str, L] = {}
        self.closed = False
        self._connect_deadline: float | None = now + connect_timeout
        self._attachment_deadline: float | None = None
        # The earlier of the two: when expire() must be called next (None: never).
        self.deadline: float | None = self._connect_deadline

    # -- input from the client ----------------------------------------------------------
    def receive(self, data: str | bytes, now: float) -> SioPacket | SioEvent[L] | None:
        """One Engine.IO MESSAGE payload from the client (text without its ``4``, or bytes).

        Returns an EVENT ``SioPacket`` for a CONNECTED namespace (``links[packet.namespace]``
        is its link), a :data:`SioEvent`, or None (nothing for the application: a packet held,
        an attachment awaited, an unknown ack id).
        """
        if self.closed:
            raise IllegalTransition("closed", "receive")
        try:
            packet = self.decoder.feed(data)
        except InvalidEventPayload as exc:
            link = self.links.get(exc.namespace)
            if link is None or link.state is not _CONNECTED:
                return ProtocolViolation(str(exc))
            return InvalidEvent(link, exc.ack_id, str(exc))
        except DecodeError as exc:
            return ProtocolViolation(str(exc))
        if packet is None:
            if self._attachment_deadline is None and self.decoder.is_awaiting_attachments:
                self._attachment_deadline = now + self._attachment_timeout
                self._update_deadline()
            return None
        if self._attachment_deadline is not None:
            self._attachment_deadline = None
            self._update_deadline()
        kind = packet.type
        if kind is _CONNECT:
            return self._connect_requested(packet)
        link = self.links.get(packet.namespace)
        if link is None:
            return ProtocolViolation(f"packet for namespace {packet.namespace!r}, which is not joined")
        if kind is _CONNECT_ERROR:
            return ProtocolViolation("CONNECT_ERROR from a client")
        if link.state is _CONNECTING:
            inbox = link._inbox
            if inbox is None:
                link._inbox = [packet]
            else:
                inbox.append(packet)
            return None
        if kind is _EVENT:
            return packet
        return self._deliver(link, packet)

    def expire(self, now: float) -> CloseReason | None:
        """Call once ``deadline`` has passed: the reason to close the session with, or None."""
        if self.closed:
            return None
        attachment_deadline = self._attachment_deadline
        if attachment_deadline is not None and now >= attachment_deadline:
            return CloseReason.PARSE_ERROR  # what came of the packet is dropped with the session
        connect_deadline = self._connect_deadline
        if connect_deadline is not None and now >= connect_deadline:
            return CloseReason.FORCED_CLOSE  # no namespace accepted in time
        return None

    def session_closed(self) -> list[L]:
        """The Engine.IO session ended: every link ends; returns those that were CONNECTED
        (each reported once, in join order). Idempotent."""
        if self.closed:
            return []
        self.closed = True
        self._connect_deadline = self._attachment_deadline = self.deadline = None
        links, self.links = self.links, {}
        connected = [link for link in links.values() if link.state is _CONNECTED]
        for link in links.values():
            self._end(link, LinkTrigger.SESSION_CLOSE)
        return connected

    # -- the application's decisions ------------------------------------------------------
    def begin_connect(self, link: L) -> None:
        """Register a new CONNECTING ``link`` (after ConnectRequested for ``link.nsp``)."""
        if self.closed or link.state is not _CONNECTING or link.nsp in self.links:
            raise IllegalTransition(link.state if not self.closed else "closed", "begin_connect")
        self.links[link.nsp] = link

    def accept(self, link: L, sid: str) -> bool:
        """CONNECTING -> CONNECTED: write the CONNECT reply with ``sid``, then what was emitted
        meanwhile. True when the client sent packets meanwhile: then call ``take_buffered``
        until None for them."""
        if self.links.get(link.nsp) is not link:
            raise IllegalTransition(link.state, LinkTrigger.ACCEPT.value)
        _transition(link, _ACCEPT)
        if self._connect_deadline is not None:
            self._connect_deadline = None
            self._update_deadline()
        outbox, link._outbox = link._outbox, None
        link.engine.send_text(encode_connect_text(link.nsp, sid))
        for item in outbox or ():
            if isinstance(item, str):
                link.send_text(item)
            else:
                link.send_parts(item)
        return bool(link._inbox)

    def take_buffered(self, link: L) -> SioPacket | SioEvent[L] | None:
        """The next packet the client sent while ``link`` was CONNECTING, handled as
        ``receive`` would (None: no more, or the link or session ended meanwhile)."""
        while True:
            inbox = link._inbox
            if not inbox or link.state is not _CONNECTED or self.closed:
                link._inbox = None
                return None
            packet = inbox.pop(0)
            result = packet if packet.type is _EVENT else self._deliver(link, packet)
            if result is not None:
                return result

    def refuse(self, link: L, payload: dict[str, Any]) -> None:
        """CONNECTING -> REFUSED: write CONNECT_ERROR ``payload`` (``{"message": ...}`` and
        maybe ``"data"``); what the client and the application sent meanwhile is dropped."""
        if self.links.get(link.nsp) is not link:
            raise IllegalTransition(link.state, LinkTrigger.REFUSE.value)
        self._end(link, LinkTrigger.REFUSE)
        del self.links[link.nsp]
        link.engine.send_text(encode_connect_error_text(link.nsp, payload))

    def disconnect(self, link: L) -> None:
        """CONNECTED -> DISCONNECTED by the server: write DISCONNECT. (Reported by the caller:
        no NamespaceDisconnected comes out for it.)"""
        if self.links.get(link.nsp) is not link:
            raise IllegalTransition(link.state, LinkTrigger.SERVER_DISCONNECT.value)
        self._end(link, LinkTrigger.SERVER_DISCONNECT)
        del self.links[link.nsp]
        link.engine.send_text(encode_disconnect_text(link.nsp))

    def register_ack(self, link: L, waiter: AckWaiter) -> int:
        """A new ack id for an emit from the server; ``waiter`` gets the client's answer.

        On a link that ended the id is not kept (no answer can come: the caller times out).
        """
        ack_id = link._next_ack_id
        link._next_ack_id = ack_id + 1
        if link.state is _CONNECTED or link.state is _CONNECTING:
            acks = link._acks
            if acks is None:
                link._acks = {ack_id: waiter}
            else:
                acks[ack_id] = waiter
        return ack_id

    def forget_ack(self, link: L, ack_id: int) -> None:
        """The emit with ``ack_id`` stopped waiting (timeout): a late answer is ignored."""
        acks = link._acks
        if acks is not None:
            acks.pop(ack_id, None)

    def answer(self, link: L, ack_id: int, args: list[Any]) -> bool:
        """Answer the client's ack ``ack_id`` with ``args``; False (nothing written) unless
        the link is CONNECTED."""
        if link.state is not _CONNECTED:
            return False
        link.send_parts(encode_sio(SioPacket(_ACK, link.nsp, args, ack_id)))
        return True

    # -- internals ---------------------------------------------------------------------------
    def _connect_requested(self, packet: SioPacket) -> SioEvent[L]:
        name = packet.namespace
        if name not in self._namespaces:
            if not name.isprintable():
                # It would be echoed back raw; a control character (\x1e!) corrupts a polling payload.
                return ProtocolViolation("namespace name with control characters")
            self.engine.send_text(encode_connect_error_text(name, {"message": INVALID_NAMESPACE_MESSAGE}))
            return InvalidNamespace(name)
        if name in self.links:
            return ProtocolViolation(f"second CONNECT to {name!r}")
        auth = packet.data if isinstance(packet.data, dict) else {}
        return ConnectRequested(name, auth)

    def _deliver(self, link: L, packet: SioPacket) -> SioEvent[L] | None:
        """ACK or DISCONNECT for a CONNECTED link (EVENTs are returned as they are)."""
        if packet.type is _ACK:
            acks = link._acks
            ack_id = packet.id  # never None: the decoder refuses an ACK without one
            waiter = None if acks is None or ack_id is None else acks.pop(ack_id, None)
            if waiter is None:  # an unknown or repeated ack id is ignored (SPEC §3.2)
                return None
            return AckReceived(link, waiter, packet.data)
        # Only DISCONNECT is left: CONNECT and CONNECT_ERROR never reach a link.
        self._end(link, LinkTrigger.CLIENT_DISCONNECT)
        del self.links[link.nsp]
        return NamespaceDisconnected(link, CloseReason.CLIENT_NAMESPACE_DISCONNECT)

    def _end(self, link: L, trigger: LinkTrigger) -> None:
        """Into a terminal state: the inbox, outbox and pending acks go."""
        _transition(link, trigger)
        link._inbox = None
        link._acks = None
        outbox = link._outbox
        if outbox is not None:
            outbox.clear()  # kept (empty): later emits to a link never accepted are dropped

    def _update_deadline(self) -> None:
        connect_deadline = self._connect_deadline
        attachment_deadline = self._attachment_deadline
        if connect_deadline is None:
            self.deadline = attachment_deadline
        elif attachment_deadline is None:
            self.deadline = connect_deadline
        else:
            self.deadline = min(connect_deadline, attachment_deadline)
