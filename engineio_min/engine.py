"""Engine.IO v4 sessions and the endpoint that serves them over HTTP and WebSocket.

Layer: engine (asyncio timers + the transports below; the rules in protocol/engine.py).

Theory of operation. An ``EngineEndpoint`` owns the sessions of one mount path: it checks
requests (transport, origin, sid, protocol version), answers handshakes, and hands a
session's GETs, POSTs and WebSockets to the session. Every HTTP refusal is built by
``EngineEndpoint.refusal``.

``EngineSession`` is glue. Every rule of a session (which transport carries it, polling
and the one parked GET, the upgrade probe, the heartbeat, how it closes, the close reason
reported once) lives in the sans-I/O machine it subclasses,
``protocol.engine.EioSessionMachine``. The session feeds it what arrives, with the loop's
clock as ``now``, and carries out what it asks: it holds the responder of a parked GET,
the session's WebSocket and the probe, arms the timers (the heartbeat on the endpoint's
``DeadlineQueue``s, one loop timer for all sessions; ``call_at`` for the rare upgrade and
closing deadlines) and writes bytes.

Sending stays here, because it is the broadcast path: what a loop turn sends is coalesced
in ``_pending`` (frames, polling records, shared ``FrameBatch``es) and written once at the
end of the turn (fanout.py's ``Flusher``): a WebSocket write, or records appended to the
machine's ``outbox`` (then ``records_queued`` answers a parked GET). The slow-consumer
policy (``max_buffered_bytes``, ``droppable_buffered_bytes``, the process's BufferBudget)
is applied on that path.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol

from .budget import BufferBudget
from .codec.eio import (
    BINARY_PREFIX,
    EIO_VERSION,
    MESSAGE_PREFIX,
    PING_TEXT,
    PONG_PROBE_TEXT,
    EioPacket,
    EioType,
    decode_eio,
    encode_eio_polling,
)
from .codec.handshake import encode_open
from .errors import HandshakeCode, HandshakeError
from .fanout import BatchSlice, Flusher, FrameBatch, open_reference
from .heartbeat import DeadlineQueue, Entry
from .protocol.engine import Deadline, EioSessionMachine, EioTiming
from .protocol.reasons import CloseReason
from .transport.http import HttpConnection, HttpRequest, HttpResponse, Responder
from .transport.websocket import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    WsConnection,
    binary_frame,
    text_frame,
)

__all__ = ["EngineEndpoint", "EngineHandler", "EngineOptions", "EngineSession", "Refusal"]

logger = logging.getLogger("engineio_min.engine")

PING_FRAME: Final = text_frame(PING_TEXT)
PROBE_PONG_FRAME: Final = text_frame(PONG_PROBE_TEXT)
_TEXT_HEADERS: Final = {"Cache-Control": "no-store"}
# Module globals: an Enum member read as ``Deadline.PING`` goes through Python 3.11's slow
# EnumType.__getattr__ hook, and these are read on every connect and heartbeat.
_PING: Final = Deadline.PING
_PONG: Final = Deadline.PONG


class EngineHandler(Protocol):
    """The layer above one session (Socket.IO, or a bare Engine.IO app)."""

    def on_message(self, data: str | bytes) -> None:
        """One Engine.IO message: str for text, bytes for binary."""

    def on_close(self, reason: str) -> None:
        """The session is closed; ``reason`` is a ``CloseReason`` (a str)."""


# URL-safe without escaping, and no "." (the separator from the random part of a sid).
NODE_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Settings of one Engine.IO endpoint. Times in seconds, sizes in bytes."""

    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_payload: int = 1_000_000
    transports: tuple[str, ...] = ("polling", "websocket")
    allow_upgrades: bool = True
    # None: same origin only (Origin's host must equal Host), like python-engineio;
    # "*": any origin; or a list of allowed origins (scheme://host[:port]).
    allowed_origins: str | Sequence[str] | None = None
    # Slow-consumer policy: above max_buffered_bytes the session is closed
    # (transport error); above droppable_buffered_bytes droppable traffic skips it.
    # (Centrifugo's default cap is 1 MiB too; the process-wide sum is a BufferBudget's.)
    max_buffered_bytes: int = 1024 * 1024
    droppable_buffered_bytes: int = 256 * 1024
    # This process's name behind a load balancer: every sid becomes "<node_id>.<random>", so the
    # balancer can send a polling request or the WebSocket upgrade (both carry ?sid=) to the node
    # that holds the session, without a cookie (the stock Node and Python clients keep none).
    # None: plain random sids.
    node_id: str | None = None

    def __post_init__(self) -> None:
        # The "." ends the prefix (a random part never holds one), so "n1." never matches "n10.x".
        if self.node_id is not None and not NODE_ID_RE.fullmatch(self.node_id):
            raise ValueError(f"node_id must be 1-64 characters of A-Z a-z 0-9 _ - (got {self.node_id!r})")


