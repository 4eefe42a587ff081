"""The Engine.IO session machine, client and server talking without sockets (eio_pair.py)."""

from __future__ import annotations

import pytest

from engineio_min.codec.eio import (
    CLOSE_TEXT,
    NOOP_TEXT,
    PING_PROBE_TEXT,
    POLLING_CLOSE_REPLY,
    PONG_PROBE_TEXT,
    UPGRADE_TEXT,
    EioPacket,
    EioType,
)
from engineio_min.codec.payload import MAX_PACKETS_PER_RESPONSE, SEPARATOR
from engineio_min.errors import HandshakeCode, IllegalTransition
from engineio_min.protocol.engine import CLOSED_STATES, TRANSITIONS, Deadline, EioEvent, EioState
from engineio_min.protocol.reasons import CloseReason

from .eio_pair import REFUSED, TIMING, Pair, ServerSide, table_allows


def _state(server: ServerSide) -> EioState:
    # (A call, so that mypy does not narrow the state across the steps of a test.)
    return server.state


def _every_transition_in_table(server: ServerSide) -> None:
    for before, event, after in server.transitions:
        assert table_allows(before, event, after), (before, event, after)


# -- the table -----------------------------------------------------------------------
def test_table_covers_every_state_and_only_closing_states_are_closed() -> None:
    assert set(TRANSITIONS) == set(EioState)
    assert {EioState.CLOSING, EioState.CLOSED} == CLOSED_STATES
    assert TRANSITIONS[EioState.CLOSED] == {}
    targets = {after for row in TRANSITIONS.values() for after in row.values()}
    assert targets == set(EioState) - {EioState.HANDSHAKE}


def test_polling_close_reply_is_noop_then_close() -> None:
    assert POLLING_CLOSE_REPLY == NOOP_TEXT + SEPARATOR + CLOSE_TEXT


# -- polling --------------------------------------------------------------------------
def test_parked_get_is_answered_at_the_end_of_the_turn() -> None:
    pair = Pair()
    assert pair.get() is None
    pair.server_send()
    pair.server_send(binary=True)
    assert pair.server.poll_answers == []  # nothing before the turn ends
    pair.end_turn()
    assert pair.server.poll_answers == ["4down1" + SEPARATOR + "bAAAAAg=="]
    assert pair.client.received == ["down1", b"\x00\x00\x00\x02"]
    assert not pair.server.parked


def test_get_takes_the_outbox_at_once_at_most_16_records() -> None:
    pair = Pair()
    for _ in range(MAX_PACKETS_PER_RESPONSE + 3):
        pair.server_send()
    pair.end_turn()
    first = pair.get()
    assert isinstance(first, str) and first.count(SEPARATOR) == MAX_PACKETS_PER_RESPONSE - 1
    second = pair.get()
    assert isinstance(second, str) and second.count(SEPARATOR) == 2
    assert pair.client.received == pair.sent_down
    assert pair.server.outbox == [] and pair.server.outbox_bytes == 0


def test_post_delivers_text_and_binary_in_order() -> None:
    pair = Pair()
    pair.client_send()
    pair.client_send(binary=True)
    pair.client_send()
    assert pair.server.messages == pair.sent_up


def test_post_with_binary_content_type_closes_with_transport_error() -> None:
    server = ServerSide()
    server.open_polling(0.0)
    assert server.poll_post(b"4x", True, 0.0) is HandshakeCode.BAD_REQUEST
    assert server.reasons == [CloseReason.TRANSPORT_ERROR]


@pytest.mark.parametrize("body", [b"", b"4a\x1e\x1e4b", b"9", b"bAQIDBA", b"4\xff"])
def test_bad_post_closes_with_parse_error(body: bytes) -> None:
    pair = Pair()
    assert pair.get() is None
    assert pair.server.poll_post(body, False, 0.0) is HandshakeCode.BAD_REQUEST
    assert pair.server.reasons == [CloseReason.PARSE_ERROR]
    assert pair.server.poll_answers == [CLOSE_TEXT]  # the parked GET learns it
    assert pair.server.state is EioState.CLOSED and pair.server.forgotten == 1


