"""Engine.IO v4 sessions and the endpoint that serves them over HTTP and WebSocket.

Layer: engine (asyncio timers + the transports below; the codec for packets).

Theory of operation. An ``EngineEndpoint`` owns the sessions of one mount path. A
session starts on a handshake (a polling GET, or a WebSocket without ``sid``) and lives
until ``close(reason)``; at that moment its sid is forgotten, so every later request that
names it gets ``400 {"code":1}``. A session is on exactly one transport at a time:

* polling: outgoing packets are polling records in ``_outbox``; a GET that finds it empty
  is parked in ``_parked`` until something is queued, the heartbeat pings, or the session
  closes. One GET at a time (Engine.IO protocol, "HTTP long-polling").
* websocket: ``ws`` is set and every packet is written as a frame at once.

Upgrade (Engine.IO protocol, "Upgrade"): a WebSocket that names a polling session's sid is
a probe. ``2probe`` is answered ``3probe``; from then on every GET is answered ``6`` (noop)
and queued packets wait; ``5`` moves the session onto the WebSocket and flushes the queue
there in order, so nothing is lost or reordered. Any other packet on the probe closes it
and the session stays on polling.

Heartbeat (Engine.IO protocol, "Heartbeat"): one timer per session. ``pingInterval``
after the handshake (or the last pong) the server sends ``2`` and arms ``pingTimeout``;
a ``3`` re-arms the interval; expiry closes the session (reason ``ping timeout``) at once,
never lazily on the next request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from .budget import BufferBudget
from .codec.eio import EioPacket, EioType, decode_eio, encode_eio_polling
from .codec.handshake import encode_open
from .codec.payload import MAX_PACKETS_PER_RESPONSE, SEPARATOR, PayloadDecoder
from .errors import DecodeError, HandshakeError, PayloadTooLarge
from .fanout import BatchSlice, Flusher, FrameBatch, open_reference
from .heartbeat import DeadlineQueue, Entry
from .transport.http import HttpConnection, HttpRequest, HttpResponse, Responder
from .transport.websocket import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    WsConnection,
    binary_frame,
    text_frame,
)

__all__ = ["EngineEndpoint", "EngineHandler", "EngineOptions", "EngineSession"]

logger = logging.getLogger("engineio_min.engine")

EIO_VERSION: Final = "4"
PING_FRAME: Final = text_frame("2")
PROBE_PONG_FRAME: Final = text_frame("3probe")
# The reference server gives up on an unfinished upgrade after 10 s.
UPGRADE_TIMEOUT: Final = 10.0
# How long a server-closed polling session waits for the GET that carries its "1".
CLOSING_GRACE: Final = 5.0
_TEXT_HEADERS: Final = {"Cache-Control": "no-store"}

# Close reasons (Engine.IO protocol, "Session close"); the Socket.IO layer reuses them.
TRANSPORT_CLOSE: Final = "transport close"
TRANSPORT_ERROR: Final = "transport error"
PARSE_ERROR: Final = "parse error"
PING_TIMEOUT: Final = "ping timeout"
FORCED_CLOSE: Final = "forced close"
SERVER_SHUTDOWN: Final = "server shutting down"


class EngineHandler(Protocol):
    """The layer above one session (Socket.IO, or a bare Engine.IO app)."""

    def on_message(self, data: str | bytes) -> None:
        """One Engine.IO message: str for text, bytes for binary."""

    def on_close(self, reason: str) -> None:
        """The session is closed; ``reason`` is one of the close reasons above."""


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


class EngineSession:
    """One Engine.IO session; see the module docstring."""

    __slots__ = (
        "_awaiting_pong", "_closing_reply", "_heartbeat", "_outbox", "_outbox_bytes", "_parked", "_pending",
        "_probe", "_timer", "_upgrade_timer", "_upgrading", "closed", "endpoint", "handler", "remote_addr",
        "sid", "transport_name", "ws",
    )

    def __init__(self, endpoint: EngineEndpoint, sid: str, transport_name: str, remote_addr: str) -> None:
        self.endpoint = endpoint
        self.sid = sid
        self.transport_name = transport_name
        self.remote_addr = remote_addr
        self.ws: WsConnection | None = None
        self.closed = False
        self.handler: EngineHandler | None = None
        self._outbox: list[str] = []
        self._outbox_bytes = 0
        self._parked: Responder | None = None
        self._probe: WsConnection | None = None
        self._upgrading = False
        self._timer: asyncio.TimerHandle | None = None  # the closing grace period (polling)
        # The heartbeat deadline this session waits for, in one of the endpoint's queues.
        self._heartbeat: Entry[EngineSession] | None = None
        self._awaiting_pong = False
        self._upgrade_timer: asyncio.TimerHandle | None = None
        self._closing_reply = False
        # What this loop turn sent, written at its end (see fanout.py): WebSocket frames or
        # polling records, and shared broadcast batches.
        self._pending: list[bytes | str | FrameBatch | BatchSlice] | None = None

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
        outbox = self._outbox
        size = self._outbox_bytes
        for item in pending:
            if isinstance(item, FrameBatch | BatchSlice):
                texts = item.texts if isinstance(item, FrameBatch) else item.texts()
                outbox.extend(texts)
                size += sum(len(t) for t in texts)
            else:
                assert isinstance(item, str)
                outbox.append(item)
                size += len(item)
        self._outbox_bytes = size
        if size > self.endpoint.options.max_buffered_bytes:
            self._slow_consumer()
            return
        self._flush_parked()
        if self._outbox:  # no GET to take it now: a backlog, counted against the budget
            self.endpoint.budget.note(self)

    def buffered_bytes(self) -> int:
        """Bytes queued for this client and not yet taken by the kernel."""
        ws = self.ws
        return ws.buffered() if ws is not None else self._outbox_bytes

    def close(self, reason: str = FORCED_CLOSE) -> None:
        """Close the session (idempotent) and tell the handler."""
        if self.closed:
            return
        if self._pending is not None:
            self.flush_pending()  # what was sent before the close goes out before it
        self.closed = True
        self._cancel_timers()
        # A shutdown only ends the transport, as a network failure would: the stock clients
        # reconnect after a transport close, but python-engineio takes a "1" for a server
        # disconnect and stays away, so a polling session gets no "1" then (issue 12).
        shutdown = reason == SERVER_SHUTDOWN
        ws = self.ws
        if ws is not None:
            ws.close(CLOSE_GOING_AWAY if shutdown else CLOSE_NORMAL)
            # The socket lives on for the closing handshake; it must not keep this session
            # (and everything above it) reachable through a cycle meanwhile.
            ws.handler = _CLOSED_WS_HANDLER
        elif reason == FORCED_CLOSE and self.transport_name == "polling" and (self._parked is None or self._outbox):
            # Engine.IO protocol, polling close. What was queued before the close (a "41", say)
            # goes out first, and the "1" in a response of its own: socket.io-client acts on a
            # "1" before the other packets of the same response. So keep the sid reachable
            # for those GETs, a short while.
            self._closing_reply = True
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(CLOSING_GRACE, self._forget)
            if self._parked is not None:
                self._answer_parked(self._take_outbox())
        if not self._closing_reply:
            self._forget()
        parked, self._parked = self._parked, None
        if parked is not None:
            if shutdown:
                # An error, so every client counts it as a transport failure and reconnects.
                parked.send(HttpResponse.json({"code": -1, "message": "Server shutting down"}, 503), close=True)
            else:
                parked.send(self.endpoint.text_response("6" if reason == TRANSPORT_CLOSE else "1"))
        if self._probe is not None:
            self._probe.close()
            self._probe.handler = _CLOSED_WS_HANDLER
            self._probe = None
        handler, self.handler = self.handler, None
        if handler is not None:
            try:
                handler.on_close(reason)
            except Exception:
                logger.exception("close handler failed for session %s", self.sid)

    # -- receiving ----------------------------------------------------------------
    def receive(self, data: str | bytes) -> None:
        """One Engine.IO packet from the client (a frame, or one polling record)."""
        if isinstance(data, str) and data[:1] == "4":
            # Hot path: a text message; skip building an EioPacket.
            if self.handler is not None:
                self.handler.on_message(data[1:])
            return
        try:
            packet = decode_eio(data)
        except DecodeError:
            self.close(PARSE_ERROR)
            return
        self._receive_packet(packet)

    def _receive_packet(self, packet: EioPacket) -> None:
        kind = packet.type
        if kind is EioType.MESSAGE:
            if self.handler is not None:
                self.handler.on_message(packet.data)
        elif kind is EioType.PONG:
            self._on_pong()
        elif kind is EioType.CLOSE:
            self.close(TRANSPORT_CLOSE)
        elif kind is EioType.PING:
            # v4: only the server pings ("invalid heartbeat direction").
            self.close(PARSE_ERROR)
        # OPEN, UPGRADE and NOOP outside an upgrade are ignored, as the reference does.

    # -- heartbeat ----------------------------------------------------------------
    def start_heartbeat(self) -> None:
        self._heartbeat = self.endpoint.ping_due.add(self)

    def send_ping(self) -> None:
        """The ping interval is over: ping, then wait ``ping_timeout`` for the pong."""
        self._queue(PING_FRAME if self.ws is not None else "2")
        self._awaiting_pong = True
        self._heartbeat = self.endpoint.pong_due.add(self)

    def ping_timed_out(self) -> None:
        self._heartbeat = None
        self.close(PING_TIMEOUT)

    def _on_pong(self) -> None:
        # An unsolicited pong changes nothing (and cannot pile up deadlines).
        if self._awaiting_pong:
            self._awaiting_pong = False
            if self._heartbeat is not None:
                self._heartbeat.cancel()
            self._heartbeat = self.endpoint.ping_due.add(self)

    # -- polling ----------------------------------------------------------------
    def _flush_parked(self) -> None:
        if self._parked is not None and self._outbox and not self._upgrading:
            self._answer_parked(self._take_outbox())

    def _take_outbox(self) -> str:
        # python-engineio clients refuse a payload of more than 16 packets.
        batch = self._outbox[:MAX_PACKETS_PER_RESPONSE]
        del self._outbox[:MAX_PACKETS_PER_RESPONSE]
        self._outbox_bytes = sum(len(r) for r in self._outbox) if self._outbox else 0
        return SEPARATOR.join(batch)

    def _answer_parked(self, body: str) -> None:
        parked, self._parked = self._parked, None
        if parked is not None:
            parked.send(self.endpoint.text_response(body))

    def handle_get(self, request: HttpRequest, responder: Responder) -> None:
        endpoint = self.endpoint
        if self._closing_reply:
            if self._outbox:
                responder.send(endpoint.text_response(self._take_outbox(), request))
            else:
                self._forget()
                responder.send(endpoint.text_response("6\x1e1", request))
            return
        if self._parked is not None:
            # Engine.IO protocol: one GET at a time. The pending GET gets "1", this one 400.
            responder.send(endpoint.error_response(HandshakeError(3), request))
            self.close(TRANSPORT_ERROR)
            return
        if self._upgrading:
            responder.send(endpoint.text_response("6", request))
            return
        if self._outbox:
            responder.send(endpoint.text_response(self._take_outbox(), request))
            return
        self._parked = responder
        responder.on_abort = self._on_get_aborted

    def _on_get_aborted(self) -> None:
        self._parked = None
        self.close(TRANSPORT_ERROR)

    def handle_post(self, request: HttpRequest, responder: Responder) -> None:
        endpoint = self.endpoint
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/octet-stream"):
            responder.send(endpoint.error_response(HandshakeError(3), request))
            self.close(TRANSPORT_ERROR)
            return
        decoder = PayloadDecoder()
        try:
            packets = decoder.feed(request.body)
            packets += decoder.finish()
        except (DecodeError, PayloadTooLarge):
            responder.send(endpoint.error_response(HandshakeError(3), request))
            self.close(PARSE_ERROR)
            return
        responder.send(endpoint.ok_response(request))
        for packet in packets:
            if self.closed:
                break
            self._receive_packet(packet)

    # -- upgrade ----------------------------------------------------------------
    def start_probe(self, ws: WsConnection) -> None:
        self._probe = ws
        loop = asyncio.get_running_loop()
        self._upgrade_timer = loop.call_later(UPGRADE_TIMEOUT, self._abort_probe)

    def probe_message(self, ws: WsConnection, data: str | bytes) -> None:
        if ws is not self._probe or self.closed:
            ws.close()
            return
        if data == "2probe":
            ws.write(PROBE_PONG_FRAME)
            self._upgrading = True
            if self._parked is not None:
                self._answer_parked("6")
        elif data == "5" and self._upgrading:
            self._finish_upgrade(ws)
        else:
            self._abort_probe()

    def probe_closed(self, ws: WsConnection) -> None:
        if ws is self._probe:
            self._probe = None
            self._upgrading = False
            if self._upgrade_timer is not None:
                self._upgrade_timer.cancel()
            self._flush_parked()

    def _abort_probe(self) -> None:
        probe = self._probe
        if probe is not None:
            probe.close()

    def _finish_upgrade(self, ws: WsConnection) -> None:
        if self._upgrade_timer is not None:
            self._upgrade_timer.cancel()
            self._upgrade_timer = None
        self._probe = None
        self._upgrading = False
        self.flush_pending()  # into the polling outbox, which moves to the WebSocket below
        self.transport_name = "websocket"
        ws.handler = _SessionWsHandler(self)
        self.ws = ws
        if self._parked is not None:
            self._answer_parked("6")
        pending, self._outbox, self._outbox_bytes = self._outbox, [], 0
        for record in pending:
            if record[:1] == "b":
                packet = decode_eio(record)
                assert isinstance(packet.data, bytes)
                ws.write(binary_frame(packet.data))
            else:
                ws.write(text_frame(record))

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
        self._outbox.clear()
        self._outbox_bytes = 0
        self.close(TRANSPORT_ERROR)

    def _cancel_timers(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()  # the queue must not keep a closed session alive
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._upgrade_timer is not None:
            self._upgrade_timer.cancel()
            self._upgrade_timer = None

    def _forget(self) -> None:
        self._closing_reply = False
        if self._timer is not None:  # the closing grace ended early: the client took its "1"
            self._timer.cancel()
            self._timer = None
        self.endpoint.sessions.pop(self.sid, None)


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
        self.session.close(TRANSPORT_CLOSE)


class _ProbeWsHandler:
    """Routes a probing WebSocket's traffic to the polling session it wants to take over."""

    __slots__ = ("session",)

    def __init__(self, session: EngineSession) -> None:
        self.session = session

    def ws_message(self, conn: WsConnection, data: str | bytes) -> None:
        self.session.probe_message(conn, data)

    def ws_closed(self, conn: WsConnection) -> None:
        self.session.probe_closed(conn)


