"""The Socket.IO machine under random sequences: client packets (engineio_min.testing), the
application's accept/refuse/emit/disconnect decisions and clock jumps, with invariants checked
after every step."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from engineio_min import testing
from engineio_min.codec.sio import SioPacket, SioType
from engineio_min.errors import IllegalTransition
from engineio_min.protocol.reasons import CloseReason
from engineio_min.protocol.socketio import (
    TRANSITIONS,
    AckReceived,
    ConnectRequested,
    InvalidEvent,
    InvalidNamespace,
    LinkState,
    NamespaceDisconnected,
    NamespaceLink,
    ProtocolViolation,
)

from .sio_harness import NAMESPACES, Link, Sink, Waiter, new_machine

# The namespaces the server has, and one it has not.
CLIENT_NAMESPACES = sorted(NAMESPACES | {"/missing"})
LEGAL_MOVES = {(before, after) for (before, _), after in TRANSITIONS.items()}
LIVE = (LinkState.CONNECTING, LinkState.CONNECTED)


class SioSession(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.sink = Sink()
        self.machine = new_machine(self.sink)
        self.closed = False
        self.links: list[Link] = []  # every link ever made, in order
        self.seen_state: dict[int, LinkState] = {}
        self.accepted: set[int] = set()
        self.reports: dict[int, int] = {}  # link -> disconnects reported
        self.sent: dict[int, list[SioPacket]] = {}  # EVENTs the client sent to a link
        self.delivered: dict[int, list[SioPacket]] = {}
        self.waiters: list[Waiter] = []
        self.asked: list[tuple[Link, int]] = []  # ack ids of the server's emits
        self.sinks: dict[int, Sink] = {}

    # -- what the driver does with what comes out ---------------------------------------------
    def handle(self, result: Any) -> None:
        if result is None:
            return
        if type(result) is SioPacket:
            link = self.machine.links[result.namespace]
            assert link.state is LinkState.CONNECTED, "delivered before being accepted"
            assert result.type is SioType.EVENT
            self.delivered[id(link)].append(result)
        elif isinstance(result, ConnectRequested):
            assert result.namespace in NAMESPACES and result.namespace not in self.machine.links
            sink = Sink()
            link: Link = NamespaceLink(sink, result.namespace)
            self.machine.begin_connect(link)
            self.links.append(link)
            self.sinks[id(link)] = sink
            self.sent[id(link)] = []
            self.delivered[id(link)] = []
            self.reports[id(link)] = 0
        elif isinstance(result, AckReceived):
            result.waiter(result.args)
        elif isinstance(result, NamespaceDisconnected):
            assert result.reason is CloseReason.CLIENT_NAMESPACE_DISCONNECT
            self.report(result.link)
        elif isinstance(result, InvalidNamespace):
            assert result.namespace not in NAMESPACES
        elif isinstance(result, InvalidEvent):
            assert result.link.state is LinkState.CONNECTED
        else:
            assert isinstance(result, ProtocolViolation)
            self.close()

    def report(self, link: Link) -> None:
        assert id(link) in self.accepted, "a disconnect reported for a socket never accepted"
        self.reports[id(link)] += 1

    def close(self) -> None:
        for link in self.machine.session_closed():
            self.report(link)
        self.closed = True

    def feed(self, parts: tuple[str | bytes, ...] | list[str | bytes]) -> None:
        for part in parts:
            if self.closed:
                return
            self.handle(self.machine.receive(part, self.now))

    def live(self, state: LinkState) -> list[Link]:
        return [link for link in self.machine.links.values() if link.state is state]

    @initialize(namespace=st.sampled_from(sorted(NAMESPACES)))
    def client_starts_joining(self, namespace: str) -> None:
        self.feed(testing.sio_wire(SioPacket(SioType.CONNECT, namespace)).parts)

    # -- the client -------------------------------------------------------------------------------
    @precondition(lambda self: not self.closed)
    @rule(namespace=st.sampled_from(CLIENT_NAMESPACES), auth=st.none() | st.dictionaries(st.text(max_size=3),
                                                                                          st.integers()))
    def client_connects(self, namespace: str, auth: dict[str, int] | None) -> None:
        self.feed(testing.sio_wire(SioPacket(SioType.CONNECT, namespace, auth)).parts)

    def client_emits(self, wire: testing.SioWire) -> None:
        link = self.machine.links.get(wire.packet.namespace)
        if link is not None and not self.machine.decoder.is_awaiting_attachments:
            self.sent[id(link)].append(wire.packet)
        self.feed(wire.parts)

    @precondition(lambda self: not self.closed and self.machine.links)
    @rule(data=st.data(), name=testing.event_names(), args=testing.event_args(), ack_id=st.none() | testing.ack_ids())
    def client_emits_to_a_joined_namespace(self, data: st.DataObject, name: str | int, args: list[Any],
                                           ack_id: int | None) -> None:
        namespace = data.draw(st.sampled_from(sorted(self.machine.links)))
        self.client_emits(testing.sio_wire(SioPacket(SioType.EVENT, namespace, [name, *args], ack_id)))

    @precondition(lambda self: not self.closed and self.machine.links)
    @rule(data=st.data(), ack_id=st.integers(0, 3), args=testing.event_args())
    def client_acks(self, data: st.DataObject, ack_id: int, args: list[Any]) -> None:
        namespace = data.draw(st.sampled_from(sorted(self.machine.links)))
        self.feed(testing.sio_wire(SioPacket(SioType.ACK, namespace, args, ack_id)).parts)

    def live_asks(self) -> list[tuple[str, int]]:
        return [(link.nsp, ack_id) for link, ack_id in self.asked if self.machine.links.get(link.nsp) is link]

    @precondition(lambda self: not self.closed and self.live_asks())
    @rule(data=st.data(), args=testing.event_args())
    def client_answers_an_ack(self, data: st.DataObject, args: list[Any]) -> None:
        namespace, ack_id = data.draw(st.sampled_from(self.live_asks()))  # maybe again
        self.feed(testing.sio_wire(SioPacket(SioType.ACK, namespace, args, ack_id)).parts)

    @precondition(lambda self: not self.closed and self.machine.links)
    @rule(data=st.data())
    def client_disconnects(self, data: st.DataObject) -> None:
        namespace = data.draw(st.sampled_from(sorted(self.machine.links)))
        self.feed(testing.sio_wire(SioPacket(SioType.DISCONNECT, namespace)).parts)

    @precondition(lambda self: not self.closed and not self.live(LinkState.CONNECTING))
    @rule(data=st.data())
    def client_misbehaves(self, data: st.DataObject) -> None:
        # One rule for what usually ends the session, so that most runs get far. (Not while a
        # hook runs: what got buffered then could not be told from the EVENTs sent.)
        parts = data.draw(st.one_of(
            testing.hostile_sio_messages().map(lambda hostile: hostile.parts),
            testing.encoded_sio_packets(namespace=st.sampled_from(CLIENT_NAMESPACES)).map(lambda wire: wire.parts),
            st.sampled_from([('51-["up",{"_placeholder":true,"num":0}]',),  # attachments that never come
                             ('52-/chat,["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', b"1")]),
        ))  # fmt: skip
        for part in parts:
            if self.closed:
                return
            result = self.machine.receive(part, self.now)
            if type(result) is SioPacket:
                self.sent[id(self.machine.links[result.namespace])].append(result)
            self.handle(result)

    # -- the application -----------------------------------------------------------------------
    @precondition(lambda self: not self.closed and self.live(LinkState.CONNECTING))
    @rule(data=st.data())
    def app_accepts(self, data: st.DataObject) -> None:
        link = data.draw(st.sampled_from(self.live(LinkState.CONNECTING)))
        self.machine.accept(link, f"sid{len(self.links)}")
        self.accepted.add(id(link))
        while (result := self.machine.take_buffered(link)) is not None and not self.closed:
            self.handle(result)

    @precondition(lambda self: not self.closed and self.live(LinkState.CONNECTING))
    @rule(data=st.data(), payload=st.sampled_from([{"message": "no"}, {"message": "no", "data": [1]}]))
    def app_refuses(self, data: st.DataObject, payload: dict[str, Any]) -> None:
        link = data.draw(st.sampled_from(self.live(LinkState.CONNECTING)))
        self.machine.refuse(link, payload)
        assert self.delivered[id(link)] == []

    @precondition(lambda self: not self.closed and self.machine.links)
    @rule(data=st.data(), with_ack=st.booleans())
    def app_emits(self, data: st.DataObject, with_ack: bool) -> None:
        link = data.draw(st.sampled_from(list(self.machine.links.values())))
        if with_ack:
            waiter = Waiter()
            self.waiters.append(waiter)
            self.asked.append((link, self.machine.register_ack(link, waiter)))
        link.send_text('42["server"]')

    @precondition(lambda self: not self.closed and self.live(LinkState.CONNECTED))
    @rule(data=st.data())
    def app_disconnects(self, data: st.DataObject) -> None:
        link = data.draw(st.sampled_from(self.live(LinkState.CONNECTED)))
        self.machine.disconnect(link)
        self.report(link)

    @precondition(lambda self: not self.closed)
    @rule(seconds=st.sampled_from([0.5, 5.0, 9.99, 10.0, 30.0, 45.0, 100.0]))
    def clock_jumps(self, seconds: float) -> None:
        self.now += seconds
        deadline = self.machine.deadline
        if deadline is not None and self.now >= deadline:
            reason = self.machine.expire(self.now)
            if reason is not None:
                assert reason in (CloseReason.PARSE_ERROR, CloseReason.FORCED_CLOSE)
                self.close()

    @precondition(lambda self: not self.closed and len(self.links) > 1)
    @rule()
    def session_ends(self) -> None:
        self.close()

    @precondition(lambda self: self.closed)
    @rule(text=st.sampled_from(["0", '2["x"]', "1"]))
    def nothing_goes_in_after_the_close(self, text: str) -> None:
        with pytest.raises(IllegalTransition):
            self.machine.receive(text, self.now)
        assert self.machine.session_closed() == []
        assert self.machine.expire(self.now + 1000.0) is None

    # -- invariants ------------------------------------------------------------------------------
    @invariant()
    def every_link_is_in_one_state_and_moved_only_by_the_table(self) -> None:
        for link in self.links:
            state = link.state
            assert isinstance(state, LinkState)
            before = self.seen_state.get(id(link), LinkState.CONNECTING)
            assert before == state or (before, state) in LEGAL_MOVES, f"{before} -> {state}"
            self.seen_state[id(link)] = state
            in_session = self.machine.links.get(link.nsp) is link
            assert in_session == (state in LIVE), "the session holds exactly its live links"

    @invariant()
    def events_are_delivered_once_in_order_only_after_accept(self) -> None:
        for link in self.links:
            delivered = self.delivered[id(link)]
            sent = self.sent[id(link)]
            if id(link) not in self.accepted:
                assert delivered == []
            elif link.state is LinkState.CONNECTED:
                assert delivered == sent
            else:
                assert delivered == sent[: len(delivered)]

    @invariant()
    def every_accepted_socket_is_reported_gone_at_most_once_and_once_it_is_gone(self) -> None:
        for link in self.links:
            count = self.reports[id(link)]
            if id(link) in self.accepted and link.state is LinkState.DISCONNECTED:
                assert count == 1
            else:
                assert count == 0

    @invariant()
    def each_ack_id_is_answered_at_most_once(self) -> None:
        assert all(len(waiter.answers) <= 1 for waiter in self.waiters)

    @invariant()
    def the_connect_reply_comes_first_and_nothing_follows_a_refusal(self) -> None:
        for link in self.links:
            sent = self.sinks[id(link)].sent
            if id(link) in self.accepted:
                assert isinstance(sent[0], str) and sent[0].startswith("40")
            elif link.state is LinkState.REFUSED:
                assert len(sent) == 1 and isinstance(sent[0], str) and sent[0].startswith("44")
            else:
                assert sent == []

    @invariant()
    def a_closed_session_has_no_deadline(self) -> None:
        if self.closed:
            assert self.machine.deadline is None and self.machine.links == {}


SioSession.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
TestSioSession = SioSession.TestCase
