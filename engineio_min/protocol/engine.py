"""The server side of one Engine.IO 4 session, as a state machine without I/O.

Layer: protocol (pure; imports the standard library, ``engineio_min.codec``,
``engineio_min.errors`` and ``protocol.reasons``: no asyncio, no sockets, no clock).

Theory of operation. ``EioSessionMachine`` holds every rule of an Engine.IO session:
which transport carries it, the polling outbox, the heartbeat, the upgrade probe and the
close. It does no I/O. The layer that drives it (``engineio_min.engine.EngineSession``, or
a test) subclasses it: it feeds inputs by calling the input methods, with the current time
as ``now`` where a deadline follows, and it carries out the outputs by implementing the
output methods (the ``_``-prefixed hooks at the end of the class). A subclass, not a
machine object held by the session: a session is then ONE object with slots, and the
broadcast path reads ``closed`` without an extra hop.

States (``EioState``) and the one transition table (``TRANSITIONS``)::

    HANDSHAKE --open polling--> POLLING --probe opened--> PROBING --probe ping--> UPGRADING
    HANDSHAKE --open websocket--> WEBSOCKET <-------------------------upgrade------'
    PROBING, UPGRADING --probe failed--> POLLING
    POLLING, PROBING, UPGRADING --close with reply--> CLOSING --forget--> CLOSED
    POLLING, PROBING, UPGRADING, WEBSOCKET --close--> CLOSED
    self-loops: "ping due" (every open state), "poll" (GET) and "post" (POST) on the
    polling states and CLOSING, "probe ping" on UPGRADING

* POLLING: packets for the client wait in ``outbox`` as polling records; one GET at a time
  may be parked (``poll_parked``) until a record is queued, the heartbeat pings or the
  session closes. A second GET while one is parked is refused and closes the session.
* PROBING: a WebSocket naming the sid was opened (the probe); polling goes on meanwhile.
* UPGRADING: the probe got ``2probe`` and answered ``3probe``; every GET is answered with a
  noop so the client drains polling, and queued records wait. ``5`` on the probe moves the
  session onto it, the waiting records first (nothing lost, nothing reordered). Anything
  else on the probe, its closing, or the upgrade deadline ends the probe: back to POLLING.
* WEBSOCKET: every packet is a frame on the session's WebSocket.
* CLOSING: the server closed a polling session (``forced close``) while records, or the
  ``1``, were still to be fetched. The application was told; the sid answers GETs until
  the client took ``6\\x1e1`` or the grace deadline passed.
* CLOSED: over; the sid is forgotten.

Ground rules (h11's style): a call whose event is not in the table for the current state
raises ``IllegalTransition`` (a bug of the driver, never of the peer). What the peer does
wrong is a close (``parse error``, ``transport error``), and a WebSocket that names an
upgraded, upgrading or closing session is refused (``probe_opened`` returns False; SPEC 2.8:
accept it and close it at once). ``request_close`` on a closed session does nothing, and
packets that arrive after the close are dropped: transports deliver what was in flight.

Inputs: ``open_polling`` / ``open_websocket`` (the handshake), ``deadline_passed`` (a timer
it armed), ``frame_received`` (the session's WebSocket), ``poll_get``, ``poll_post`` then
``packets_received``, ``poll_aborted`` (a parked GET's client left), ``records_queued``
(the driver appended to ``outbox``), ``probe_opened`` / ``probe_received`` / ``probe_closed``
and ``request_close``. Before a close or an upgrade the machine asks the driver to write
what it coalesced (``_flush_queued``), so what was sent before goes out before.

Outputs: answers for a parked GET (``_answer_poll``, ``_refuse_poll``), packets to queue on
the current transport (``_send_packet``), probe frames (``_probe_write``, ``_probe_close``,
``_upgraded``), the WebSocket's close, events for the application (``_message``, and
``_closed`` with a ``CloseReason``, exactly once), the sid's end (``_forget``) and
deadlines (``_arm(deadline, at)`` / ``_disarm(deadline)``; PING and PONG share one slot,
the heartbeat). Text messages (``4...``) on the WebSocket take a short path that builds no
packet object.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Final

from engineio_min.codec.eio import (
    CLOSE_TEXT,
    MESSAGE_PREFIX,
    NOOP_TEXT,
    PING_PROBE_TEXT,
    PING_TEXT,
    POLLING_CLOSE_REPLY,
    PONG_PROBE_TEXT,
    UPGRADE_TEXT,
    EioPacket,
    EioType,
    decode_eio,
)
from engineio_min.codec.payload import MAX_PACKETS_PER_RESPONSE, SEPARATOR, PayloadDecoder
from engineio_min.errors import DecodeError, HandshakeCode, IllegalTransition, PayloadTooLarge
from engineio_min.protocol.reasons import CloseReason

__all__ = [
    "CLOSED_STATES",
    "TRANSITIONS",
    "Deadline",
    "EioEvent",
    "EioSessionMachine",
    "EioState",
    "EioTiming",
]


class EioState(Enum):
    """Where an Engine.IO session is (see the module docstring)."""

    HANDSHAKE = "handshake"
    POLLING = "polling"
    PROBING = "probing"
    UPGRADING = "upgrading"
    WEBSOCKET = "websocket"
    CLOSING = "closing"
    CLOSED = "closed"

    # Members are compared by identity; hash them so too. Enum's own __hash__ is a Python
    # function (hash of the name) run at every table lookup, on the connect path.
    __hash__ = object.__hash__


class EioEvent(StrEnum):
    """What may happen to a session: the keys of the transition table."""

    OPEN_POLLING = "open polling"
    OPEN_WEBSOCKET = "open websocket"
    PING_DUE = "ping due"
    POLL = "poll"
    POST = "post"
    PROBE_OPENED = "probe opened"
    PROBE_PING = "probe ping"
    UPGRADE = "upgrade"
    PROBE_FAILED = "probe failed"
    CLOSE = "close"
    CLOSE_WITH_REPLY = "close with reply"
    FORGET = "forget"


class Deadline(Enum):
    """The timers a session asks for. PING and PONG are one slot (the heartbeat)."""

    PING = "ping"  # the ping interval is over: send a ping
    PONG = "pong"  # the pong did not come: ping timeout
    UPGRADE = "upgrade"  # the probe did not finish
    GRACE = "grace"  # a closing polling session stops waiting for its last GET

    __hash__ = object.__hash__  # identity, as EioState's


_S = EioState
_E = EioEvent

# Python 3.11's EnumType has a __getattr__, which makes every ``Deadline.PING`` a slow attribute
# lookup (~90 ns); the members used on every connect and heartbeat are module globals instead.
_OPEN_POLLING: Final = EioEvent.OPEN_POLLING
_OPEN_WEBSOCKET: Final = EioEvent.OPEN_WEBSOCKET
_PING_DUE: Final = EioEvent.PING_DUE
_PING: Final = Deadline.PING
_PONG: Final = Deadline.PONG
_MESSAGE_TYPE: Final = EioType.MESSAGE
_PONG_TYPE: Final = EioType.PONG

# THE table: {state: {event: next state}}. Nothing else changes ``state``.
TRANSITIONS: Final[dict[EioState, dict[EioEvent, EioState]]] = {
    _S.HANDSHAKE: {_E.OPEN_POLLING: _S.POLLING, _E.OPEN_WEBSOCKET: _S.WEBSOCKET},
    _S.POLLING: {
        _E.PING_DUE: _S.POLLING, _E.POLL: _S.POLLING, _E.POST: _S.POLLING,
        _E.PROBE_OPENED: _S.PROBING,
        _E.CLOSE: _S.CLOSED, _E.CLOSE_WITH_REPLY: _S.CLOSING,
    },
    _S.PROBING: {
        _E.PING_DUE: _S.PROBING, _E.POLL: _S.PROBING, _E.POST: _S.PROBING,
        _E.PROBE_PING: _S.UPGRADING, _E.PROBE_FAILED: _S.POLLING,
        _E.CLOSE: _S.CLOSED, _E.CLOSE_WITH_REPLY: _S.CLOSING,
    },
    _S.UPGRADING: {
        _E.PING_DUE: _S.UPGRADING, _E.POLL: _S.UPGRADING, _E.POST: _S.UPGRADING,
        _E.PROBE_PING: _S.UPGRADING, _E.UPGRADE: _S.WEBSOCKET, _E.PROBE_FAILED: _S.POLLING,
        _E.CLOSE: _S.CLOSED, _E.CLOSE_WITH_REPLY: _S.CLOSING,
    },
    _S.WEBSOCKET: {_E.PING_DUE: _S.WEBSOCKET, _E.CLOSE: _S.CLOSED},
    # Closed for the application, still answering the GETs that fetch what is left.
    _S.CLOSING: {_E.POLL: _S.CLOSING, _E.POST: _S.CLOSING, _E.FORGET: _S.CLOSED},
    _S.CLOSED: {},
}

# States in which the application was told the session is over.
CLOSED_STATES: Final = frozenset({EioState.CLOSING, EioState.CLOSED})


@dataclass(frozen=True, slots=True)
class EioTiming:
    """The delays of one endpoint's sessions, in seconds (one object shared by them all)."""

    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    # The reference server gives up on an unfinished upgrade after 10 s.
    upgrade_timeout: float = 10.0
    # How long a server-closed polling session waits for the GET that carries its "1".
    closing_grace: float = 5.0