def test_two_gets_at_once_refuse_the_second_and_close() -> None:
    pair = Pair()
    assert pair.get() is None
    assert pair.get() is HandshakeCode.BAD_REQUEST
    assert pair.server.poll_answers == [CLOSE_TEXT]
    assert pair.server.reasons == [CloseReason.TRANSPORT_ERROR]
    assert pair.server.forgotten == 1


def test_aborted_get_closes_with_transport_error() -> None:
    pair = Pair()
    assert pair.get() is None
    pair.server.parked = False  # the connection is gone: nothing to answer
    pair.server.poll_aborted(1.0)
    assert pair.server.reasons == [CloseReason.TRANSPORT_ERROR]


# -- heartbeat --------------------------------------------------------------------------
def test_a_client_that_never_pongs_is_closed_at_interval_plus_timeout() -> None:
    pair = Pair()
    assert pair.get() is None
    pair.advance(TIMING.ping_interval)
    assert pair.server.pings_sent == [TIMING.ping_interval]
    assert pair.client.pings == 1  # the parked GET carried the ping
    pair.advance(TIMING.ping_timeout - 0.25)  # binary fractions: exact sums
    assert not pair.server.closed
    pair.advance(0.25)
    assert pair.server.reasons == [CloseReason.PING_TIMEOUT]
    assert pair.server.closed_at == TIMING.ping_interval + TIMING.ping_timeout
    assert pair.server.timers == {}


def test_a_client_that_pongs_is_never_closed_for_ping() -> None:
    pair = Pair()
    pair.upgrade()
    for cycle in range(1, 6):
        pair.advance(TIMING.ping_interval)
        assert pair.client.pings == 1
        pair.advance(TIMING.ping_timeout - 1)
        pair.pong()
        assert pair.server.pings_sent[-1] == cycle * TIMING.ping_interval + (cycle - 1) * (TIMING.ping_timeout - 1)
    assert not pair.server.closed
    pair.advance(1000)  # then silence
    assert pair.server.reasons == [CloseReason.PING_TIMEOUT]


def test_unsolicited_pong_changes_nothing() -> None:
    pair = Pair()
    pair.post([EioPacket(EioType.PONG)])
    assert pair.server.timers == {Deadline.PING: (Deadline.PING, TIMING.ping_interval)}


def test_client_ping_is_a_parse_error() -> None:
    pair = Pair()
    pair.upgrade()
    pair.ws_send("2")
    assert pair.server.reasons == [CloseReason.PARSE_ERROR]
    assert pair.server.ws_close_code == 1000


# -- upgrade ------------------------------------------------------------------------------
def test_upgrade_moves_queued_records_to_the_websocket_in_order() -> None:
    pair = Pair()
    pair.server_send()
    pair.end_turn()  # waits in the outbox: no GET
    assert pair.open_probe()
    pair.server_send(binary=True)
    pair.end_turn()
    pair.probe_send(PING_PROBE_TEXT)
    assert pair.server.probe_out == [PONG_PROBE_TEXT]
    pair.server_send()
    pair.end_turn()
    assert pair.get() == NOOP_TEXT  # a GET during the upgrade drains polling
    pair.server_send()  # sent in the same turn as the "5"
    pair.probe_send(UPGRADE_TEXT)
    pair.server_send(binary=True)
    pair.end_turn()
    assert pair.server.state is EioState.WEBSOCKET
    assert pair.client.received == pair.sent_down
    assert pair.server.outbox == []
    _every_transition_in_table(pair.server)


def test_get_parked_during_the_probe_is_answered_noop_at_2probe() -> None:
    pair = Pair()
    assert pair.open_probe()
    assert pair.get() is None  # PROBING: polling goes on
    pair.server_send()
    pair.end_turn()
    assert pair.server.poll_answers == ["4down1"]  # still polling while probing
    assert pair.get() is None
    pair.probe_send(PING_PROBE_TEXT)
    assert pair.server.poll_answers[-1] == NOOP_TEXT
    assert pair.client.noops == 1
    pair.probe_send(UPGRADE_TEXT)
    assert pair.server.state is EioState.WEBSOCKET


