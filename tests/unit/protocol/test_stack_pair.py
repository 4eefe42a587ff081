"""Both machines stacked, as a server session runs them, talking to a client through memory.

The Engine.IO machine (eio_pair's ``ServerSide``, driven as engine.py drives it) hands each
message to the Socket.IO machine, which writes back through the Engine.IO session; the client
is eio_pair's ``Client`` with the codec on top. One session goes through polling, an upgrade
with Socket.IO packets (binary ones too) queued during the probe, acks both ways, binary
attachments both ways, a heartbeat and a close, with no socket and a fake clock.
"""

from __future__ import annotations

from typing import Any

from engineio_min.codec.eio import PING_PROBE_TEXT, UPGRADE_TEXT, EioPacket, EioType, encode_eio
from engineio_min.codec.sio import SioDecoder, SioPacket, SioType, encode_sio
from engineio_min.protocol.engine import EioState
from engineio_min.protocol.reasons import CloseReason
from engineio_min.protocol.socketio import (
    AckReceived,
    ConnectRequested,
    NamespaceDisconnected,
    NamespaceLink,
    SioMachine,
)

from .eio_pair import TIMING, Pair, ServerSide

Link = NamespaceLink["EngineSink"]


class EngineSink:
    """The Socket.IO machine's view of the Engine.IO session: full Engine.IO message texts."""

    def __init__(self, server: ServerSide) -> None:
        self.server = server

    def send_text(self, text: str) -> None:
        assert text[0] == "4"  # a Socket.IO packet is an Engine.IO MESSAGE
        self.server.send(text[1:])

    def send_binary(self, data: bytes) -> None:
        self.server.send(data)


class Stack:
    """A Pair whose server application is the Socket.IO machine."""

    def __init__(self) -> None:
        self.pair = Pair(TIMING)
        self.server = self.pair.server
        self.sio: SioMachine[EngineSink, Link] = SioMachine(
            EngineSink(self.server), frozenset({"/", "/chat"}), 0.0, connect_timeout=45.0,
            max_attachment_bytes=1000, attachment_timeout=10.0,
        )  # fmt: skip
        self.results: list[Any] = []  # what the Socket.IO machine returned to the application
        self.server._message = self._on_engine_message  # type: ignore[method-assign]
        self.client_decoder = SioDecoder(1000)
        self.client_read = 0

    def _on_engine_message(self, data: str | bytes) -> None:
        result = self.sio.receive(data, self.server.now)
        if result is not None:
            self.results.append(result)

    # -- the client ------------------------------------------------------------------
    def client_send(self, packet: SioPacket) -> None:
        """Encode with the codec; send on the client's current transport."""
        parts = encode_sio(packet)
        messages = [EioPacket(EioType.MESSAGE, part) for part in parts]
        if self.server.state is EioState.WEBSOCKET:
            for message in messages:
                self.pair.ws_send(encode_eio(message))
        else:
            assert self.pair.post(messages) is None

    def client_packets(self) -> list[SioPacket]:
        """Socket.IO packets the client received since the last call (attachments joined)."""
        packets = []
        received = self.pair.client.received
        while self.client_read < len(received):
            packet = self.client_decoder.feed(received[self.client_read])
            self.client_read += 1
            if packet is not None:
                packets.append(packet)
        return packets


