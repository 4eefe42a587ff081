"""The Socket.IO machine, one rule at a time: Engine.IO messages and a fake clock in, packets,
events and deadlines out (no sockets, no event loop)."""

from __future__ import annotations

import pytest

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
    LinkTrigger,
    NamespaceDisconnected,
    NamespaceLink,
    ProtocolViolation,
)

from .sio_harness import ATTACHMENT_TIMEOUT, CONNECT_TIMEOUT, Link, Machine, Sink, Waiter, new_machine

LONE_SURROGATE_EVENT = '2["chat","\\ud83d"]'  # JSON.stringify of an emoji cut in half
PLACEHOLDER = '{"_placeholder":true,"num":0}'


def join(machine: Machine, sink: Sink, text: str = "0", sid: str = "s1") -> Link:
    """CONNECT with ``text`` and accept at once."""
    requested = machine.receive(text, 0.0)
    assert isinstance(requested, ConnectRequested)
    link: Link = NamespaceLink(sink, requested.namespace)
    machine.begin_connect(link)
    machine.accept(link, sid)
    return link


def connecting(machine: Machine, sink: Sink, text: str = "0") -> Link:
    requested = machine.receive(text, 0.0)
    assert isinstance(requested, ConnectRequested)
    link: Link = NamespaceLink(sink, requested.namespace)
    machine.begin_connect(link)
    return link


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def machine(sink: Sink) -> Machine:
    return new_machine(sink)


# -- joining -------------------------------------------------------------------------------


def test_connect_to_main_namespace_is_answered_with_the_sid(machine: Machine, sink: Sink) -> None:
    requested = machine.receive("0", 0.0)
    assert requested == ConnectRequested("/", {})
    link: Link = NamespaceLink(sink, "/")
    machine.begin_connect(link)
    assert link.state is LinkState.CONNECTING and sink.sent == []
    assert machine.accept(link, "abc") is False  # nothing was buffered
    assert sink.take() == ['40{"sid":"abc"}']
    assert link.state is LinkState.CONNECTED
    assert machine.links == {"/": link}
    assert machine.deadline is None  # the connect deadline is gone


def test_connect_to_custom_namespace_with_auth(machine: Machine, sink: Sink) -> None:
    assert machine.receive('0/admin,{"token":"t"}', 0.0) == ConnectRequested("/admin", {"token": "t"})
    link: Link = NamespaceLink(sink, "/admin")
    machine.begin_connect(link)
    machine.accept(link, "xyz")
    assert sink.take() == ['40/admin,{"sid":"xyz"}']


def test_refused_with_data_and_the_namespace_can_be_joined_again(machine: Machine, sink: Sink) -> None:
    link = connecting(machine, sink, "0/admin,")
    machine.refuse(link, {"message": "not authorized", "data": {"type": "auth"}})
    assert sink.take() == ['44/admin,{"message":"not authorized","data":{"type":"auth"}}']
    assert link.state is LinkState.REFUSED
    assert machine.links == {}
    assert isinstance(machine.receive("0/admin,", 0.0), ConnectRequested)


def test_unknown_namespace_gets_invalid_namespace_and_the_session_stays(machine: Machine, sink: Sink) -> None:
    assert machine.receive("0/nope,", 0.0) == InvalidNamespace("/nope")
    assert sink.take() == ['44/nope,{"message":"Invalid namespace"}']
    join(machine, sink)
    assert sink.take() == ['40{"sid":"s1"}']


@pytest.mark.parametrize("name", ["/a\x1eb", "/\x00", "/tab\there", "/\u2028"])
def test_unknown_namespace_with_control_characters_is_a_parse_error(machine: Machine, sink: Sink,
                                                                     name: str) -> None:
    assert isinstance(machine.receive(f"0{name},", 0.0), ProtocolViolation)
    assert sink.sent == []  # never echoed


def test_second_connect_to_a_joined_or_joining_namespace_is_a_violation(machine: Machine, sink: Sink) -> None:
    connecting(machine, sink)
    assert isinstance(machine.receive("0", 0.0), ProtocolViolation)
    other = new_machine(Sink())
    join(other, Sink())
    assert isinstance(other.receive("0", 0.0), ProtocolViolation)


def test_connect_error_from_the_client_is_a_violation(machine: Machine, sink: Sink) -> None:
    join(machine, sink)
    assert isinstance(machine.receive('4{"message":"x"}', 0.0), ProtocolViolation)


# -- the connect hook's time -----------------------------------------------------------------


def test_packets_sent_while_the_hook_runs_are_delivered_in_order_after_accept(machine: Machine,
                                                                              sink: Sink) -> None:
    link = connecting(machine, sink)
    assert machine.receive('2["a"]', 0.0) is None
    assert machine.receive('27["b",1]', 0.0) is None
    assert machine.receive('51-["c",' + PLACEHOLDER + "]", 0.0) is None
    assert machine.receive(b"\x00\x01", 0.0) is None
    assert machine.accept(link, "s") is True  # packets are waiting
    delivered = []
    while (result := machine.take_buffered(link)) is not None:
        delivered.append(result)
    assert delivered == [
        SioPacket(SioType.EVENT, "/", ["a"]),
        SioPacket(SioType.EVENT, "/", ["b", 1], 7),
        SioPacket(SioType.EVENT, "/", ["c", b"\x00\x01"]),
    ]
    assert machine.take_buffered(link) is None  # delivered once