class _RejectWsHandler:
    def ws_message(self, conn: WsConnection, data: str | bytes) -> None:
        conn.close()

    def ws_closed(self, conn: WsConnection) -> None:
        pass


# Shared by every WebSocket whose session is over (it holds no state).
_CLOSED_WS_HANDLER: Final = _RejectWsHandler()


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
            responder.send(self.error_response(exc, request))

    def _dispatch(self, request: HttpRequest, responder: Responder) -> None:
        if request.method == "OPTIONS":
            self._check_origin(request)
            responder.send(HttpResponse(204, headers=self._cors_headers(request, preflight=True)))
            return
        query = request.query
        transport = query.get("transport")
        if transport not in self.options.transports:
            raise HandshakeError(0)
        self._check_origin(request)
        sid = query.get("sid")
        if sid is not None:
            session = self.sessions.get(sid)
            if session is None:
                raise HandshakeError(1)
            if transport != session.transport_name or session.ws is not None:
                raise HandshakeError(3)
            if request.method == "GET":
                session.handle_get(request, responder)
            elif request.method == "POST":
                session.handle_post(request, responder)
            else:
                responder.send(HttpResponse(500, b""))
            return
        if request.method != "GET":
            raise HandshakeError(2)
        if transport != "polling":
            raise HandshakeError(3)  # transport=websocket without an Upgrade header
        if query.get("EIO") != EIO_VERSION:
            raise HandshakeError(5)
        session = self._open_session("polling", request.remote_addr)
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

    def _open_session(self, transport_name: str, remote_addr: str, sid: str | None = None) -> EngineSession:
        if sid is None:
            sid = self._new_sid()
        session = EngineSession(self, sid, transport_name, remote_addr)
        self.sessions[sid] = session
        self.handshakes[transport_name] += 1
        # The heartbeat starts as the OPEN packet is written (the same loop turn).
        session.start_heartbeat()
        return session

    def _start_handler(self, session: EngineSession) -> None:
        try:
            session.handler = self.factory(session)
        except Exception:
            logger.exception("session factory failed")
            session.close(FORCED_CLOSE)

    # -- WebSocket ----------------------------------------------------------------
    def handle_upgrade(self, request: HttpRequest, http: HttpConnection, rest: bytes) -> None:
        query = request.query
        try:
            if query.get("transport") != "websocket" or "websocket" not in self.options.transports:
                raise HandshakeError(0)
            if request.headers.get("upgrade", "").lower() != "websocket":
                raise HandshakeError(3)
            self._check_origin(request)
            sid = query.get("sid")
            session: EngineSession | None = None
            if sid is not None:
                session = self.sessions.get(sid)
                if session is None:
                    raise HandshakeError(1)
                if not self.options.allow_upgrades:
                    raise HandshakeError(3)
                if session.transport_name != "polling" or session._probe is not None or session._closing_reply:
                    # SPEC 2.8: a WebSocket naming a session that is already upgraded (or being
                    # upgraded, or closing) is accepted and closed at once; the session keeps its own.
                    ws = WsConnection.accept(http, request, _CLOSED_WS_HANDLER, self.options.max_payload)
                    if ws is not None:
                        ws.close()
                    return
            elif query.get("EIO") != EIO_VERSION:
                raise HandshakeError(5)
        except HandshakeError as exc:
            self.handshake_errors[exc.code] = self.handshake_errors.get(exc.code, 0) + 1
            _reject_upgrade(http, exc)
            return
        max_size = self.options.max_payload
        if session is not None:
            ws = WsConnection.accept(http, request, _ProbeWsHandler(session), max_size)
            if ws is None:
                return
            session.start_probe(ws)
        else:
            sid = self._new_sid()
            opening = text_frame(self._open_text(sid, []))
            ws = WsConnection.accept(http, request, _RejectWsHandler(), max_size, first_frame=opening)
            if ws is None:
                return
            session = self._open_session("websocket", http.remote_addr, sid)
            ws.handler = _SessionWsHandler(session)
            session.ws = ws
            self._start_handler(session)
        if rest:
            ws.data_received(rest)

    # -- origin / responses ---------------------------------------------------------
    def _check_origin(self, request: HttpRequest) -> None:
        origin = request.headers.get("origin")
        if origin is None or self._origin_allowed(origin, request):
            return
        raise HandshakeError(4, "Origin not allowed")

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

    def error_response(self, exc: HandshakeError, request: HttpRequest | None = None) -> HttpResponse:
        return HttpResponse.json({"code": exc.code, "message": exc.message}, exc.http_status,
                                 self._cors_headers(request) or None)

    # -- lifecycle ------------------------------------------------------------------
    def close_all(self, reason: str = SERVER_SHUTDOWN) -> None:
        for session in list(self.sessions.values()):
            session.close(reason)


def _reject_upgrade(http: HttpConnection, exc: HandshakeError) -> None:
    """Refuse a WebSocket handshake with the JSON error body and close the socket."""
    transport = http.transport
    if transport is None:
        return
    response = HttpResponse.json({"code": exc.code, "message": exc.message}, exc.http_status)
    transport.write(response.encode(keep_alive=False))
    transport.close()