def test_second_websocket_with_the_same_sid_is_refused_and_the_first_keeps_working() -> None:
    pair = Pair()
    pair.upgrade()
    assert not pair.open_probe()  # SPEC 2.8: the driver accepts it and closes it at once
    assert pair.server.state is EioState.WEBSOCKET
    pair.server_send()
    pair.end_turn()
    pair.client_send()
    assert pair.client.received == pair.sent_down and pair.server.messages == pair.sent_up


def test_a_second_probe_while_probing_is_refused() -> None:
    pair = Pair()
    assert pair.open_probe()
    assert not pair.open_probe()
    assert pair.server.state is EioState.PROBING


def test_a_probe_that_never_finishes_times_out_back_to_polling() -> None:
    pair = Pair()
    assert pair.open_probe()
    pair.probe_send(PING_PROBE_TEXT)
    pair.server_send()
    pair.end_turn()
    assert pair.get() == NOOP_TEXT
    assert pair.get() == NOOP_TEXT
    pair.advance(TIMING.upgrade_timeout)
    assert pair.server.state is EioState.POLLING and not pair.server.probe_open
    assert pair.get() == "4down1"
    assert pair.client.received == pair.sent_down
    assert Deadline.UPGRADE not in pair.server.timers


def test_probe_failure_answers_the_parked_get_with_what_waited() -> None:
    pair = Pair()
    assert pair.open_probe()
    assert pair.get() is None
    pair.probe_send(PING_PROBE_TEXT)  # the parked GET gets "6"
    assert pair.get() == NOOP_TEXT
    pair.server_send()
    pair.end_turn()
    pair.probe_send("4junk")  # anything but "5" ends the probe
    assert pair.server.state is EioState.POLLING
    assert pair.get() == "4down1"


def test_probe_closed_by_the_client_returns_to_polling() -> None:
    pair = Pair()
    assert pair.open_probe()
    pair.server.probe_open = False
    pair.server.probe_closed()
    assert pair.server.state is EioState.POLLING
    assert pair.open_probe()  # a new probe may come


def test_5_before_2probe_ends_the_probe() -> None:
    pair = Pair()
    assert pair.open_probe()
    pair.probe_send(UPGRADE_TEXT)
    assert pair.server.state is EioState.POLLING


# -- close ----------------------------------------------------------------------------------
def test_server_close_with_a_parked_get_and_nothing_queued_answers_1() -> None:
    pair = Pair()
    assert pair.get() is None
    pair.server.request_close(CloseReason.FORCED_CLOSE, 1.0)
    assert pair.server.poll_answers == [CLOSE_TEXT]
    assert pair.server.state is EioState.CLOSED and pair.server.forgotten == 1
    assert pair.server.reasons == [CloseReason.FORCED_CLOSE]
    assert pair.server.timers == {}


def test_server_close_with_queued_records_lingers_for_the_1() -> None:
    pair = Pair()
    assert pair.get() is None
    pair.server_send()  # sent in the turn of the close: goes out before it
    pair.server.request_close(CloseReason.FORCED_CLOSE, 1.0)
    pair.deliver()
    assert pair.server.poll_answers == ["4down1"]
    assert pair.server.state is EioState.CLOSING and pair.server.closed
    assert pair.server.reasons == [CloseReason.FORCED_CLOSE]
    assert pair.get() == POLLING_CLOSE_REPLY
    assert pair.client.got_close and _state(pair.server) is EioState.CLOSED
    assert pair.server.forgotten == 1 and pair.server.timers == {}


def test_closing_grace_ends_without_the_last_get() -> None:
    pair = Pair()
    pair.server_send()
    pair.end_turn()
    pair.server.request_close(CloseReason.FORCED_CLOSE, 0.0)
    assert pair.server.state is EioState.CLOSING
    pair.client_send()  # a POST during the grace is answered, its packets dropped
    assert pair.server.messages == []
    pair.advance(TIMING.closing_grace)
    assert _state(pair.server) is EioState.CLOSED and pair.server.forgotten == 1
    assert pair.server.reasons == [CloseReason.FORCED_CLOSE]


