"""engineio_min.testing: its strategies keep their promises, and a user can fuzz a real server with them.

* every "invalid" example is refused by the codec with DecodeError, every valid one round-trips;
* hostile examples never make the codec raise anything but DecodeError;
* the module stays optional: importing the library does not import hypothesis;
* the example from docs/design/server-api.md ("Fuzzing"): an application's event handlers fuzzed
  through a real engineio_min Server over a real WebSocket (the `websockets` client), 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from engineio_min import Server, Socket, testing
from engineio_min.codec.eio import EioPacket, EioType, decode_eio
from engineio_min.codec.payload import decode_payload
from engineio_min.codec.sio import SioDecoder, SioPacket, SioType
from engineio_min.errors import DecodeError, PayloadTooLarge

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OVER_SOCKETS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------
# The strategies against the codec


def _feed_all(parts: tuple[str | bytes, ...]) -> list[SioPacket]:
    decoder = SioDecoder()
    return [packet for part in parts if (packet := decoder.feed(part)) is not None]


@FAST
@given(testing.invalid_sio_messages())
def test_invalid_sio_messages_are_refused(hostile: testing.Hostile) -> None:
    assert hostile.invalid
    with pytest.raises(DecodeError):
        _feed_all(hostile.parts)
    # The same through the Engine.IO layer, as a WebSocket carries them.
    decoder = SioDecoder()
    with pytest.raises(DecodeError):
        for message in testing.to_websocket_messages(hostile.parts):
            packet = decode_eio(message)
            assert packet.type is EioType.MESSAGE
            decoder.feed(packet.data)


@FAST
@given(testing.hostile_sio_messages())
def test_hostile_sio_messages_decode_or_raise_decode_error(hostile: testing.Hostile) -> None:
    try:
        packets = _feed_all(hostile.parts)
    except DecodeError:
        return
    assert not hostile.invalid, f"{hostile.kind} was accepted: {hostile.parts!r}"
    for packet in packets:
        assert isinstance(packet.type, SioType)


@FAST
@given(testing.invalid_eio_packets())
def test_invalid_eio_packets_are_refused(text: str) -> None:
    with pytest.raises(DecodeError):
        decode_eio(text)


@FAST
@given(testing.invalid_polling_payloads())
def test_invalid_polling_payloads_are_refused(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_payload(body)


@FAST
@given(testing.encoded_sio_packets(types=[SioType.BINARY_EVENT, SioType.BINARY_ACK], polling_safe=True))
def test_binary_types_travel_with_attachments(wire: testing.SioWire) -> None:
    assert wire.packet.type in (SioType.EVENT, SioType.ACK)
    assert str(wire.parts[0])[0] in "56"  # sent as BINARY_EVENT / BINARY_ACK
    assert len(wire.parts) - 1 == testing.binary_count(wire.packet.data) >= 1
    assert wire.polling is not None
    records = decode_payload(wire.polling)
    assert [record.data for record in records] == list(wire.parts)


@settings(max_examples=50, deadline=None)
@given(testing.sio_packets(types=[SioType.CONNECT, SioType.DISCONNECT], namespace="/chat"))
def test_sio_packets_honours_types_and_namespace(packet: SioPacket) -> None:
    assert packet.type in (SioType.CONNECT, SioType.DISCONNECT)
    assert packet.namespace == "/chat"


def test_sio_packets_without_types_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one packet type"):
        testing.sio_packets(types=[])


def test_a_polling_body_cannot_hold_the_separator() -> None:
    with pytest.raises(ValueError, match="x1e"):
        testing.to_polling_body(['2/a\x1eb,["x"]'])
    assert testing.to_polling_body(['2["x"]', b"\x01"]) == '42["x"]\x1ebAQ=='


@FAST
@given(testing.polling_payloads())
def test_polling_payloads_round_trip(packets: list[EioPacket]) -> None:
    from engineio_min.codec.payload import encode_payload

    try:
        assert decode_payload(encode_payload(packets)) == packets
    except PayloadTooLarge:  # pragma: no cover - 20 packets are far below the default limit
        raise AssertionError("polling_payloads made a body over the packet limit") from None


def test_importing_the_library_does_not_import_hypothesis() -> None:
    # hypothesis is the optional "testing" extra: only engineio_min.testing may need it.
    code = (
        "import sys, engineio_min, engineio_min.codec, engineio_min.server, engineio_min.redis_adapter\n"
        "assert 'hypothesis' not in sys.modules, 'hypothesis imported'\n"
        "assert 'engineio_min.testing' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------
# The documented example: fuzz your own handlers through a real server


def build_app() -> Server:
    """The application under test: what a user of engineio_min would write."""
    server = Server(allowed_origins="*")
    nsp = server.of("/")

    @nsp.on("echo")
    def echo(sock: Socket, *args: Any) -> Any:
        return tuple(args)  # a tuple answers the ack with several arguments

    @nsp.on("chat:message")
    def chat_message(sock: Socket, *args: Any) -> Any:
        # Validate everything a client may send: any JSON, any bytes, any count of arguments.
        if len(args) != 1 or not isinstance(args[0], dict):
            return {"ok": False, "error": "bad_request"}
        text = args[0].get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= 200:
            return {"ok": False, "error": "bad_text"}
        return {"ok": True, "length": len(text)}

    return server


class ServerThread:
    """A real Server on 127.0.0.1 in its own event loop thread, so that sync hypothesis tests can use it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class HandlerErrors(logging.Handler):
    """Collects every error the library logs (a handler that raised, a crash in the server)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def app() -> Iterator[ServerThread]:
    running = ServerThread(build_app())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def logged_errors() -> Iterator[HandlerErrors]:
    collector = HandlerErrors()
    logger = logging.getLogger("engineio_min")
    logger.addHandler(collector)
    yield collector
    logger.removeHandler(collector)


def open_socket(port: int) -> ClientConnection:
    """A WebSocket-only Socket.IO client joined to "/", speaking raw frames."""
    ws = connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", open_timeout=5)
    assert str(ws.recv(timeout=5)).startswith("0{")
    ws.send("40")
    assert str(ws.recv(timeout=5)).startswith("40{")
    return ws


def receive_packet(ws: ClientConnection) -> SioPacket:
    """The next Socket.IO packet from the server, attachments reassembled; pings answered."""
    decoder = SioDecoder()
    while True:
        packet = decode_eio(ws.recv(timeout=5))
        if packet.type is EioType.PING:
            ws.send("3")
        elif packet.type is EioType.MESSAGE and (sio := decoder.feed(packet.data)) is not None:
            return sio


def call(ws: ClientConnection, event: str, args: list[Any], ack_id: int) -> SioPacket:
    """Emit ``event`` with an ack over ``ws``; returns the server's answer (skipping other packets)."""
    for message in testing.sio_wire(SioPacket(SioType.EVENT, "/", [event, *args], ack_id)).websocket:
        ws.send(message)
    while True:
        answer = receive_packet(ws)
        if answer.type is SioType.ACK and answer.id == ack_id:
            return answer