def test_a_buffered_disconnect_ends_the_link_and_drops_what_follows(machine: Machine, sink: Sink) -> None:
    link = connecting(machine, sink)
    machine.receive('2["a"]', 0.0)
    machine.receive("1", 0.0)
    machine.receive('2["after"]', 0.0)
    machine.accept(link, "s")
    assert machine.take_buffered(link) == SioPacket(SioType.EVENT, "/", ["a"])
    assert machine.take_buffered(link) == NamespaceDisconnected(link, CloseReason.CLIENT_NAMESPACE_DISCONNECT)
    assert machine.take_buffered(link) is None
    assert link.state is LinkState.DISCONNECTED and machine.links == {}


def test_packets_sent_while_the_hook_runs_are_dropped_on_refuse(machine: Machine, sink: Sink) -> None:
    link = connecting(machine, sink)
    machine.receive('2["a"]', 0.0)
    machine.refuse(link, {"message": "no"})
    assert machine.take_buffered(link) is None
    assert isinstance(machine.receive('2["b"]', 0.0), ProtocolViolation)  # not joined any more


def test_emits_made_inside_the_hook_are_written_after_the_connect_reply(machine: Machine, sink: Sink) -> None:
    link = connecting(machine, sink, "0/chat,")
    link.send_text('42/chat,["welcome"]')
    link.send_parts(['51-/chat,["blob",' + PLACEHOLDER + "]", b"\xff"])
    assert sink.sent == []
    machine.accept(link, "s")
    assert sink.take() == ['40/chat,{"sid":"s"}', '42/chat,["welcome"]', '451-/chat,["blob",' + PLACEHOLDER + "]",
                           b"\xff"]  # fmt: skip
    link.send_text('42/chat,["later"]')  # written at once from now on
    assert sink.take() == ['42/chat,["later"]']


def test_emits_made_inside_a_refused_hook_are_never_written(machine: Machine, sink: Sink) -> None:
    link = connecting(machine, sink)
    link.send_text('42["welcome"]')
    machine.refuse(link, {"message": "no"})
    link.send_text('42["late"]')
    assert sink.take() == ['44{"message":"no"}']


# -- events and acks ---------------------------------------------------------------------------


def test_events_with_and_without_ack_id(machine: Machine, sink: Sink) -> None:
    link = join(machine, sink, "0/admin,")
    sink.take()
    assert machine.receive('2/admin,["x",1]', 0.0) == SioPacket(SioType.EVENT, "/admin", ["x", 1])
    event = machine.receive('2/admin,12["y"]', 0.0)
    assert event == SioPacket(SioType.EVENT, "/admin", ["y"], 12)
    assert machine.answer(link, 12, [{"ok": True}])
    assert sink.take() == ['43/admin,12[{"ok":true}]']


def test_client_ack_reaches_its_waiter_once_and_unknown_ids_are_ignored(machine: Machine, sink: Sink) -> None:
    link = join(machine, sink)
    waiter = Waiter()
    ack_id = machine.register_ack(link, waiter)
    assert ack_id == 0 and machine.register_ack(link, Waiter()) == 1
    assert machine.receive("399[]", 0.0) is None  # unknown
    result = machine.receive('30["yes"]', 0.0)
    assert result == AckReceived(link, waiter, ["yes"])
    assert machine.receive('30["again"]', 0.0) is None  # repeated


def test_a_forgotten_ack_id_is_ignored(machine: Machine, sink: Sink) -> None:
    link = join(machine, sink)
    ack_id = machine.register_ack(link, Waiter())
    machine.forget_ack(link, ack_id)
    assert machine.receive(f"3{ack_id}[1]", 0.0) is None


def test_binary_event_and_binary_ack(machine: Machine, sink: Sink) -> None:
    link = join(machine, sink)
    assert machine.receive('52-["up",' + PLACEHOLDER + ',{"_placeholder":true,"num":1}]', 5.0) is None
    assert machine.deadline == 5.0 + ATTACHMENT_TIMEOUT
    assert machine.receive(b"a", 6.0) is None
    assert machine.receive(b"b", 7.0) == SioPacket(SioType.EVENT, "/", ["up", b"a", b"b"])
    assert machine.deadline is None
    waiter = Waiter()
    ack_id = machine.register_ack(link, waiter)
    assert machine.receive(f"61-{ack_id}[{PLACEHOLDER}]", 8.0) is None
    assert machine.receive(b"\x00", 8.0) == AckReceived(link, waiter, [b"\x00"])


def test_attachments_that_never_arrive_are_a_parse_error_at_the_deadline(machine: Machine, sink: Sink) -> None:
    join(machine, sink)
    machine.receive('52-["up",' + PLACEHOLDER + ',{"_placeholder":true,"num":1}]', 100.0)
    machine.receive(b"a", 105.0)  # the clock runs from the header
    assert machine.deadline == 100.0 + ATTACHMENT_TIMEOUT
    assert machine.expire(109.9) is None
    assert machine.expire(110.0) is CloseReason.PARSE_ERROR