def test_shutdown_refuses_the_parked_get_and_sends_no_1() -> None:
    pair = Pair()
    assert pair.get() is None
    pair.server.request_close(CloseReason.SERVER_SHUTDOWN, 0.0)
    assert pair.server.poll_answers == [REFUSED]
    assert pair.server.state is EioState.CLOSED


@pytest.mark.parametrize(("reason", "code"), [(CloseReason.FORCED_CLOSE, 1000), (CloseReason.SERVER_SHUTDOWN, 1001)])
def test_server_close_on_websocket(reason: CloseReason, code: int) -> None:
    pair = Pair()
    pair.upgrade()
    pair.server.request_close(reason, 0.0)
    pair.server.request_close(CloseReason.TRANSPORT_CLOSE, 0.0)  # idempotent: reported once
    assert pair.server.ws_close_code == code
    assert pair.server.reasons == [reason] and pair.server.forgotten == 1


def test_client_close_over_polling_answers_the_parked_get_noop() -> None:
    pair = Pair()
    assert pair.get() is None
    pair.post([EioPacket(EioType.MESSAGE, "last"), EioPacket(EioType.CLOSE), EioPacket(EioType.MESSAGE, "dropped")])
    assert pair.server.messages == ["last"]
    assert pair.server.poll_answers == [NOOP_TEXT]
    assert pair.server.reasons == [CloseReason.TRANSPORT_CLOSE]


def test_client_close_over_websocket() -> None:
    pair = Pair()
    pair.upgrade()
    pair.ws_send("1")
    pair.ws_send("4after")
    assert pair.server.reasons == [CloseReason.TRANSPORT_CLOSE] and pair.server.messages == []


def test_close_while_probing_closes_the_probe() -> None:
    pair = Pair()
    assert pair.open_probe()
    pair.probe_send(PING_PROBE_TEXT)
    pair.server.request_close(CloseReason.TRANSPORT_ERROR, 0.0)
    assert not pair.server.probe_open and pair.server.timers == {}
    assert pair.server.state is EioState.CLOSED


def test_bad_frame_is_a_parse_error() -> None:
    pair = Pair()
    pair.upgrade()
    pair.ws_send("9nope")
    assert pair.server.reasons == [CloseReason.PARSE_ERROR]


# -- websocket handshake and binary -----------------------------------------------------
def test_websocket_session_carries_binary_both_ways() -> None:
    server = ServerSide()
    server.open_websocket(0.0)
    server.ws_open = True
    server.frame_received(b"\x01\x02", 0.0)
    server.frame_received("4text", 0.0)
    server.send(b"\x03")
    server.end_turn()
    assert server.messages == [b"\x01\x02", "text"]
    assert server.ws_out == [b"\x03"]
    assert server.transport == "websocket"
    server.request_close(CloseReason.TRANSPORT_CLOSE, 0.0)
    assert server.transport == "websocket"  # still known after the close (the application logs it)


def test_transport_follows_the_upgrade() -> None:
    pair = Pair()
    assert pair.server.transport == "polling"
    pair.upgrade()
    assert pair.server.transport == "websocket"


# -- the driver's mistakes are IllegalTransition ------------------------------------------
def test_illegal_requests_raise() -> None:
    pair = Pair()
    pair.upgrade()
    with pytest.raises(IllegalTransition) as info:
        pair.server.poll_get(0.0)
    assert info.value.state is EioState.WEBSOCKET and info.value.event == EioEvent.POLL
    with pytest.raises(IllegalTransition):
        pair.server.deadline_passed(Deadline.GRACE, 0.0)
    with pytest.raises(IllegalTransition):
        pair.server.deadline_passed(Deadline.PONG, 0.0)  # no ping is out
    with pytest.raises(IllegalTransition):
        pair.server.probe_received(PING_PROBE_TEXT, 0.0)
    with pytest.raises(IllegalTransition):
        pair.server.open_polling(0.0)
    assert pair.server.state is EioState.WEBSOCKET  # a refused request changes nothing