SessionFactory = Callable[["EngineSession"], EngineHandler]


class EngineSession(EioSessionMachine):
    """One Engine.IO session: the machine's rules (protocol/engine.py) carried over sockets.

    What this class adds to the machine is I/O: the responder of a parked GET, the
    WebSockets, the timers, and the one-write-per-turn send path.
    """

    __slots__ = (
        "_heartbeat", "_parked", "_pending", "_probe", "_timer", "endpoint", "handler", "remote_addr", "sid", "ws",
    )

    def __init__(self, endpoint: EngineEndpoint, sid: str, remote_addr: str) -> None:
        EioSessionMachine.__init__(self, endpoint.timing)
        self.endpoint = endpoint
        self.sid = sid
        self.remote_addr = remote_addr
        self.ws: WsConnection | None = None
        self.handler: EngineHandler | None = None
        self._parked: Responder | None = None
        self._probe: WsConnection | None = None
        # The heartbeat deadline this session waits for, in one of the endpoint's queues.
        self._heartbeat: Entry[EngineSession] | None = None
        # The upgrade or the closing deadline: never both (the machine disarms the upgrade's
        # before it closes), so one slot.
        self._timer: asyncio.TimerHandle | None = None
        # What this loop turn sent, written at its end (see fanout.py): WebSocket frames or
        # polling records, and shared broadcast batches.
        self._pending: list[bytes | str | FrameBatch | BatchSlice] | None = None

    @property
    def transport_name(self) -> str:
        """``"polling"`` or ``"websocket"`` (monitoring reads it)."""
        return self.transport

    # -- sending (used by the layer above; none of these wait) --------------------
    def send_text(self, text: str) -> None:
        """Send one Engine.IO text packet, e.g. ``"42[...]"`` (written at the end of the turn)."""
        if not self.closed:
            self._queue(text_frame(text) if self.ws is not None else text)

    def send_binary(self, data: bytes) -> None:
        """Send one binary message (written at the end of the turn)."""
        if not self.closed:
            self._queue(binary_frame(data) if self.ws is not None
                        else encode_eio_polling(EioPacket(EioType.MESSAGE, data)))

    def queue_batch(self, batch: FrameBatch) -> bool:
        """Receive a broadcast batch. False when the session is closed, or when the batch is
        droppable and this client's buffer is above the soft mark (slow-consumer policy)."""
        if self.closed:
            return False
        if batch.droppable:
            buffered = self.buffered_bytes()
            endpoint = self.endpoint
            # Any backlog at all skips it while the process is short of buffer (budget.py).
            if buffered > endpoint.options.droppable_buffered_bytes or (buffered and endpoint.budget.pressed):
                return False
        self._queue(batch)
        return True

    def queue_tail(self, batch: FrameBatch) -> None:
        """Receive the open ``batch`` from its next frame on (this socket just joined its room)."""
        if not self.closed:
            self._queue(BatchSlice(batch, len(batch.frames), None))

    def cut_batch(self, batch: FrameBatch) -> None:
        """Receive no more frames of the open ``batch`` (this socket just left its room)."""
        pending = self._pending
        if pending:
            start = open_reference(pending[-1], batch)
            if start is not None:
                pending[-1] = BatchSlice(batch, start, len(batch.frames))

    def _queue(self, item: bytes | str | FrameBatch | BatchSlice) -> None:
        pending = self._pending
        if pending is None:
            self._pending = [item]
            self.endpoint.flusher.mark_dirty(self)
            return
        batch = self.endpoint.flusher.open_batch
        if batch is not None:
            start = open_reference(pending[-1], batch)
            if start is not None:
                # The item goes between the frames broadcast so far and the ones to come;
                # the batch stays open for everyone (fanout.py, "Order").
                count = len(batch.frames)
                pending[-1] = BatchSlice(batch, start, count)
                pending.append(item)
                pending.append(BatchSlice(batch, count, None))
                return
        pending.append(item)

    def flush_pending(self) -> None:
        """Write what this turn queued: one write (or one outbox extension)."""
        pending, self._pending = self._pending, None
        if pending is None or self.closed:
            return
        batch = self.endpoint.flusher.open_batch
        if batch is not None and open_reference(pending[-1], batch) is not None:
            # Flushed before the end of the turn (close, upgrade): frames still to come to the
            # open batch must reach this client too.
            self._queue(BatchSlice(batch, len(batch.frames), None))
        ws = self.ws
        if ws is not None:
            data = _frame_bytes(pending[0]) if len(pending) == 1 else b"".join([_frame_bytes(item) for item in pending])
            self._write_ws(ws, data)
            return
        outbox = self.outbox
        size = self.outbox_bytes
        for item in pending:
            if isinstance(item, FrameBatch | BatchSlice):
                texts = item.texts if isinstance(item, FrameBatch) else item.texts()
                outbox.extend(texts)
                size += sum(len(t) for t in texts)
            else:
                assert isinstance(item, str)
                outbox.append(item)
                size += len(item)
        self.outbox_bytes = size
        if size > self.endpoint.options.max_buffered_bytes:
            self._slow_consumer()
            return
        self.records_queued()
        if outbox:  # no GET to take it now: a backlog, counted against the budget
            self.endpoint.budget.note(self)

    def buffered_bytes(self) -> int:
        """Bytes queued for this client and not yet taken by the kernel."""
        ws = self.ws
        return ws.buffered() if ws is not None else self.outbox_bytes

    def close(self, reason: str = CloseReason.FORCED_CLOSE) -> None:
        """Close the session (idempotent) and tell the handler."""
        if not self.closed:
            self.request_close(reason, _now())

    # -- receiving ----------------------------------------------------------------
    def receive(self, data: str | bytes) -> None:
        """One Engine.IO packet from the client's WebSocket."""
        if isinstance(data, str) and data[:1] == MESSAGE_PREFIX:
            # Hot path: a text message; skip the machine's checks and any packet object.
            if self.handler is not None:
                self.handler.on_message(data[1:])
            return
        self.frame_received(data, _now())

    # -- heartbeat (the endpoint's DeadlineQueues call these) ---------------------------
    def send_ping(self) -> None:
        self._heartbeat = None
        self.deadline_passed(_PING, _now())

    def ping_timed_out(self) -> None:
        self._heartbeat = None
        self.deadline_passed(_PONG, _now())

    # -- polling ------------------------------------------------------------------
    def handle_get(self, request: HttpRequest, responder: Responder) -> None:
        answer = self.poll_get(_now())
        if answer is None:
            self._parked = responder
            responder.on_abort = self._on_get_aborted
        elif isinstance(answer, HandshakeCode):
            responder.send(self.endpoint.refusal(HandshakeError(answer), request))
        else:
            responder.send(self.endpoint.text_response(answer, request))

    def _on_get_aborted(self) -> None:
        self._parked = None
        self.poll_aborted(_now())

    def handle_post(self, request: HttpRequest, responder: Responder) -> None:
        binary = request.headers.get("content-type", "").startswith("application/octet-stream")
        now = _now()
        packets = self.poll_post(request.body, binary, now)
        if isinstance(packets, HandshakeCode):
            responder.send(self.endpoint.refusal(HandshakeError(packets), request))
            return
        responder.send(self.endpoint.ok_response(request))
        self.packets_received(packets, now)

    # -- upgrade ------------------------------------------------------------------
    def probe_message(self, ws: WsConnection, data: str | bytes) -> None:
        if ws is not self._probe:
            ws.close()
            return
        self.probe_received(data, _now())

    def probe_ended(self, ws: WsConnection) -> None:
        if ws is self._probe:
            self._probe = None
            self.probe_closed()

    # -- the machine's outputs --------------------------------------------------------
    def _answer_poll(self, body: str) -> None:
        parked, self._parked = self._parked, None
        if parked is not None:
            parked.send(self.endpoint.text_response(body))

    def _refuse_poll(self) -> None:
        parked, self._parked = self._parked, None
        if parked is not None:
            # An error, so every client counts it as a transport failure and reconnects.
            parked.send(self.endpoint.refusal(Refusal.SHUTTING_DOWN), close=True)

    def _send_packet(self, text: str) -> None:
        if self.ws is None:
            self._queue(text)
        else:
            self._queue(PING_FRAME if text is PING_TEXT else text_frame(text))

    def _probe_write(self, text: str) -> None:
        if self._probe is not None:
            self._probe.write(PROBE_PONG_FRAME if text is PONG_PROBE_TEXT else text_frame(text))

    def _probe_close(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.handler = _CLOSED_WS_HANDLER  # the machine knows the probe is over
            probe.close()

    def _upgraded(self, records: list[str]) -> None:
        ws, self._probe = self._probe, None
        assert ws is not None
        ws.handler = _SessionWsHandler(self)
        self.ws = ws
        for record in records:
            if record[:1] == BINARY_PREFIX:
                packet = decode_eio(record)
                assert isinstance(packet.data, bytes)
                ws.write(binary_frame(packet.data))
            else:
                ws.write(text_frame(record))

    def _close_websocket(self, going_away: bool) -> None:
        ws = self.ws
        if ws is not None:
            # The socket lives on for the closing handshake; it must not keep this session
            # (and everything above it) reachable through a cycle meanwhile.
            ws.handler = _CLOSED_WS_HANDLER
            ws.close(CLOSE_GOING_AWAY if going_away else CLOSE_NORMAL)

    def _flush_queued(self) -> None:
        if self._pending is not None:
            self.flush_pending()

    def _message(self, data: str | bytes) -> None:
        handler = self.handler
        if handler is not None:
            handler.on_message(data)

    def _closed(self, reason: str) -> None:
        handler, self.handler = self.handler, None
        if handler is not None:
            try:
                handler.on_close(reason)
            except Exception:
                logger.exception("close handler failed for session %s", self.sid)

    def _forget(self) -> None:
        self.endpoint.sessions.pop(self.sid, None)

    def _arm(self, deadline: Deadline, at: float) -> None:
        # The heartbeat uses the endpoint's queues (one loop timer for every session: their
        # delay is the same, so ``at`` is loop.time() + delay there too).
        if deadline is _PING:
            self._heartbeat = self.endpoint.ping_due.add(self)
        elif deadline is _PONG:
            self._heartbeat = self.endpoint.pong_due.add(self)
        else:
            assert self._timer is None, "the upgrade and the closing deadline at once"
            self._timer = asyncio.get_running_loop().call_at(at, self._deadline_timer, deadline)

    def _disarm(self, deadline: Deadline) -> None:
        if deadline is _PING or deadline is _PONG:
            heartbeat, self._heartbeat = self._heartbeat, None
            if heartbeat is not None:
                heartbeat.cancel()  # the queue must not keep a closed session alive
            return
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _deadline_timer(self, deadline: Deadline) -> None:
        self._timer = None
        self.deadline_passed(deadline, _now())

    # -- internals --------------------------------------------------------------
    def _write_ws(self, ws: WsConnection, frame: bytes) -> None:
        transport = ws.transport
        if transport is None or ws.closed:
            return
        backlog = transport.get_write_buffer_size()
        if backlog:  # rare: a client that keeps up has nothing left unsent at our next write
            if backlog > self.endpoint.options.max_buffered_bytes:
                self._slow_consumer()
                return
            self.endpoint.budget.note(self)
        transport.write(frame)

    def cut_off(self) -> None:
        """Close this session as a slow consumer (the process-wide buffer budget is spent)."""
        if not self.closed:
            self._slow_consumer()

    def _slow_consumer(self) -> None:
        """The client does not read fast enough: cut it off (documented policy)."""
        logger.info("closing slow consumer %s (%d bytes buffered)", self.sid, self.buffered_bytes())
        self.endpoint.slow_consumer_cuts += 1
        ws, self.ws = self.ws, None
        self._pending = None
        if ws is not None:
            ws.handler = _CLOSED_WS_HANDLER  # the session closes below with its own reason
            ws.close(CLOSE_POLICY, "slow consumer")
            ws.abort()
        self.drop_records()
        self.close(CloseReason.TRANSPORT_ERROR)


def _now() -> float:
    return asyncio.get_running_loop().time()


def _frame_bytes(item: bytes | str | FrameBatch | BatchSlice) -> bytes:
    if isinstance(item, FrameBatch):
        return item.joined()
    if isinstance(item, BatchSlice):
        return item.frame_bytes()
    assert isinstance(item, bytes)
    return item


class _SessionWsHandler:
    """Routes a session's WebSocket traffic into the session."""

    __slots__ = ("session",)

    def __init__(self, session: EngineSession) -> None:
        self.session = session

    def ws_message(self, conn: WsConnection, data: str | bytes) -> None:
        self.session.receive(data)

    def ws_closed(self, conn: WsConnection) -> None:
        self.session.close(CloseReason.TRANSPORT_CLOSE)


class _ProbeWsHandler:
    """Routes a probing WebSocket's traffic to the polling session it wants to take over."""

    __slots__ = ("session",)

    def __init__(self, session: EngineSession) -> None:
        self.session = session

    def ws_message(self, conn: WsConnection, data: str | bytes) -> None:
        self.session.probe_message(conn, data)

    def ws_closed(self, conn: WsConnection) -> None:
        self.session.probe_ended(conn)


class _RejectWsHandler:
    def ws_message(self, conn: WsConnection, data: str | bytes) -> None:
        conn.close()

    def ws_closed(self, conn: WsConnection) -> None:
        pass


# Shared by every WebSocket whose session is over (it holds no state).
_CLOSED_WS_HANDLER: Final = _RejectWsHandler()


class Refusal(Enum):
    """HTTP refusals that are not a ``HandshakeError`` (see ``EngineEndpoint.refusal``)."""

    SHUTTING_DOWN = "shutting down"  # to a parked GET when the server stops
    METHOD_NOT_SUPPORTED = "method not supported"  # neither GET nor POST on a session


class EngineEndpoint:
    """Serves one Engine.IO mount path: handshakes, polling requests, WebSockets."""

    def __init__(
        self, path: str, factory: SessionFactory, options: EngineOptions, flusher: Flusher,
        budget: BufferBudget | None = None,
    ) -> None:
        self.path = path
        # Shared by the endpoints of a process; BufferBudget(0) bounds nothing.
        self.budget = budget if budget is not None else BufferBudget(0)
        self.ping_due = DeadlineQueue(options.ping_interval, EngineSession.send_ping)
        self.pong_due = DeadlineQueue(options.ping_timeout, EngineSession.ping_timed_out)
        # One object for every session's machine (protocol/engine.py).
        self.timing = EioTiming(options.ping_interval, options.ping_timeout)
        self.flusher = flusher
        self.factory = factory
        self.options = options
        self.sid_prefix = "" if options.node_id is None else options.node_id + "."
        self.sessions: dict[str, EngineSession] = {}
        self.on_session_close: Callable[[EngineSession], None] | None = None
        # Counters since start, read by monitoring (never on the per-delivery path): sessions
        # opened per transport, refused requests per Engine.IO error code, slow consumers cut off.
        self.handshakes: dict[str, int] = {"polling": 0, "websocket": 0}
        self.handshake_errors: dict[int, int] = {}
        self.slow_consumer_cuts = 0

    # -- HTTP ---------------------------------------------------------------------
    def handle_http(self, request: HttpRequest, responder: Responder) -> None:
        try:
            self._dispatch(request, responder)
        except HandshakeError as exc:
            self.handshake_errors[exc.code] = self.handshake_errors.get(exc.code, 0) + 1
            responder.send(self.refusal(exc, request))

    def _dispatch(self, request: HttpRequest, responder: Responder) -> None:
        if request.method == "OPTIONS":
            self._check_origin(request)
            responder.send(HttpResponse(204, headers=self._cors_headers(request, preflight=True)))
            return
        query = request.query
        transport = query.get("transport")
        if transport not in self.options.transports:
            raise HandshakeError(HandshakeCode.UNKNOWN_TRANSPORT)
        self._check_origin(request)
        sid = query.get("sid")
        if sid is not None:
            session = self.sessions.get(sid)
            if session is None:
                raise HandshakeError(HandshakeCode.UNKNOWN_SID)
            if transport != session.transport:
                raise HandshakeError(HandshakeCode.BAD_REQUEST)
            if request.method == "GET":
                session.handle_get(request, responder)
            elif request.method == "POST":
                session.handle_post(request, responder)
            else:
                responder.send(self.refusal(Refusal.METHOD_NOT_SUPPORTED, request))
            return
        if request.method != "GET":
            raise HandshakeError(HandshakeCode.BAD_HANDSHAKE_METHOD)
        if transport != "polling":
            raise HandshakeError(HandshakeCode.BAD_REQUEST)  # transport=websocket without an Upgrade header
        if query.get("EIO") != EIO_VERSION:
            raise HandshakeError(HandshakeCode.UNSUPPORTED_PROTOCOL_VERSION)
        session = self._open_session(request.remote_addr)
        session.open_polling(_now())
        self.handshakes["polling"] += 1
        upgrades = ["websocket"] if self.options.allow_upgrades and "websocket" in self.options.transports else []
        body = self._open_text(session.sid, upgrades)
        responder.send(self.text_response(body, request))
        self._start_handler(session)

    def _new_sid(self) -> str:
        return self.sid_prefix + secrets.token_urlsafe(15)  # 120 random bits, 20 URL-safe characters

    def _open_text(self, sid: str, upgrades: Sequence[str]) -> str:
        """The OPEN packet for a new session with this endpoint's options."""
        options = self.options
        return encode_open(sid, upgrades, options.ping_interval, options.ping_timeout, options.max_payload)

    def _open_session(self, remote_addr: str, sid: str | None = None) -> EngineSession:
        if sid is None:
            sid = self._new_sid()
        session = EngineSession(self, sid, remote_addr)
        self.sessions[sid] = session
        return session

    def _start_handler(self, session: EngineSession) -> None:
        try:
            session.handler = self.factory(session)
        except Exception:
            logger.exception("session factory failed")
            session.close(CloseReason.FORCED_CLOSE)

    # -- WebSocket ----------------------------------------------------------------
    def handle_upgrade(self, request: HttpRequest, http: HttpConnection, rest: bytes) -> None:
        query = request.query
        try:
            if query.get("transport") != "websocket" or "websocket" not in self.options.transports:
                raise HandshakeError(HandshakeCode.UNKNOWN_TRANSPORT)
            if request.headers.get("upgrade", "").lower() != "websocket":
                raise HandshakeError(HandshakeCode.BAD_REQUEST)
            self._check_origin(request)
            sid = query.get("sid")
            session: EngineSession | None = None
            if sid is not None:
                session = self.sessions.get(sid)
                if session is None:
                    raise HandshakeError(HandshakeCode.UNKNOWN_SID)
                if not self.options.allow_upgrades:
                    raise HandshakeError(HandshakeCode.BAD_REQUEST)
            elif query.get("EIO") != EIO_VERSION:
                raise HandshakeError(HandshakeCode.UNSUPPORTED_PROTOCOL_VERSION)
        except HandshakeError as exc:
            self.handshake_errors[exc.code] = self.handshake_errors.get(exc.code, 0) + 1
            self._reject_upgrade(http, exc)
            return
        max_size = self.options.max_payload
        if session is not None:
            ws = WsConnection.accept(http, request, _ProbeWsHandler(session), max_size)
            if ws is None:
                return
            if not session.probe_opened(_now()):
                # SPEC 2.8: a WebSocket naming a session that is already upgraded (or being
                # upgraded, or closing) is accepted and closed at once; the session keeps its own.
                ws.handler = _CLOSED_WS_HANDLER
                ws.close()
                return
            session._probe = ws
        else:
            sid = self._new_sid()
            opening = text_frame(self._open_text(sid, []))
            ws = WsConnection.accept(http, request, _RejectWsHandler(), max_size, first_frame=opening)
            if ws is None:
                return
            session = self._open_session(http.remote_addr, sid)
            ws.handler = _SessionWsHandler(session)
            session.ws = ws
            session.open_websocket(_now())
            self.handshakes["websocket"] += 1
            self._start_handler(session)
        if rest:
            ws.data_received(rest)

    # -- origin / responses ---------------------------------------------------------
    def _check_origin(self, request: HttpRequest) -> None:
        origin = request.headers.get("origin")
        if origin is None or self._origin_allowed(origin, request):
            return
        raise HandshakeError(HandshakeCode.FORBIDDEN, "Origin not allowed")

    def _origin_allowed(self, origin: str, request: HttpRequest) -> bool:
        allowed = self.options.allowed_origins
        if allowed == "*":
            return True
        if allowed is None:
            host = request.headers.get("host", "")
            return origin.split("://", 1)[-1] == host
        return origin in allowed

    def _cors_headers(self, request: HttpRequest | None, preflight: bool = False) -> dict[str, str]:
        if request is None:
            return {}
        origin = request.headers.get("origin")
        if origin is None:
            return {}
        headers = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
                   "Vary": "Origin"}
        if preflight:
            headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            headers["Access-Control-Allow-Headers"] = request.headers.get(
                "access-control-request-headers", "content-type")
            headers["Access-Control-Max-Age"] = "86400"
        return headers

    def text_response(self, body: str, request: HttpRequest | None = None) -> HttpResponse:
        headers = _TEXT_HEADERS
        if request is not None and "origin" in request.headers:
            headers = {**_TEXT_HEADERS, **self._cors_headers(request)}
        return HttpResponse(200, body, "text/plain; charset=UTF-8", headers)

    def ok_response(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, b"ok", "text/html", self._cors_headers(request) or None)

    def refusal(self, why: HandshakeError | Refusal, request: HttpRequest | None = None) -> HttpResponse:
        """Every HTTP refusal of this endpoint: status, body and CORS headers.

        A ``HandshakeError``: 400 (403 for code 4) with ``{"code", "message"}``. A shutdown: 503
        with code -1 (the reference's transport error), so that clients reconnect. A method other
        than GET/POST on a session: a bare 500, as the reference answers. CORS headers when
        ``request`` carries an Origin.
        """
        headers = self._cors_headers(request) or None
        if isinstance(why, HandshakeError):
            return HttpResponse.json({"code": why.code, "message": why.message}, why.http_status, headers)
        if why is Refusal.SHUTTING_DOWN:
            return HttpResponse.json({"code": -1, "message": "Server shutting down"}, 503, headers)
        return HttpResponse(500, b"", headers=headers)

    def _reject_upgrade(self, http: HttpConnection, exc: HandshakeError) -> None:
        """Refuse a WebSocket handshake with the JSON error body and close the socket."""
        transport = http.transport
        if transport is None:
            return
        # No request: WebSocket handshakes are not subject to CORS, so no CORS headers.
        transport.write(self.refusal(exc).encode(keep_alive=False))
        transport.close()

    # -- lifecycle ------------------------------------------------------------------
    def close_all(self, reason: str = CloseReason.SERVER_SHUTDOWN) -> None:
        for session in list(self.sessions.values()):
            session.close(reason)
