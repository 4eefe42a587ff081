"""Socket.IO protocol v5 over raw Engine.IO (SPEC.md §3.1-§3.6; §5 "Socket.IO ...").

The conformance app serves ``/`` and ``/custom``: on CONNECT it replies ``40{"sid"}`` and then
emits ``auth`` with the CONNECT payload; on ``/``, ``message`` is echoed as ``message-back`` and
``message-with-ack`` is acked with its arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest

from .eio_testkit import (
    RS,
    SIO_PATH,
    EioWs,
    HttpClosed,
    Polling,
    assert_only_heartbeats,
    b64,
    dumps,
    placeholders,
    sio_join,
    sio_ws,
)


@pytest.fixture
async def ws(port: int):
    c, _ = await sio_ws(port)
    yield c
    await c.close()


@pytest.fixture
async def joined(ws: EioWs):
    _, auth_evt = await sio_join(ws)
    assert auth_evt == '42["auth",{}]'
    return ws


# --------------------------------------------------------------------------- connect


async def test_connect_main_namespace(ws: EioWs) -> None:
    await ws.send("40")
    reply = await ws.recv_msg()
    assert reply.startswith('40{"sid":"') and reply.endswith('"}'), reply
    body = json.loads(reply[2:], object_pairs_hook=dict)
    assert list(body) == ["sid"], reply
    assert isinstance(body["sid"], str) and body["sid"]
    # the connection handler's emit goes out after the CONNECT reply
    assert await ws.recv_msg() == '42["auth",{}]'


async def test_socket_sid_is_not_the_engine_sid(port: int) -> None:
    c, open_pkt = await sio_ws(port)
    try:
        sid, _ = await sio_join(c)
        assert sid != open_pkt["sid"]
    finally:
        await c.close()


async def test_connect_with_auth(ws: EioWs) -> None:
    _, auth_evt = await sio_join(ws, auth={"token": "123", "n": [1, 2.5, None, True], "ü": "é"})
    assert auth_evt == '42["auth",{"token":"123","n":[1,2.5,null,true],"ü":"é"}]'


@pytest.mark.parametrize("packet", ["40/custom", "40/custom,"], ids=["no-comma", "comma"])
async def test_connect_custom_namespace(ws: EioWs, packet: str) -> None:
    _, auth_evt = await sio_join(ws, "/custom", raw=packet)
    assert auth_evt == '42/custom,["auth",{}]'


async def test_connect_custom_namespace_with_auth(ws: EioWs) -> None:
    _, auth_evt = await sio_join(ws, "/custom", {"token": "abc"})
    assert auth_evt == '42/custom,["auth",{"token":"abc"}]'


async def test_two_namespaces_on_one_engine_session(ws: EioWs) -> None:
    sid_main, _ = await sio_join(ws)
    sid_custom, _ = await sio_join(ws, "/custom")
    assert sid_main != sid_custom
    await ws.send('42["message","x"]')
    assert await ws.recv_msg() == '42["message-back","x"]'


@pytest.mark.parametrize("packet", ["40/random", "40/random,", '40/random,{"token":"1"}'])
async def test_unknown_namespace_is_refused(ws: EioWs, packet: str) -> None:
    await ws.send(packet)
    assert await ws.recv_msg() == '44/random,{"message":"Invalid namespace"}'
    # the engine connection stays open and usable
    _, auth_evt = await sio_join(ws)
    assert auth_evt == '42["auth",{}]'


async def test_unknown_namespace_after_join_keeps_main(joined: EioWs) -> None:
    await joined.send("40/nope,")
    assert await joined.recv_msg() == '44/nope,{"message":"Invalid namespace"}'
    await joined.send('42["message",1]')
    assert await joined.recv_msg() == '42["message-back",1]'


async def test_no_connect_closes_within_2s(ws: EioWs) -> None:
    # connect timeout is 1 s; pings are answered so only the connect timeout can close it
    t0 = time.monotonic()
    frames = await ws.wait_closed(2.0)
    assert_only_heartbeats(frames)
    assert time.monotonic() - t0 >= 0.8, "closed before the 1 s connect timeout"


async def test_connect_over_polling(port: int) -> None:
    # the full polling session from SPEC.md §4
    p = await Polling.start(port, SIO_PATH)
    await p.post_ok("40")
    records = await p.read_records(2)
    assert records[0].startswith('40{"sid":"') and records[0].endswith('"}'), records
    assert records[1] == '42["auth",{}]', records
    await p.post_ok('42["message","via polling"]')
    assert await p.read_records(1) == ['42["message-back","via polling"]']


# --------------------------------------------------------------------------- disconnect


async def test_disconnect_main_then_only_pings(joined: EioWs) -> None:
    await joined.send("41")
    # nothing is sent back; the engine stays open and the next frame is the ping
    assert await joined.recv(1.0) == "2"
    await joined.send("3")
    assert await joined.recv(1.0) == "2"
    await joined.send("3")


async def test_rejoin_after_disconnect(joined: EioWs) -> None:
    await joined.send("41")
    _, auth_evt = await sio_join(joined, auth={"again": True})
    assert auth_evt == '42["auth",{"again":true}]'
    await joined.send('42["message","back"]')
    assert await joined.recv_msg() == '42["message-back","back"]'


@pytest.mark.parametrize("leave", ["41/custom", "41/custom,"], ids=["no-comma", "comma"])
async def test_custom_join_and_leave_then_main_still_works(joined: EioWs, leave: str) -> None:
    _, auth_evt = await sio_join(joined, "/custom", raw="40/custom")
    assert auth_evt == '42/custom,["auth",{}]'
    await joined.send(leave)
    await joined.send('42["message",1,"2",{"3":[true]}]')
    assert await joined.recv_msg() == '42["message-back",1,"2",{"3":[true]}]'


async def test_disconnect_over_polling_keeps_engine(port: int) -> None:
    p = await Polling.start(port, SIO_PATH)
    await p.post_ok("40")
    await p.read_records(2)
    await p.post_ok("41")
    await p.post_ok("40")
    records = await p.read_records(2)
    assert records[0].startswith('40{"sid":"') and records[1] == '42["auth",{}]', records


# --------------------------------------------------------------------------- messages


async def test_event_echo(joined: EioWs) -> None:
    await joined.send('42["message",1,"2",{"3":[true]}]')
    assert await joined.recv_msg() == '42["message-back",1,"2",{"3":[true]}]'


async def test_event_echo_non_ascii_is_raw_utf8(joined: EioWs) -> None:
    await joined.send('42["message","héllo ✓ 😀",{"clé":"ü"}]')
    assert await joined.recv_msg() == '42["message-back","héllo ✓ 😀",{"clé":"ü"}]'


async def test_event_echo_escapes_and_numbers(joined: EioWs) -> None:
    # (no exponent floats: 1e21 may be written 1e21 or 1e+21, both valid JSON)
    args = ['quote " backslash \\ nl \n tab \t', 0, -1, 1.5, None, False, [], {}]
    await joined.send("42" + dumps(["message", *args]))
    got = await joined.recv_msg()
    assert json.loads(got[2:]) == ["message-back", *args], got
    assert got == "42" + dumps(["message-back", *json.loads(got[2:])[1:]]), "output must be compact JSON"
    assert ", " not in got and '": ' not in got, got


async def test_event_without_args(joined: EioWs) -> None:
    await joined.send('42["message"]')
    assert await joined.recv_msg() == '42["message-back"]'


async def test_binary_event_echo(joined: EioWs) -> None:
    await joined.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    await joined.send(b"\x01\x02\x03")
    await joined.send(b"\x04\x05\x06")
    assert await joined.recv_msg() == (
        '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    )
    assert await joined.recv_msg() == b"\x01\x02\x03"
    assert await joined.recv_msg() == b"\x04\x05\x06"


async def test_binary_event_nested(joined: EioWs) -> None:
    await joined.send('451-["message",{"a":{"_placeholder":true,"num":0}}]')
    await joined.send(b"\xff\x00")
    assert await joined.recv_msg() == '451-["message-back",{"a":{"_placeholder":true,"num":0}}]'
    assert await joined.recv_msg() == b"\xff\x00"


async def test_binary_event_mixed_with_text_args(joined: EioWs) -> None:
    await joined.send('452-["message","t",[{"_placeholder":true,"num":1}],{"k":{"_placeholder":true,"num":0}}]')
    await joined.send(b"first")
    await joined.send(b"second")
    header = await joined.recv_msg()
    first, second = await joined.recv_msg(), await joined.recv_msg()
    # the encoder renumbers placeholders depth-first; decode both sides and compare structurally
    assert header.startswith("452-["), header
    doc = json.loads(header[4:])
    att = [first, second]

    def resolve(x):
        if isinstance(x, dict) and x.get("_placeholder") is True:
            return att[x["num"]]
        if isinstance(x, list):
            return [resolve(v) for v in x]
        if isinstance(x, dict):
            return {k: resolve(v) for k, v in x.items()}
        return x

    assert resolve(doc) == ["message-back", "t", [b"second"], {"k": b"first"}], (header, first, second)
    assert header == '452-["message-back","t",[{"_placeholder":true,"num":0}],{"k":{"_placeholder":true,"num":1}}]'


async def test_ack(joined: EioWs) -> None:
    await joined.send('42456["message-with-ack",1,"2",{"3":[false]}]')
    assert await joined.recv_msg() == '43456[1,"2",{"3":[false]}]'


async def test_ack_without_args(joined: EioWs) -> None:
    await joined.send('427["message-with-ack"]')
    assert await joined.recv_msg() == "437[]"


async def test_binary_ack(joined: EioWs) -> None:
    await joined.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    await joined.send(b"\x01\x02\x03")
    await joined.send(b"\x04\x05\x06")
    assert await joined.recv_msg() == '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert await joined.recv_msg() == b"\x01\x02\x03"
    assert await joined.recv_msg() == b"\x04\x05\x06"


async def test_binary_over_polling(port: int) -> None:
    p = await Polling.start(port, SIO_PATH)
    await p.post_ok("40")
    await p.read_records(2)
    header = '452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    await p.post_ok(RS.join([header, b64(b"\x01\x02\x03"), b64(b"\x04\x05\x06")]))
    assert await p.read_records(3) == [
        '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        "bAQID",
        "bBAUG",
    ]


async def test_binary_attachments_split_across_posts(port: int) -> None:
    p = await Polling.start(port, SIO_PATH)
    await p.post_ok("40")
    await p.read_records(2)
    await p.post_ok('451-8["message-with-ack",{"_placeholder":true,"num":0}]')
    await p.post_ok(b64(b"\x09\x08"))
    assert await p.read_records(2) == ['461-8[{"_placeholder":true,"num":0}]', "bCQg="]


async def test_unknown_ack_id_is_ignored(joined: EioWs) -> None:
    await joined.send("43999[]")
    await joined.send('431["late"]')
    await joined.send('42["message","alive"]')
    assert await joined.recv_msg() == '42["message-back","alive"]'


async def test_upgrade_then_socketio(port: int) -> None:
    # a Socket.IO session joined over polling continues over the upgraded WebSocket
    p = await Polling.start(port, SIO_PATH)
    await p.post_ok("40")
    await p.read_records(2)
    ws = await EioWs.connect(port, SIO_PATH, sid=p.sid)
    try:
        await ws.send("2probe")
        assert await ws.recv(1.0) == "3probe"
        resp = await p.get(timeout=1.0)
        assert resp.body == b"6", resp
        await ws.send("5")
        await ws.send('42["message","over ws"]')
        assert await ws.recv_msg() == '42["message-back","over ws"]'
        await ws.send('421["message-with-ack",{"x":1}]')
        assert await ws.recv_msg() == '431[{"x":1}]'
    finally:
        await ws.close()


# --------------------------------------------------------------------------- invalid packets (§3.2)


INVALID_AFTER_JOIN = {
    "type-abc": "4abc",
    "event-object": "42{}",
    "ack-id-garbage": '42abc["message"]',
    "event-empty-array": "42[]",
    "event-name-object": '42[{"a":1}]',
    "event-name-null": "42[null]",
    "event-reserved-disconnect": '42["disconnect"]',
    "event-reserved-connect": '42["connect"]',
    "event-bad-json": '42["message"',
    "event-string": '42"message"',
    "disconnect-with-payload": '41{"a":1}',
    "ack-object": '431{"a":1}',
    "empty-eio-message": "4",
    "type-7": '47["message"]',
    "client-connect-error": '44{"message":"x"}',
    "connect-again": "40",
    "event-not-joined-ns": '42/custom,["message"]',
    "disconnect-not-joined-ns": "41/custom,",
    "binary-bad-count": '45x-["message",{"_placeholder":true,"num":0}]',
    "binary-too-many-attachments": "4511-" + dumps(["message", *placeholders(11)]),
    "binary-event-no-dash": '451["message",{"_placeholder":true,"num":0}]',
}


@pytest.mark.parametrize("packet", list(INVALID_AFTER_JOIN.values()), ids=list(INVALID_AFTER_JOIN))
async def test_invalid_packet_closes_connection(joined: EioWs, packet: str) -> None:
    await joined.send(packet)
    frames = await joined.wait_closed(1.0)
    assert_only_heartbeats(frames)


@pytest.mark.parametrize(
    "packet",
    ["4abc", '42["message"]', "40[1]", '40"x"', "41", '431["x"]', "44{}"],
    ids=[
        "type-abc",
        "event-before-connect",
        "connect-array",
        "connect-string",
        "disconnect-before-connect",
        "ack-before-connect",
        "connect-error",
    ],
)
async def test_invalid_packet_before_connect_closes(ws: EioWs, packet: str) -> None:
    await ws.send(packet)
    frames = await ws.wait_closed(0.8)
    assert_only_heartbeats(frames)


async def test_placeholder_out_of_range_closes(joined: EioWs) -> None:
    await joined.send('451-["message",{"_placeholder":true,"num":1}]')
    await joined.send(b"\x01")
    await joined.wait_closed(1.0)


async def test_placeholder_num_not_a_number_closes(joined: EioWs) -> None:
    await joined.send('451-["message",{"_placeholder":true,"num":"0"}]')
    await joined.send(b"\x01")
    await joined.wait_closed(1.0)


async def test_text_while_attachments_pending_closes(joined: EioWs) -> None:
    await joined.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    await joined.send(b"\x01")
    await joined.send('42["message","too early"]')
    frames = await joined.wait_closed(1.0)
    assert not any(isinstance(f, str) and f.startswith("4") for f in frames), frames


async def test_binary_without_header_closes(joined: EioWs) -> None:
    await joined.send(b"\x01\x02\x03")
    await joined.wait_closed(1.0)


async def test_invalid_packet_in_one_namespace_closes_all(joined: EioWs) -> None:
    await sio_join(joined, "/custom")
    await joined.send("42/custom,{}")
    await joined.wait_closed(1.0)


async def test_invalid_packet_over_polling_closes(port: int) -> None:
    p = await Polling.start(port, SIO_PATH)
    await p.post_ok("40")
    await p.read_records(2)
    with contextlib.suppress(HttpClosed, ConnectionError):
        await p.post("42{}")  # the server may hang up on the POST; only the session's fate is specified
    await asyncio.sleep(0.05)
    resp = await p.get(timeout=1.0)
    assert resp.status == 400 or resp.body.endswith(b"1"), resp
    if resp.status == 200:
        assert (await p.get(timeout=1.0)).status == 400
