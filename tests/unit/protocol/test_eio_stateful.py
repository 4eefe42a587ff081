"""Hypothesis drives random sequences into the Engine.IO session machine (eio_pair.py).

Packets, GETs and POSTs (well-formed and hostile), probe events, server and client closes
and clock jumps, in any order. After every step the invariants hold: never two parked GETs,
the heartbeat's deadlines kept, no message lost, reordered or duplicated (across an upgrade
too), the close reason reported exactly once, and no transition outside the table.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engineio_min.codec.eio import (
    NOOP_TEXT,
    PING_PROBE_TEXT,
    POLLING_CLOSE_REPLY,
    PONG_PROBE_TEXT,
    UPGRADE_TEXT,
    EioPacket,
    EioType,
)
from engineio_min.errors import HandshakeCode
from engineio_min.protocol.engine import Deadline, EioState
from engineio_min.protocol.reasons import CloseReason
from engineio_min.testing import eio_ws_messages, invalid_eio_packets, invalid_polling_payloads

from .eio_pair import REFUSED, TIMING, Pair, table_allows

ENGINE_REASONS = [
    CloseReason.FORCED_CLOSE, CloseReason.SERVER_SHUTDOWN, CloseReason.TRANSPORT_ERROR, CloseReason.TRANSPORT_CLOSE,
]
ENDINGS = [*ENGINE_REASONS, "client close", "second get", "get aborted", "garbage post", "garbage frame",
           "websocket drops"]
POLLING_STATES = (EioState.POLLING, EioState.PROBING, EioState.UPGRADING)
# Clock jumps: small steps, and ones across the heartbeat's and the probe's deadlines.
# (Mostly short: a jump past ping_interval + ping_timeout ends a session that did not pong.)
JUMPS = st.one_of(
    st.sampled_from([0.5, 5.0, 10.0, TIMING.ping_timeout, TIMING.ping_interval]),
    st.floats(min_value=0.0, max_value=30.0, allow_nan=False),
)


class EngineSessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair()
        self.server = self.pair.server
        # The heartbeat as the client lived it: when the interval started, when a ping went out.
        self.interval_from = 0.0
        self.ping_at: float | None = None
        self.pings_seen = 0
        self.transitions_checked = 0

    # -- the server's application and the clock --------------------------------------
    @rule(binary=st.booleans())
    def server_sends(self, binary: bool) -> None:
        self.pair.server_send(binary)

    @rule()
    def end_turn(self) -> None:
        self.pair.end_turn()

    @rule(seconds=JUMPS)
    def clock_jumps(self, seconds: float) -> None:
        self.pair.end_turn()
        self.pair.advance(seconds)

    # -- polling ----------------------------------------------------------------------
    @precondition(lambda self: self.server.state in (*POLLING_STATES, EioState.CLOSING) and not self.server.parked)
    @rule()
    def get(self) -> None:
        state = self.server.state
        answer = self.pair.get()
        if state is EioState.UPGRADING:
            assert answer == NOOP_TEXT  # the client drains polling; the records wait
        elif state is EioState.CLOSING:
            assert isinstance(answer, str) and (answer == POLLING_CLOSE_REPLY or answer[:1] in "24b")

    @precondition(lambda self: self.server.state in (*POLLING_STATES, EioState.CLOSING))
    @rule(binary=st.booleans())
    def client_posts(self, binary: bool) -> None:
        self.pair.client_send(binary)

    @precondition(lambda self: self.pair.client.pings > 0 and not self.server.closed)
    @rule()
    def client_pongs(self) -> None:
        self.pair.pong()
        self.interval_from = self.server.now
        self.ping_at = None

    # -- endings: one rule, so that sessions live long enough to do something first ------
    @rule(ending=st.sampled_from(ENDINGS), data=st.data())
    def something_ends_it(self, ending: str, data: st.DataObject) -> None:
        server = self.server
        state = server.state
        if ending in ENGINE_REASONS:
            server.request_close(CloseReason(ending), server.now)
            self.pair.deliver()
        elif ending == "client close" and not server.closed and state is not EioState.UPGRADING:
            if state is EioState.WEBSOCKET:
                self.pair.ws_send("1")
            else:
                self.pair.post([EioPacket(EioType.CLOSE)])
            assert server.reasons == [CloseReason.TRANSPORT_CLOSE]
        elif ending == "second get" and server.parked:
            assert self.pair.get() is HandshakeCode.BAD_REQUEST
            assert server.reasons == [CloseReason.TRANSPORT_ERROR]
        elif ending == "get aborted" and server.parked:
            server.parked = False  # its connection is gone
            server.poll_aborted(server.now)
            assert server.reasons == [CloseReason.TRANSPORT_ERROR]
        elif ending == "garbage post" and state in (*POLLING_STATES, EioState.CLOSING):
            body = data.draw(invalid_polling_payloads())
            assert server.poll_post(body, False, server.now) is HandshakeCode.BAD_REQUEST
            if state is not EioState.CLOSING:
                assert server.reasons == [CloseReason.PARSE_ERROR]
            self.pair.deliver()
        elif ending == "garbage frame" and state is EioState.WEBSOCKET:
            self.pair.ws_send(data.draw(invalid_eio_packets()))
            assert server.reasons == [CloseReason.PARSE_ERROR]
        elif ending == "websocket drops" and state is EioState.WEBSOCKET:
            server.request_close(CloseReason.TRANSPORT_CLOSE, server.now)

    # -- the WebSocket ----------------------------------------------------------------
    @precondition(lambda self: self.server.state is EioState.WEBSOCKET)
    @rule(binary=st.booleans())
    def client_sends_frame(self, binary: bool) -> None:
        self.pair.client_send(binary)

    @precondition(lambda self: self.server.state is EioState.WEBSOCKET)
    @rule(frame=eio_ws_messages(types=[EioType.OPEN, EioType.UPGRADE, EioType.NOOP], binary=False))
    def client_sends_ignored_frame(self, frame: str) -> None:
        """OPEN, UPGRADE and NOOP from the client change nothing."""
        self.pair.ws_send(frame)
        assert self.server.state is EioState.WEBSOCKET

    # -- the upgrade ------------------------------------------------------------------
    @precondition(lambda self: self.server.state is not EioState.CLOSED)
    @rule()
    def websocket_with_the_sid(self) -> None:
        state = self.server.state
        accepted = self.pair.open_probe()
        assert accepted == (state is EioState.POLLING)
        if not accepted:
            assert self.server.state is state  # SPEC 2.8: refused, the session unchanged

    @precondition(lambda self: self.server.state is EioState.POLLING)
    @rule(steps=st.integers(min_value=1, max_value=3))
    def client_upgrades(self, steps: int) -> None:
        """Up to three steps of the upgrade at once (the rules below take them one by one)."""
        if steps == 3:
            self.pair.upgrade()
            return
        assert self.pair.open_probe()
        if steps == 2:
            self.pair.probe_send(PING_PROBE_TEXT)

    @precondition(lambda self: self.server.probe_open)
    @rule()
    def probe_ping(self) -> None:
        self.pair.probe_send(PING_PROBE_TEXT)
        assert self.server.state is EioState.UPGRADING and self.server.probe_out[-1] == PONG_PROBE_TEXT

    @precondition(lambda self: self.server.probe_open)
    @rule()
    def probe_upgrade(self) -> None:
        state = self.server.state
        self.pair.probe_send(UPGRADE_TEXT)
        if state is EioState.UPGRADING:
            assert self.server.state is EioState.WEBSOCKET
            self.pair.client.transport = "websocket"
        else:  # "5" before "2probe"
            assert self.server.state is EioState.POLLING and not self.server.probe_open

    @precondition(lambda self: self.server.probe_open)
    @rule(data=eio_ws_messages().filter(lambda data: data not in (PING_PROBE_TEXT, UPGRADE_TEXT)))
    def probe_junk(self, data: str | bytes) -> None:
        self.pair.probe_send(data)
        assert self.server.state is EioState.POLLING and not self.server.probe_open

    @precondition(lambda self: self.server.probe_open)
    @rule()
    def probe_drops(self) -> None:
        self.server.probe_open = False
        self.server.probe_closed()
        assert self.server.state is EioState.POLLING

    # -- invariants -------------------------------------------------------------------
    @invariant()
    def never_two_parked_gets(self) -> None:
        # ServerSide.get asserts it as it parks; the machine's view agrees with the driver's.
        assert self.server.poll_parked == self.server.parked
        if self.server.parked:
            assert self.server.state in (EioState.POLLING, EioState.PROBING)

    @invariant()
    def transitions_follow_the_table(self) -> None:
        transitions = self.server.transitions
        for before, event, after in transitions[self.transitions_checked:]:
            assert table_allows(before, event, after), (before, event, after)
        if transitions:
            assert transitions[-1][2] is self.server.state  # nothing else changed the state
        self.transitions_checked = len(transitions)
        assert self.server.closed == (self.server.state in (EioState.CLOSING, EioState.CLOSED))

    @invariant()
    def close_reported_exactly_once(self) -> None:
        reasons = self.server.reasons
        assert len(reasons) == (1 if self.server.closed else 0)
        assert self.server.forgotten == (1 if self.server.state is EioState.CLOSED else 0)
        if self.server.state is EioState.CLOSED:
            assert self.server.timers == {}
            assert not self.server.probe_open and not self.server.parked

    @invariant()
    def heartbeat_deadlines_kept(self) -> None:
        server = self.server
        pings = server.pings_sent
        if len(pings) > self.pings_seen:
            # A ping goes out exactly ping_interval after the open or the pong that answered.
            assert pings[-1] == self.interval_from + TIMING.ping_interval
            self.ping_at = pings[-1]
            self.pings_seen = len(pings)
        if server.reasons == [CloseReason.PING_TIMEOUT]:
            assert self.ping_at is not None  # closed for a ping that was not answered...
            assert server.closed_at == self.ping_at + TIMING.ping_timeout  # ...exactly on time
        elif not server.closed:
            if self.ping_at is None:
                assert server.now < self.interval_from + TIMING.ping_interval
                assert server.timers[Deadline.PING] == (Deadline.PING, self.interval_from + TIMING.ping_interval)
            else:
                assert server.now < self.ping_at + TIMING.ping_timeout
                assert server.timers[Deadline.PING] == (Deadline.PONG, self.ping_at + TIMING.ping_timeout)

    @invariant()
    def messages_neither_lost_nor_reordered_nor_duplicated(self) -> None:
        pair = self.pair
        received = pair.client.received
        assert received == pair.sent_down[: len(received)]
        assert pair.server.messages == pair.sent_up[: len(pair.server.messages)]
        if not pair.server.closed:
            assert pair.server.messages == pair.sent_up  # what reached an open session was delivered
            if pair.server.state is EioState.WEBSOCKET and not pair.server.pending:
                assert received == pair.sent_down  # nothing stays behind in the outbox
        if pair.server.state in POLLING_STATES and not pair.server.pending:
            # What the client has not read waits in the outbox, in order.
            waiting = [record for record in pair.server.outbox if record[:1] in "4b"]
            assert len(received) + len(waiting) == len(pair.sent_down)

    @invariant()
    def a_graceful_close_loses_nothing(self) -> None:
        """What was sent before the close reaches the client before the close does."""
        pair = self.pair
        server_closed_websocket = pair.server.ws_close_code is not None and pair.server.reasons[0] in (
            CloseReason.FORCED_CLOSE, CloseReason.SERVER_SHUTDOWN)  # (a dropped WebSocket loses its bytes)
        if pair.client.got_close or server_closed_websocket:
            assert pair.client.received == pair.sent_down

    @invariant()
    def closing_ends(self) -> None:
        if self.server.state is EioState.CLOSING:
            deadline, at = self.server.timers[Deadline.GRACE]
            assert self.server.closed_at is not None
            assert deadline is Deadline.GRACE and at == self.server.closed_at + TIMING.closing_grace

    def teardown(self) -> None:
        # Whatever happened, the answers the client got were well-formed (REFUSED aside).
        for body in self.server.poll_answers:
            assert body == REFUSED or body


EngineSessionMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestEngineSession = EngineSessionMachine.TestCase