def test_one_session_through_polling_upgrade_acks_attachments_heartbeat_and_close() -> None:
    stack = Stack()
    server, pair, sio = stack.server, stack.pair, stack.sio
    assert pair.get() is None  # the client's first GET waits

    # CONNECT over polling, with auth; the application accepts.
    stack.client_send(SioPacket(SioType.CONNECT, "/chat", {"token": "t"}))
    [request] = stack.results
    assert request == ConnectRequested("/chat", {"token": "t"})
    link: Link = NamespaceLink(sio.engine, "/chat")
    sio.begin_connect(link)
    sio.accept(link, "sock-1")
    server.end_turn()
    pair.deliver()
    assert stack.client_packets() == [SioPacket(SioType.CONNECT, "/chat", {"sid": "sock-1"})]

    # An event with an ack id over polling; the application answers it.
    stack.results.clear()
    stack.client_send(SioPacket(SioType.EVENT, "/chat", ["hello", {"n": 1}], 7))
    [event] = stack.results
    assert isinstance(event, SioPacket) and event.data == ["hello", {"n": 1}] and event.id == 7
    assert pair.get() is None
    assert sio.answer(link, 7, ["ok"])
    server.end_turn()
    pair.deliver()
    assert stack.client_packets() == [SioPacket(SioType.ACK, "/chat", ["ok"], 7)]

    # The upgrade begins; the server emits a binary event (header + attachment) while probing.
    assert pair.get() is None
    assert pair.open_probe()
    pair.probe_send(PING_PROBE_TEXT)
    assert server.state is EioState.UPGRADING
    link.send_parts(encode_sio(SioPacket(SioType.EVENT, "/chat", ["frame", b"\x00\x01\x02"])))
    server.end_turn()
    pair.deliver()
    assert stack.client_packets() == []  # held during the upgrade (the GET got a noop)
    pair.probe_send(UPGRADE_TEXT)
    pair.client.transport = "websocket"
    assert server.state is EioState.WEBSOCKET
    # Header and attachment arrive in order on the WebSocket, the attachment as a binary frame.
    assert server.ws_out[-2:] == ['451-/chat,["frame",{"_placeholder":true,"num":0}]', b"\x00\x01\x02"]
    assert stack.client_packets() == [SioPacket(SioType.EVENT, "/chat", ["frame", b"\x00\x01\x02"])]

    # A binary event from the client over the WebSocket: reassembled before it reaches the app.
    stack.results.clear()
    stack.client_send(SioPacket(SioType.EVENT, "/chat", ["upload", b"\xff" * 10], 8))
    [upload] = stack.results
    assert isinstance(upload, SioPacket) and upload.data == ["upload", b"\xff" * 10] and upload.id == 8

    # An emit with an ack from the server; the client's binary ACK answers it once.
    answers: list[list[Any]] = []
    ack_id = sio.register_ack(link, answers.append)
    link.send_parts(encode_sio(SioPacket(SioType.EVENT, "/chat", ["question"], ack_id)))
    server.end_turn()
    pair.deliver()
    assert stack.client_packets() == [SioPacket(SioType.EVENT, "/chat", ["question"], ack_id)]
    stack.results.clear()
    stack.client_send(SioPacket(SioType.ACK, "/chat", ["yes", b"\x07"], ack_id))
    [ack] = stack.results
    assert isinstance(ack, AckReceived)
    ack.waiter(ack.args)
    assert answers == [["yes", b"\x07"]]
    stack.client_send(SioPacket(SioType.ACK, "/chat", ["again"], ack_id))  # a repeated id: ignored
    assert len(stack.results) == 1

    # The heartbeat: pinged after ping_interval, kept alive by the pong.
    pair.advance(TIMING.ping_interval)
    assert pair.client.pings == 1
    pair.pong()
    pair.advance(TIMING.ping_timeout + 1)
    assert not server.closed

    # The client leaves the namespace, then closes the session.
    stack.results.clear()
    stack.client_send(SioPacket(SioType.DISCONNECT, "/chat"))
    assert stack.results == [NamespaceDisconnected(link, CloseReason.CLIENT_NAMESPACE_DISCONNECT)]
    assert sio.links == {}
    pair.ws_send("1")
    assert server.reasons == [CloseReason.TRANSPORT_CLOSE]
    assert sio.session_closed() == []  # nothing left connected to report twice


def test_session_close_reports_every_connected_namespace_once() -> None:
    stack = Stack()
    server, sio = stack.server, stack.sio
    links = []
    for name in ("/", "/chat"):
        stack.client_send(SioPacket(SioType.CONNECT, name))
        link: Link = NamespaceLink(sio.engine, name)
        sio.begin_connect(link)
        sio.accept(link, f"s{name}")
        links.append(link)
    # No pong: the session dies of a ping timeout and both sockets leave, once.
    stack.pair.advance(TIMING.ping_interval + TIMING.ping_timeout)
    assert server.reasons == [CloseReason.PING_TIMEOUT]
    assert sorted(link.nsp for link in sio.session_closed()) == ["/", "/chat"]
    assert sio.session_closed() == []