@pytest.fixture(scope="module")
def client(app: ServerThread) -> Iterator[ClientConnection]:
    ws = open_socket(app.port)
    yield ws
    ws.close()


@OVER_SOCKETS
@given(args=testing.event_args(), ack_id=testing.ack_ids())
def test_echo_answers_what_it_was_sent(
    client: ClientConnection, logged_errors: HandlerErrors, args: list[Any], ack_id: int
) -> None:
    # JSON of every shape and binary attachments anywhere, there and back through the server.
    answer = call(client, "echo", args, ack_id)
    assert answer.data == args
    assert not logged_errors.records


@OVER_SOCKETS
@given(args=testing.event_args(max_args=3), ack_id=testing.ack_ids())
def test_chat_message_answers_any_input(
    client: ClientConnection, logged_errors: HandlerErrors, args: list[Any], ack_id: int
) -> None:
    [reply] = call(client, "chat:message", args, ack_id).data
    assert (reply["ok"] is False and reply["error"] in ("bad_request", "bad_text")) or reply["ok"] is True
    assert not logged_errors.records


@OVER_SOCKETS
@given(text=st.text(min_size=1, max_size=200), ack_id=testing.ack_ids())
def test_chat_message_accepts_valid_text(client: ClientConnection, text: str, ack_id: int) -> None:
    assert call(client, "chat:message", [{"text": text}], ack_id).data == [{"ok": True, "length": len(text)}]


@OVER_SOCKETS
@given(testing.hostile_sio_messages())
def test_hostile_messages_never_break_the_server(
    app: ServerThread, client: ClientConnection, logged_errors: HandlerErrors, hostile: testing.Hostile
) -> None:
    ws = open_socket(app.port)
    try:
        for message in testing.to_websocket_messages(hostile.parts):
            ws.send(message)
        if hostile.invalid:
            # SPEC §3.2: the server closes the whole connection.
            with pytest.raises(ConnectionClosed):
                while True:
                    ws.recv(timeout=5)
        else:
            # Legal, or refused: the connection either still answers or was closed.
            with contextlib.suppress(ConnectionClosed):
                assert call(ws, "echo", ["still here"], 1).data == ["still here"]
    finally:
        ws.close()
    # Other clients were not disturbed, and no handler or server code raised.
    assert call(client, "echo", [1], 2).data == [1]
    assert not logged_errors.records