class EioSessionMachine:
    """The rules of one Engine.IO server session; subclass it to drive it (module docstring).

    Attributes the driver may read: ``state``, ``closed`` (True from CLOSING on), ``transport``,
    ``poll_parked`` (a GET waits for an answer), ``awaiting_pong``, ``outbox`` (polling
    records not yet fetched) and ``outbox_bytes`` (their length). The driver may append
    records to ``outbox`` itself (the one-write-per-turn path does) if it then adds their
    length to ``outbox_bytes`` and calls ``records_queued``.
    """

    __slots__ = ("awaiting_pong", "closed", "outbox", "outbox_bytes", "poll_parked", "state", "timing", "transport")

    def __init__(self, timing: EioTiming) -> None:
        self.timing = timing
        self.state = EioState.HANDSHAKE
        self.closed = False
        self.poll_parked = False
        self.awaiting_pong = False
        self.outbox: list[str] = []
        self.outbox_bytes = 0
        # "polling", or "websocket" once opened or upgraded there; kept after the close, so
        # that the application can tell which transport a closed session was on.
        self.transport = "polling"

    def _transition(self, event: EioEvent) -> None:
        state = self.state
        new_state = TRANSITIONS[state].get(event)
        if new_state is None:
            raise IllegalTransition(state, event)
        self.state = new_state
        self.closed = new_state in CLOSED_STATES

    # -- inputs: the session's life -------------------------------------------------
    def open_polling(self, now: float) -> None:
        """The handshake GET is being answered with the OPEN packet."""
        self._transition(_OPEN_POLLING)
        self._arm(_PING, now + self.timing.ping_interval)

    def open_websocket(self, now: float) -> None:
        """The handshake WebSocket is being accepted with the OPEN packet."""
        self._transition(_OPEN_WEBSOCKET)
        self.transport = "websocket"
        self._arm(_PING, now + self.timing.ping_interval)

    def deadline_passed(self, deadline: Deadline, now: float) -> None:
        """A deadline this machine armed (and did not disarm) has come."""
        if deadline is _PING:
            self._transition(_PING_DUE)
            self.awaiting_pong = True
            self._send_packet(PING_TEXT)
            self._arm(_PONG, now + self.timing.ping_timeout)
        elif deadline is _PONG:
            if not self.awaiting_pong or self.closed:
                raise IllegalTransition(self.state, "pong deadline without a ping")
            self.request_close(CloseReason.PING_TIMEOUT, now)
        elif deadline is Deadline.UPGRADE:
            self._fail_probe()
        else:
            self._transition(EioEvent.FORGET)
            self._forget()

    def request_close(self, reason: str, now: float) -> None:
        """Close the session (idempotent): answer a parked GET, end the transports, report ``reason``.

        A ``forced close`` of a polling session keeps the sid for ``closing_grace``: what was
        queued before the close goes out first and the ``1`` in an answer of its own
        (socket.io-client acts on a ``1`` before the other packets of the same payload). A
        shutdown only ends the transport, as a network failure would: the stock clients
        reconnect after a transport failure, but python-engineio takes a ``1`` for a server
        disconnect and stays away.
        """
        if self.closed:
            return
        self._flush_queued()  # what was sent before the close goes out before it
        if self.closed:  # flushing it found a slow consumer, which closed the session
            return
        state = self.state
        self._disarm(Deadline.PONG if self.awaiting_pong else Deadline.PING)
        probing = state is EioState.PROBING or state is EioState.UPGRADING
        if probing:
            self._disarm(Deadline.UPGRADE)
        shutdown = reason == CloseReason.SERVER_SHUTDOWN
        if state is EioState.WEBSOCKET:
            self._transition(EioEvent.CLOSE)
            self._close_websocket(shutdown)
        elif reason == CloseReason.FORCED_CLOSE and (not self.poll_parked or self.outbox):
            self._transition(EioEvent.CLOSE_WITH_REPLY)
            self._arm(Deadline.GRACE, now + self.timing.closing_grace)
            if self.poll_parked:
                self.poll_parked = False
                self._answer_poll(self._take_records())
        else:
            self._transition(EioEvent.CLOSE)
        if self.poll_parked:
            self.poll_parked = False
            if shutdown:
                self._refuse_poll()
            else:
                self._answer_poll(NOOP_TEXT if reason == CloseReason.TRANSPORT_CLOSE else CLOSE_TEXT)
        if probing:
            self._probe_close()
        if self.state is EioState.CLOSED:
            self._forget()
        self._closed(reason)

    # -- inputs: packets ---------------------------------------------------------------
    def frame_received(self, data: str | bytes, now: float) -> None:
        """One message on the session's WebSocket (one Engine.IO packet)."""
        if self.closed:
            return
        if isinstance(data, str) and data[:1] == MESSAGE_PREFIX:
            self._message(data[1:])  # the hot path: no packet object
            return
        try:
            packet = decode_eio(data)
        except DecodeError:
            self.request_close(CloseReason.PARSE_ERROR, now)
            return
        self.packet_received(packet, now)

    def packets_received(self, packets: list[EioPacket], now: float) -> None:
        """The records of one POST, in order; those after a close are dropped."""
        for packet in packets:
            if self.closed:
                break
            self.packet_received(packet, now)

    def packet_received(self, packet: EioPacket, now: float) -> None:
        """One decoded packet from the client, on either transport."""
        if self.closed:
            return
        kind = packet.type
        if kind is _MESSAGE_TYPE:
            self._message(packet.data)
        elif kind is _PONG_TYPE:
            # An unsolicited pong changes nothing (and cannot pile up deadlines).
            if self.awaiting_pong:
                self.awaiting_pong = False
                self._disarm(_PONG)
                self._arm(_PING, now + self.timing.ping_interval)
        elif kind is EioType.CLOSE:
            self.request_close(CloseReason.TRANSPORT_CLOSE, now)
        elif kind is EioType.PING:
            # v4: only the server pings ("invalid heartbeat direction").
            self.request_close(CloseReason.PARSE_ERROR, now)
        # OPEN, UPGRADE and NOOP outside an upgrade are ignored, as the reference does.

    # -- inputs: polling -----------------------------------------------------------------
    def poll_get(self, now: float) -> str | HandshakeCode | None:
        """A polling GET arrived.

        Returns:
            the body to answer it with now; None: it is parked (answered later through
            ``_answer_poll`` or ``_refuse_poll``); a ``HandshakeCode``: refuse it with that
            error (a second GET while one is parked: the session is closed already).
        """
        self._transition(EioEvent.POLL)
        state = self.state
        if state is EioState.CLOSING:
            if self.outbox:
                return self._take_records()
            self._disarm(Deadline.GRACE)
            self._transition(EioEvent.FORGET)
            self._forget()
            return POLLING_CLOSE_REPLY
        if self.poll_parked:
            # Engine.IO protocol: one GET at a time. The parked one gets "1", this one 400.
            self.request_close(CloseReason.TRANSPORT_ERROR, now)
            return HandshakeCode.BAD_REQUEST
        if state is EioState.UPGRADING:
            return NOOP_TEXT
        if self.outbox:
            return self._take_records()
        self.poll_parked = True
        return None

    def poll_aborted(self, now: float) -> None:
        """The client left while its GET was parked."""
        if self.poll_parked:
            self.poll_parked = False
            self.request_close(CloseReason.TRANSPORT_ERROR, now)

    def poll_post(self, body: bytes, binary: bool, now: float) -> list[EioPacket] | HandshakeCode:
        """A polling POST arrived; ``binary``: its content type is ``application/octet-stream``.

        Returns:
            its packets (answer "ok", then hand them to ``packets_received``), or a
            ``HandshakeCode`` to refuse it with: the session is closed already.
        """
        self._transition(EioEvent.POST)
        if binary:  # Engine.IO 4 polling carries text only (binary goes base64 in "b" records)
            self.request_close(CloseReason.TRANSPORT_ERROR, now)
            return HandshakeCode.BAD_REQUEST
        decoder = PayloadDecoder()
        try:
            packets = decoder.feed(body)
            packets += decoder.finish()
        except (DecodeError, PayloadTooLarge):
            self.request_close(CloseReason.PARSE_ERROR, now)
            return HandshakeCode.BAD_REQUEST
        return packets

    def records_queued(self) -> None:
        """Records were appended to ``outbox``: answer the parked GET with them, if one waits.

        (A GET is parked only in POLLING and PROBING: the one found at ``2probe`` is answered
        with a noop, and later ones are not parked, so no state test is needed here.)
        """
        if self.poll_parked and self.outbox:
            self.poll_parked = False
            self._answer_poll(self._take_records())

    def queue_record(self, record: str) -> None:
        """Queue one polling record (a driver without its own write coalescing uses this)."""
        self.outbox.append(record)
        self.outbox_bytes += len(record)
        self.records_queued()

    def drop_records(self) -> None:
        """Forget the unfetched records (the slow-consumer policy cut the client off)."""
        self.outbox.clear()
        self.outbox_bytes = 0

    def _take_records(self) -> str:
        # python-engineio clients refuse a payload of more than 16 packets.
        outbox = self.outbox
        batch = outbox[:MAX_PACKETS_PER_RESPONSE]
        del outbox[:MAX_PACKETS_PER_RESPONSE]
        self.outbox_bytes = sum(len(r) for r in outbox) if outbox else 0
        return SEPARATOR.join(batch)

    # -- inputs: the upgrade -------------------------------------------------------------
    def probe_opened(self, now: float) -> bool:
        """A WebSocket naming this sid was accepted.

        Returns:
            True: it is the probe. False: the session is upgraded, already probing or
            closing; the driver closes that WebSocket at once (SPEC 2.8) and the session
            keeps its own transport.
        """
        if self.state is not EioState.POLLING:
            return False
        self._transition(EioEvent.PROBE_OPENED)
        self._arm(Deadline.UPGRADE, now + self.timing.upgrade_timeout)
        return True

    def probe_received(self, data: str | bytes, now: float) -> None:
        """One message on the probe: ``2probe``, then ``5``; anything else ends the probe."""
        state = self.state
        if data == PING_PROBE_TEXT:  # again while UPGRADING: answered again, as the reference does
            self._transition(EioEvent.PROBE_PING)
            self._probe_write(PONG_PROBE_TEXT)
            if self.poll_parked:  # let the client drain polling: it waits for this GET
                self.poll_parked = False
                self._answer_poll(NOOP_TEXT)
        elif state is EioState.UPGRADING and data == UPGRADE_TEXT:
            self._finish_upgrade()
        else:
            self._fail_probe()

    def probe_closed(self) -> None:
        """The probe's connection ended before the upgrade."""
        self._fail_probe()

    def _fail_probe(self) -> None:
        self._transition(EioEvent.PROBE_FAILED)
        self._disarm(Deadline.UPGRADE)
        self._probe_close()
        # Nothing to hand to a parked GET here: one parked while PROBING took the records as
        # they came, and none is parked while UPGRADING (each is answered with a noop).

    def _finish_upgrade(self) -> None:
        self._disarm(Deadline.UPGRADE)
        self._flush_queued()  # into the outbox, which moves to the WebSocket below
        if self.closed:
            return
        self._transition(EioEvent.UPGRADE)
        self.transport = "websocket"
        if self.poll_parked:
            self.poll_parked = False
            self._answer_poll(NOOP_TEXT)
        records, self.outbox, self.outbox_bytes = self.outbox, [], 0
        self._upgraded(records)

    # -- outputs: the driver implements these ----------------------------------------------
    def _answer_poll(self, body: str) -> None:
        """Answer the parked GET with ``body`` (200, text)."""
        raise NotImplementedError

    def _refuse_poll(self) -> None:
        """Answer the parked GET with the shutdown refusal (503), so the client reconnects."""
        raise NotImplementedError

    def _send_packet(self, text: str) -> None:
        """Queue a control packet (the ping) on the current transport."""
        raise NotImplementedError

    def _probe_write(self, text: str) -> None:
        """Write a text frame on the probe."""
        raise NotImplementedError

    def _probe_close(self) -> None:
        """Close the probe (if it is still open); it will bring no more input."""
        raise NotImplementedError

    def _upgraded(self, records: list[str]) -> None:
        """The probe is now the session's WebSocket: write ``records`` (polling records) on it, in order."""
        raise NotImplementedError

    def _close_websocket(self, going_away: bool) -> None:
        """Close the session's WebSocket (code 1001 if ``going_away``, else 1000)."""
        raise NotImplementedError

    def _flush_queued(self) -> None:
        """Write out what the driver coalesced and did not write yet (before a close or upgrade)."""
        raise NotImplementedError

    def _message(self, data: str | bytes) -> None:
        """A message for the application: str for text, bytes for binary."""
        raise NotImplementedError

    def _closed(self, reason: str) -> None:
        """The session is over (called once): tell the application ``reason``."""
        raise NotImplementedError

    def _forget(self) -> None:
        """The sid names nothing any more: later requests with it are refused."""
        raise NotImplementedError

    def _arm(self, deadline: Deadline, at: float) -> None:
        """Call ``deadline_passed(deadline, now)`` at ``at`` (replacing that slot's timer)."""
        raise NotImplementedError

    def _disarm(self, deadline: Deadline) -> None:
        """Cancel ``deadline``'s timer (nothing if it is not armed or already passed)."""
        raise NotImplementedError