def test_text_while_attachments_are_pending_is_a_violation(machine: Machine, sink: Sink) -> None:
    join(machine, sink)
    machine.receive("51-[\"x\"," + PLACEHOLDER + "]", 0.0)
    assert isinstance(machine.receive('2["y"]', 0.0), ProtocolViolation)


def test_invalid_event_json_is_reported_for_a_connected_namespace_only(machine: Machine, sink: Sink) -> None:
    link = join(machine, sink)
    invalid = machine.receive(LONE_SURROGATE_EVENT, 0.0)
    assert isinstance(invalid, InvalidEvent) and invalid.link is link and invalid.ack_id is None
    answered = machine.receive('25["chat","\\ud83d"]', 0.0)
    assert isinstance(answered, InvalidEvent) and answered.ack_id == 5
    assert isinstance(machine.receive('2/admin,["chat","\\ud83d"]', 0.0), ProtocolViolation)  # not joined
    joining = new_machine(Sink())
    connecting(joining, Sink())
    assert isinstance(joining.receive(LONE_SURROGATE_EVENT, 0.0), ProtocolViolation)  # not accepted yet


# -- leaving ------------------------------------------------------------------------------------


def test_disconnect_from_the_client(machine: Machine, sink: Sink) -> None:
    link = join(machine, sink, "0/chat,")
    assert machine.receive("1/chat,", 0.0) == NamespaceDisconnected(link, CloseReason.CLIENT_NAMESPACE_DISCONNECT)
    assert link.state is LinkState.DISCONNECTED and machine.links == {}
    assert isinstance(machine.receive('2/chat,["x"]', 0.0), ProtocolViolation)
    assert isinstance(machine.receive("1/chat,", 0.0), ProtocolViolation)


def test_disconnect_from_the_server(machine: Machine, sink: Sink) -> None:
    link = join(machine, sink, "0/chat,")
    other = join(machine, sink)
    sink.take()
    machine.disconnect(link)
    assert sink.take() == ["41/chat,"]
    machine.disconnect(other)
    assert sink.take() == ["41"]
    assert link.state is LinkState.DISCONNECTED and machine.links == {}
    with pytest.raises(IllegalTransition):
        machine.disconnect(link)
    assert not machine.answer(link, 1, [])  # nothing more for it


def test_a_packet_for_a_namespace_not_joined_is_a_violation(machine: Machine, sink: Sink) -> None:
    join(machine, sink)
    for text in ('2/admin,["x"]', "1/admin,", "3/admin,1[]", '2/other,["x"]'):
        assert isinstance(machine.receive(text, 0.0), ProtocolViolation)


def test_session_close_ends_every_link_and_reports_the_connected_ones_once(machine: Machine, sink: Sink) -> None:
    main = join(machine, sink)
    pending = connecting(machine, sink, "0/admin,")
    assert machine.session_closed() == [main]
    assert main.state is LinkState.DISCONNECTED and pending.state is LinkState.DISCONNECTED
    assert machine.session_closed() == []
    assert machine.deadline is None
    with pytest.raises(IllegalTransition):
        machine.accept(pending, "late")  # the hook finished after the session ended
    with pytest.raises(IllegalTransition):
        machine.receive('2["x"]', 0.0)


# -- the connect deadline -------------------------------------------------------------------------


def test_no_namespace_within_connect_timeout_closes(sink: Sink) -> None:
    machine = new_machine(sink, now=1000.0)
    assert machine.deadline == 1000.0 + CONNECT_TIMEOUT
    connecting(machine, sink)  # a hook still running does not count
    assert machine.expire(1044.0) is None
    assert machine.expire(1045.0) is CloseReason.FORCED_CLOSE


def test_connect_timeout_stops_with_the_first_accept_even_if_it_leaves_again(machine: Machine, sink: Sink) -> None:
    join(machine, sink)
    machine.receive("1", 0.0)
    assert machine.deadline is None
    assert machine.expire(10_000.0) is None


# -- the table -----------------------------------------------------------------------------------


def test_terminal_states_have_no_way_out_and_every_trigger_is_used() -> None:
    sources = {state for state, _ in TRANSITIONS}
    assert sources == {LinkState.CONNECTING, LinkState.CONNECTED}
    assert {trigger for _, trigger in TRANSITIONS} == set(LinkTrigger)


def test_transitions_outside_the_table_raise(machine: Machine, sink: Sink) -> None:
    link = join(machine, sink)
    with pytest.raises(IllegalTransition) as raised:
        machine.accept(link, "again")
    assert raised.value.state is LinkState.CONNECTED
    with pytest.raises(IllegalTransition):
        machine.refuse(link, {"message": "too late"})
    with pytest.raises(IllegalTransition):
        machine.begin_connect(link)
    stranger: Link = NamespaceLink(sink, "/chat")
    with pytest.raises(IllegalTransition):
        machine.accept(stranger, "never begun")
    with pytest.raises(IllegalTransition):
        machine.disconnect(stranger)
