"""A connection pair for the Engine.IO session machine: no sockets, a fake clock.

``ServerSide`` drives ``EioSessionMachine`` the way ``engineio_min.engine`` does, with the
transports replaced by lists: the answer of a parked GET, the frames of the session's
WebSocket and of the probe. It coalesces what the application sends in one "turn" and
writes it at ``end_turn`` (as the Flusher does), arms timers in a dict, and records every
transition and every output, so the tests can check the machine's promises.

``Client`` is a small client-side Engine.IO machine (what socket.io-client's engine does):
it reads polling payloads and WebSocket frames, answers pings, and upgrades with
``2probe`` / ``5``. ``Pair`` wires both and counts the messages each side sent and got.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engineio_min.codec.eio import (
    CLOSE_TEXT,
    NOOP_TEXT,
    PING_PROBE_TEXT,
    PING_TEXT,
    PONG_PROBE_TEXT,
    UPGRADE_TEXT,
    EioPacket,
    EioType,
    decode_eio,
    encode_eio,
    encode_eio_polling,
)
from engineio_min.codec.payload import MAX_PACKETS_PER_RESPONSE, SEPARATOR, encode_payload
from engineio_min.errors import HandshakeCode
from engineio_min.protocol.engine import TRANSITIONS, Deadline, EioEvent, EioSessionMachine, EioState, EioTiming

TIMING = EioTiming(ping_interval=25.0, ping_timeout=20.0, upgrade_timeout=10.0, closing_grace=5.0)

# What the parked GET was answered with when the server refused it at shutdown.
REFUSED = "<503>"


def _slot(deadline: Deadline) -> Deadline:
    # PING and PONG are one timer: the heartbeat.
    return Deadline.PING if deadline is Deadline.PONG else deadline


class ServerSide(EioSessionMachine):
    """The server machine with in-memory transports (see the module docstring)."""

    def __init__(self, timing: EioTiming = TIMING) -> None:
        super().__init__(timing)
        self.now = 0.0
        self.parked = False  # a GET is waiting for an answer (the driver's own view)
        self.poll_answers: list[str] = []  # answers of parked GETs, in order
        self.ws_open = False
        self.ws_out: list[str | bytes] = []  # frames written on the session's WebSocket
        self.ws_close_code: int | None = None
        self.probe_open = False
        self.probe_out: list[str] = []
        # Sent during this turn, written at end_turn; encoded for the transport of the moment
        # it was sent (as engine.py does: a frame, or a polling record).
        self.pending: list[tuple[str, str | bytes]] = []
        self.messages: list[str | bytes] = []  # what the application received
        self.reasons: list[str] = []  # close reasons reported
        self.closed_at: float | None = None
        self.forgotten = 0
        self.timers: dict[Deadline, tuple[Deadline, float]] = {}
        self.transitions: list[tuple[EioState, EioEvent, EioState]] = []
        self.pings_sent: list[float] = []

    def _transition(self, event: EioEvent) -> None:
        before = self.state
        super()._transition(event)
        self.transitions.append((before, event, self.state))

    # -- the application / the loop -----------------------------------------------------
    def send(self, data: str | bytes) -> None:
        """The application sends one message (written at the end of the turn)."""
        if self.closed:
            return
        packet = EioPacket(EioType.MESSAGE, data)
        if self.state is EioState.WEBSOCKET:
            self.pending.append(("frame", encode_eio(packet)))
        else:
            self.pending.append(("record", encode_eio_polling(packet)))

    def end_turn(self) -> None:
        pending, self.pending = self.pending, []
        if not pending or self.closed:
            return
        if self.state is EioState.WEBSOCKET:
            # Records coalesced before the upgrade must have been flushed into the outbox
            # (which moved to the WebSocket) before it: a record is no frame.
            assert all(kind == "frame" for kind, _ in pending), "polling records after the upgrade"
            self.ws_out.extend(item for _, item in pending)
            return
        for kind, record in pending:
            assert kind == "record" and isinstance(record, str)
            self.outbox.append(record)
            self.outbox_bytes += len(record)
        self.records_queued()

    def advance(self, seconds: float) -> None:
        """Move the clock; fire every due timer at its own time, in order."""
        target = self.now + seconds
        while True:
            due = [entry for entry in self.timers.values() if entry[1] <= target]
            if not due:
                break
            deadline, at = min(due, key=lambda entry: entry[1])
            del self.timers[_slot(deadline)]
            self.now = max(self.now, at)
            self.deadline_passed(deadline, self.now)
            self.end_turn()
        self.now = target

    def get(self) -> str | HandshakeCode | None:
        """A polling GET: its immediate answer, or None (parked)."""
        answer = self.poll_get(self.now)
        if answer is None:
            assert not self.parked, "two parked GETs"
            self.parked = True
        return answer

    # -- outputs -------------------------------------------------------------------------
    def _answer_poll(self, body: str) -> None:
        assert self.parked, "answer without a parked GET"
        self.parked = False
        self.poll_answers.append(body)

    def _refuse_poll(self) -> None:
        assert self.parked
        self.parked = False
        self.poll_answers.append(REFUSED)

    def _send_packet(self, text: str) -> None:
        assert text == PING_TEXT
        self.pings_sent.append(self.now)
        if self.state is EioState.WEBSOCKET:
            self.ws_out.append(text)
        else:
            self.queue_record(text)

    def _probe_write(self, text: str) -> None:
        assert self.probe_open
        self.probe_out.append(text)

    def _probe_close(self) -> None:
        self.probe_open = False

    def _upgraded(self, records: list[str]) -> None:
        assert self.probe_open
        self.probe_open = False
        self.ws_open = True
        for record in records:
            packet = decode_eio(record)
            self.ws_out.append(packet.data if isinstance(packet.data, bytes) else record)

    def _close_websocket(self, going_away: bool) -> None:
        self.ws_open = False
        self.ws_close_code = 1001 if going_away else 1000

    def _flush_queued(self) -> None:
        self.end_turn()

    def _message(self, data: str | bytes) -> None:
        self.messages.append(data)

    def _closed(self, reason: str) -> None:
        self.reasons.append(reason)
        self.closed_at = self.now

    def _forget(self) -> None:
        self.forgotten += 1

    def _arm(self, deadline: Deadline, at: float) -> None:
        assert at >= self.now
        # engine.py keeps these two in one slot: never both armed.
        other = {Deadline.UPGRADE: Deadline.GRACE, Deadline.GRACE: Deadline.UPGRADE}.get(deadline)
        assert other is None or other not in self.timers
        self.timers[_slot(deadline)] = (deadline, at)

    def _disarm(self, deadline: Deadline) -> None:
        self.timers.pop(_slot(deadline), None)


def table_allows(before: EioState, event: EioEvent, after: EioState) -> bool:
    return TRANSITIONS[before].get(event) is after


@dataclass
class Client:
    """The client side of the session (see the module docstring)."""

    transport: str = "polling"  # "polling", "websocket", "closed"
    received: list[str | bytes] = field(default_factory=list)  # messages from the server
    pings: int = 0  # pings received and not yet answered
    noops: int = 0
    got_close: bool = False

    def read_payload(self, body: str) -> None:
        records = body.split(SEPARATOR)
        # python-engineio clients refuse a payload of more than 16 packets.
        assert len(records) <= MAX_PACKETS_PER_RESPONSE, len(records)
        for record in records:
            self.read_packet(decode_eio(record), record)

    def read_frame(self, frame: str | bytes) -> None:
        self.read_packet(decode_eio(frame), frame)

    def read_packet(self, packet: EioPacket, raw: str | bytes) -> None:
        if packet.type is EioType.MESSAGE:
            self.received.append(packet.data)
        elif packet.type is EioType.PING:
            self.pings += 1
        elif packet.type is EioType.NOOP:
            self.noops += 1
        elif packet.type is EioType.CLOSE:
            self.got_close = True
            self.transport = "closed"
        else:
            raise AssertionError(f"unexpected packet from the server: {raw!r}")


class Pair:
    """A server session and its client, talking through in-memory transports."""

    def __init__(self, timing: EioTiming = TIMING) -> None:
        self.server = ServerSide(timing)
        self.client = Client()
        self.sent_down: list[str | bytes] = []  # the server application's messages, in order
        self.sent_up: list[str | bytes] = []  # the client's messages, in order
        self.ws_read = 0  # frames of server.ws_out the client has read
        self.answers_read = 0
        self.server.open_polling(0.0)
        self._counter = 0

    # -- server side ---------------------------------------------------------------
    def server_send(self, binary: bool = False) -> None:
        self._counter += 1
        data: str | bytes = f"down{self._counter}" if not binary else self._counter.to_bytes(4, "big")
        if not self.server.closed:
            self.sent_down.append(data)
        self.server.send(data)

    def end_turn(self) -> None:
        self.server.end_turn()
        self.deliver()

    def advance(self, seconds: float) -> None:
        self.server.advance(seconds)
        self.deliver()

    # -- what reaches the client -----------------------------------------------------
    def deliver(self) -> None:
        """The client reads what the server wrote: parked GET answers, WebSocket frames."""
        answers = self.server.poll_answers
        while self.answers_read < len(answers):
            body = answers[self.answers_read]
            self.answers_read += 1
            if body != REFUSED:
                self.client.read_payload(body)
        frames = self.server.ws_out
        while self.ws_read < len(frames):
            self.client.read_frame(frames[self.ws_read])
            self.ws_read += 1

    # -- client side ---------------------------------------------------------------
    def get(self) -> str | HandshakeCode | None:
        answer = self.server.get()
        if isinstance(answer, str):
            self.client.read_payload(answer)
        self.deliver()
        return answer

    def post(self, packets: list[EioPacket]) -> HandshakeCode | None:
        body = encode_payload(packets).encode()
        result = self.server.poll_post(body, False, self.server.now)
        if isinstance(result, HandshakeCode):
            return result
        self.server.packets_received(result, self.server.now)
        self.server.end_turn()
        self.deliver()
        return None

    def client_send(self, binary: bool = False) -> None:
        """The client sends one message on its current transport."""
        self._counter += 1
        data: str | bytes = f"up{self._counter}" if not binary else self._counter.to_bytes(4, "big")
        packet = EioPacket(EioType.MESSAGE, data)
        if not self.server.closed:
            self.sent_up.append(data)
        if self.server.state is EioState.WEBSOCKET:
            self.ws_send(encode_eio(packet))
        else:
            self.post([packet])

    def pong(self) -> None:
        """Answer one ping on the current transport."""
        self.client.pings -= 1
        if self.server.state is EioState.WEBSOCKET:
            self.ws_send("3")
        else:
            self.post([EioPacket(EioType.PONG)])

    def ws_send(self, frame: str | bytes) -> None:
        self.server.frame_received(frame, self.server.now)
        self.server.end_turn()
        self.deliver()

    # -- the upgrade -----------------------------------------------------------------
    def open_probe(self) -> bool:
        accepted = self.server.probe_opened(self.server.now)
        if accepted:
            self.server.probe_open = True
        return accepted

    def probe_send(self, text: str | bytes) -> None:
        self.server.probe_received(text, self.server.now)
        self.server.end_turn()
        self.deliver()

    def upgrade(self) -> None:
        """The whole upgrade as socket.io-client does it (no GET parked meanwhile)."""
        assert self.open_probe()
        self.probe_send(PING_PROBE_TEXT)
        assert self.server.probe_out[-1] == PONG_PROBE_TEXT
        self.probe_send(UPGRADE_TEXT)
        assert self.server.state is EioState.WEBSOCKET
        self.client.transport = "websocket"


__all__ = [
    "CLOSE_TEXT",
    "NOOP_TEXT",
    "REFUSED",
    "TIMING",
    "Client",
    "Pair",
    "ServerSide",
    "table_allows",
]
