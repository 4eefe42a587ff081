"""Every byte-exact example of SPEC.md (§2.3-§2.5, §3.1-§3.5, §3.10, §4), both directions.

Each helper asserts encode(packet) == wire and decode(wire) == packet, in the
manner of ``assertFrameData`` in websockets' test_frames.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from engineio_min.codec import json
from engineio_min.codec.eio import (
    CLOSE_TEXT,
    NOOP_TEXT,
    PING_TEXT,
    PONG_PROBE_TEXT,
    EioPacket,
    EioType,
    decode_eio,
    encode_eio,
    encode_eio_polling,
)
from engineio_min.codec.handshake import encode_open
from engineio_min.codec.payload import PayloadDecoder, decode_payload, encode_payload
from engineio_min.codec.sio import SioDecoder, SioPacket, SioType, encode_event_text, encode_sio

E = EioType
S = SioType


def ph(num: int) -> dict[str, Any]:
    return {"_placeholder": True, "num": num}


# --------------------------------------------------------------------------
# Engine.IO, one packet (SPEC §4 first table, §2.4)

OPEN_SUITE = (
    '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}'
)
OPEN_DEFAULTS = (
    '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
    '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
)

EIO_TEXT_EXAMPLES = [
    ("1", EioPacket(E.CLOSE)),
    ("2", EioPacket(E.PING)),
    ("2probe", EioPacket(E.PING, "probe")),
    ("3", EioPacket(E.PONG)),
    ("3probe", EioPacket(E.PONG, "probe")),
    ("4hello", EioPacket(E.MESSAGE, "hello")),
    ("4", EioPacket(E.MESSAGE, "")),
    ("5", EioPacket(E.UPGRADE)),
    ("6", EioPacket(E.NOOP)),
    (OPEN_SUITE, EioPacket(E.OPEN, OPEN_SUITE[1:])),
    ('42["hello"]', EioPacket(E.MESSAGE, '2["hello"]')),
]


@pytest.mark.parametrize(("wire", "packet"), EIO_TEXT_EXAMPLES, ids=[w[:12] for w, _ in EIO_TEXT_EXAMPLES])
def test_eio_text_packet(wire: str, packet: EioPacket) -> None:
    # Text packets look the same over WebSocket and as a polling record.
    assert encode_eio(packet) == wire
    assert encode_eio_polling(packet) == wire
    assert decode_eio(wire) == packet


def test_eio_binary_message_websocket() -> None:
    packet = EioPacket(E.MESSAGE, b"\x01\x02\x03\x04")
    assert encode_eio(packet) == b"\x01\x02\x03\x04"
    assert decode_eio(b"\x01\x02\x03\x04") == packet


def test_eio_binary_message_polling() -> None:
    packet = EioPacket(E.MESSAGE, b"\x01\x02\x03\x04")
    assert encode_eio_polling(packet) == "bAQIDBA=="
    assert decode_eio("bAQIDBA==") == packet


def test_eio_empty_binary_message() -> None:
    packet = EioPacket(E.MESSAGE, b"")
    assert encode_eio(packet) == b""
    assert decode_eio(b"") == packet
    assert encode_eio_polling(packet) == "b"
    assert decode_eio("b") == packet


def test_eio_prebuilt_constants() -> None:
    assert PING_TEXT == encode_eio(EioPacket(E.PING)) == "2"
    assert PONG_PROBE_TEXT == encode_eio(EioPacket(E.PONG, "probe")) == "3probe"
    assert NOOP_TEXT == encode_eio(EioPacket(E.NOOP)) == "6"
    assert CLOSE_TEXT == encode_eio(EioPacket(E.CLOSE)) == "1"


def test_eio_binary_needs_message_type() -> None:
    with pytest.raises(ValueError):
        encode_eio(EioPacket(E.PING, b"x"))
    with pytest.raises(ValueError):
        encode_eio_polling(EioPacket(E.PING, b"x"))


# --------------------------------------------------------------------------
# Handshake (SPEC §2.3, §4)


def test_open_packet_suite_values() -> None:
    wire = encode_open("lv_VI97HAXpY6yYWAAAC", ["websocket"], 0.3, 0.2, 1_000_000)
    assert wire == OPEN_SUITE
    packet = decode_eio(wire)
    assert packet.type is E.OPEN
    assert list(json.loads(packet.data)) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]


def test_open_packet_defaults() -> None:
    assert encode_open("lv_VI97HAXpY6yYWAAAC", ("websocket",), 25.0, 20.0, 1_000_000) == OPEN_DEFAULTS


def test_open_packet_websocket_has_no_upgrades() -> None:
    assert encode_open("abc", [], 0.3, 0.2, 1_000_000) == (
        '0{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}'
    )


@pytest.mark.parametrize(("seconds", "ms"), [(0.3, 300), (0.2, 200), (0.29, 290), (0.001, 1), (25, 25000), (0.0005, 0)])
def test_open_packet_rounds_to_ms(seconds: float, ms: int) -> None:
    body = json.loads(encode_open("s", [], seconds, seconds, 1)[1:])
    assert body["pingInterval"] == ms
    assert body["pingTimeout"] == ms
    assert type(body["pingInterval"]) is int


# --------------------------------------------------------------------------
# Polling payloads (SPEC §2.5, §4)

PAYLOAD_EXAMPLES = [
    (
        "4hello\x1e2\x1ebAQIDBA==",
        [EioPacket(E.MESSAGE, "hello"), EioPacket(E.PING), EioPacket(E.MESSAGE, b"\x01\x02\x03\x04")],
    ),
    (
        "4test1\x1e4test2\x1e4test3",
        [EioPacket(E.MESSAGE, "test1"), EioPacket(E.MESSAGE, "test2"), EioPacket(E.MESSAGE, "test3")],
    ),
    ("4hello\x1ebAQIDBA==", [EioPacket(E.MESSAGE, "hello"), EioPacket(E.MESSAGE, b"\x01\x02\x03\x04")]),
    (
        "4hello\x1e2\x1e4world",
        [EioPacket(E.MESSAGE, "hello"), EioPacket(E.PING), EioPacket(E.MESSAGE, "world")],
    ),
    ("6\x1e1", [EioPacket(E.NOOP), EioPacket(E.CLOSE)]),
    ("2", [EioPacket(E.PING)]),
    ("40", [EioPacket(E.MESSAGE, "0")]),
    (
        '40{"sid":"GuPnxzS5koAYxKRDAAAA"}\x1e42["auth",{}]',
        [EioPacket(E.MESSAGE, '0{"sid":"GuPnxzS5koAYxKRDAAAA"}'), EioPacket(E.MESSAGE, '2["auth",{}]')],
    ),
    (
        '452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]\x1ebAQID\x1ebBAUG',
        [
            EioPacket(E.MESSAGE, '52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'),
            EioPacket(E.MESSAGE, b"\x01\x02\x03"),
            EioPacket(E.MESSAGE, b"\x04\x05\x06"),
        ],
    ),
]


@pytest.mark.parametrize(("body", "packets"), PAYLOAD_EXAMPLES, ids=[b[:16] for b, _ in PAYLOAD_EXAMPLES])
def test_payload(body: str, packets: list[EioPacket]) -> None:
    assert encode_payload(packets) == body
    assert decode_payload(body) == packets
    assert decode_payload(body.encode()) == packets
    # The suite's echo tests: what was POSTed comes back byte for byte.
    assert encode_payload(decode_payload(body)) == body
    decoder = PayloadDecoder()
    raw = body.encode()
    fed = [packet for i in range(len(raw)) for packet in decoder.feed(raw[i : i + 1])]
    assert fed + decoder.finish() == packets


def test_payload_decoder_is_reusable_after_finish() -> None:
    decoder = PayloadDecoder()
    assert decoder.feed(b"4a\x1e4") == [EioPacket(E.MESSAGE, "a")]
    assert decoder.finish() == [EioPacket(E.MESSAGE, "")]
    assert decoder.feed(b"2") == []
    assert decoder.finish() == [EioPacket(E.PING)]


def test_error_body_json() -> None:
    # SPEC §2.2 / §4: the HTTP error body, as the JSON codec writes it.
    assert json.dumps({"code": 1, "message": "Session ID unknown"}) == '{"code":1,"message":"Session ID unknown"}'


# --------------------------------------------------------------------------
# Socket.IO (SPEC §4 second table, §3.1-§3.5, §3.10)

B4 = b"\x01\x02\x03\x04"

# (Socket.IO text, attachments, packet)
SIO_EXAMPLES: list[tuple[str, list[bytes], SioPacket]] = [
    ("0", [], SioPacket(S.CONNECT)),
    ('0{"token":"123"}', [], SioPacket(S.CONNECT, data={"token": "123"})),
    ("0/admin,", [], SioPacket(S.CONNECT, "/admin")),
    ('0/admin,{"token":"123"}', [], SioPacket(S.CONNECT, "/admin", {"token": "123"})),
    ('0{"sid":"wZX3oN0bSVIhsaknAAAI"}', [], SioPacket(S.CONNECT, data={"sid": "wZX3oN0bSVIhsaknAAAI"})),
    (
        '0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}',
        [],
        SioPacket(S.CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}),
    ),
    ("1", [], SioPacket(S.DISCONNECT)),
    ("1/admin,", [], SioPacket(S.DISCONNECT, "/admin")),
    ('2["foo"]', [], SioPacket(S.EVENT, data=["foo"])),
    ('2/admin,["bar"]', [], SioPacket(S.EVENT, "/admin", ["bar"])),
    ('212["foo"]', [], SioPacket(S.EVENT, data=["foo"], id=12)),
    ("312[]", [], SioPacket(S.ACK, data=[], id=12)),
    ('3/admin,13["bar"]', [], SioPacket(S.ACK, "/admin", ["bar"], 13)),
    ('4{"message":"Invalid namespace"}', [], SioPacket(S.CONNECT_ERROR, data={"message": "Invalid namespace"})),
    (
        '4/random,{"message":"Invalid namespace"}',
        [],
        SioPacket(S.CONNECT_ERROR, "/random", {"message": "Invalid namespace"}),
    ),
    (
        '4{"message":"not authorized","data":{"reason":"bad token"}}',
        [],
        SioPacket(S.CONNECT_ERROR, data={"message": "not authorized", "data": {"reason": "bad token"}}),
    ),
    ('51-["baz",{"_placeholder":true,"num":0}]', [B4], SioPacket(S.EVENT, data=["baz", B4])),
    (
        '52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        [b"\x01", b"\x02"],
        SioPacket(S.EVENT, "/admin", ["baz", b"\x01", b"\x02"]),
    ),
    ('61-15["bar",{"_placeholder":true,"num":0}]', [B4], SioPacket(S.ACK, data=["bar", B4], id=15)),
    ('61-/admin,1[{"_placeholder":true,"num":0}]', [B4], SioPacket(S.ACK, "/admin", [B4], 1)),
    ('2["hello","a","Q8LC8la"]', [], SioPacket(S.EVENT, data=["hello", "a", "Q8LC8la"])),
    # §3.1, §3.4
    ('2["message-back",1,"2",{"3":[true]}]', [], SioPacket(S.EVENT, data=["message-back", 1, "2", {"3": [True]}])),
    (
        '2456["message-with-ack",1,"2",{"3":[false]}]',
        [],
        SioPacket(S.EVENT, data=["message-with-ack", 1, "2", {"3": [False]}], id=456),
    ),
    ('3456[1,"2",{"3":[false]}]', [], SioPacket(S.ACK, data=[1, "2", {"3": [False]}], id=456)),
    ("3456[]", [], SioPacket(S.ACK, data=[], id=456)),
    ('20["q",1]', [], SioPacket(S.EVENT, data=["q", 1], id=0)),
    ('30["a"]', [], SioPacket(S.ACK, data=["a"], id=0)),
    ('3/admin,0["a"]', [], SioPacket(S.ACK, "/admin", ["a"], 0)),
    ('2["hey","Jude"]', [], SioPacket(S.EVENT, data=["hey", "Jude"])),
    ('2/admin,["hey","Jude"]', [], SioPacket(S.EVENT, "/admin", ["hey", "Jude"])),
    # §3.5
    (
        '52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        [b"\x01\x02\x03", b"\x04\x05\x06"],
        SioPacket(S.EVENT, data=["message", b"\x01\x02\x03", b"\x04\x05\x06"]),
    ),
    (
        '52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        [b"\x01\x02\x03", b"\x04\x05\x06"],
        SioPacket(S.EVENT, data=["message-back", b"\x01\x02\x03", b"\x04\x05\x06"]),
    ),
    (
        '52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        [b"\x01\x02\x03", b"\x04\x05\x06"],
        SioPacket(S.EVENT, data=["message-with-ack", b"\x01\x02\x03", b"\x04\x05\x06"], id=789),
    ),
    (
        '62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        [b"\x01\x02\x03", b"\x04\x05\x06"],
        SioPacket(S.ACK, data=[b"\x01\x02\x03", b"\x04\x05\x06"], id=789),
    ),
    (
        '51-["message-back",{"a":{"_placeholder":true,"num":0}}]',
        [B4],
        SioPacket(S.EVENT, data=["message-back", {"a": B4}]),
    ),
    # §3.10 connection state recovery
    (
        '0{"sid":"qcht7wZDQ-ndeSZrAAAA","pid":"OlW-vXQWJJo1Zo13AAAB"}',
        [],
        SioPacket(S.CONNECT, data={"sid": "qcht7wZDQ-ndeSZrAAAA", "pid": "OlW-vXQWJJo1Zo13AAAB"}),
    ),
    (
        '0{"pid":"OlW-vXQWJJo1Zo13AAAB","offset":"Q8LC8la"}',
        [],
        SioPacket(S.CONNECT, data={"pid": "OlW-vXQWJJo1Zo13AAAB", "offset": "Q8LC8la"}),
    ),
    ('2["missed","while-away","Q8LC8ny"]', [], SioPacket(S.EVENT, data=["missed", "while-away", "Q8LC8ny"])),
    ('20["withack",1]', [], SioPacket(S.EVENT, data=["withack", 1], id=0)),
    # §4 polling session
    ('0{"sid":"GuPnxzS5koAYxKRDAAAA"}', [], SioPacket(S.CONNECT, data={"sid": "GuPnxzS5koAYxKRDAAAA"})),
    ('2["auth",{}]', [], SioPacket(S.EVENT, data=["auth", {}])),
]


def assert_sio_example(text: str, attachments: list[bytes], packet: SioPacket) -> None:
    # Encode: the header, then the attachments in order.
    assert encode_sio(packet) == [text, *attachments]
    # Decode: None until the last attachment, then the packet.
    decoder = SioDecoder()
    results = [decoder.feed(text), *(decoder.feed(attachment) for attachment in attachments)]
    assert results[:-1] == [None] * len(attachments)
    assert results[-1] == packet
    assert not decoder.is_awaiting_attachments
    # On the wire the text is an Engine.IO MESSAGE ("4" prefix).
    assert encode_eio(EioPacket(E.MESSAGE, text)) == "4" + text
    assert decode_eio("4" + text) == EioPacket(E.MESSAGE, text)


@pytest.mark.parametrize(("text", "attachments", "packet"), SIO_EXAMPLES, ids=[t[:24] for t, _, _ in SIO_EXAMPLES])
def test_sio_example(text: str, attachments: list[bytes], packet: SioPacket) -> None:
    assert_sio_example(text, attachments, packet)


FAST_PATH_CASES = [
    (packet.namespace, packet.data)
    for _, attachments, packet in SIO_EXAMPLES
    if packet.type is S.EVENT and packet.id is None and not attachments
] + [("/ñ", ["ünïcode", "é", {"k": "☃"}]), ("/", ["only-name"]), ("/a/b", [1.5, None, True])]


@pytest.mark.parametrize(("namespace", "data"), FAST_PATH_CASES)
def test_encode_event_text_matches_encode_sio(namespace: str, data: list[Any]) -> None:
    text = encode_event_text(namespace, data[0], data[1:])
    assert text == "4" + str(encode_sio(SioPacket(S.EVENT, namespace, data))[0])
    assert SioDecoder().feed(decode_eio(text).data) == SioPacket(S.EVENT, namespace, data)


def test_encode_event_text_examples() -> None:
    assert encode_event_text("/", "hey", ["Jude"]) == '42["hey","Jude"]'
    assert encode_event_text("/admin", "hey", ("Jude",)) == '42/admin,["hey","Jude"]'
    assert encode_event_text("/", "message-back", [1, "2", {"3": [True]}]) == '42["message-back",1,"2",{"3":[true]}]'


# Decode-only examples: the namespace may end at the end of the string (SPEC §3.1).
DECODE_ONLY = [
    ("0/custom", SioPacket(S.CONNECT, "/custom")),
    ("1/custom", SioPacket(S.DISCONNECT, "/custom")),
    ('0/custom,{"token":"1"}', SioPacket(S.CONNECT, "/custom", {"token": "1"})),
    ("0/,", SioPacket(S.CONNECT)),
    ('2/,["x"]', SioPacket(S.EVENT, data=["x"])),
    ('4"Unable to connect"', SioPacket(S.CONNECT_ERROR, data="Unable to connect")),
    ("4", SioPacket(S.CONNECT_ERROR)),
    ('2[1,"x"]', SioPacket(S.EVENT, data=[1, "x"])),  # a number is tolerated as event name
    ("2[1.5]", SioPacket(S.EVENT, data=[1.5])),
    ('2 ["x"] ', SioPacket(S.EVENT, data=["x"])),  # JSON whitespace
    ('50-["x"]', SioPacket(S.EVENT, data=["x"])),  # binary framing, nothing attached
    ('60-7["x"]', SioPacket(S.ACK, data=["x"], id=7)),
    ('500-["x"]', SioPacket(S.EVENT, data=["x"])),  # leading zero in the count
    (
        # A placeholder in a non-binary packet is ordinary data.
        '2["x",{"_placeholder":true,"num":0}]',
        SioPacket(S.EVENT, data=["x", {"_placeholder": True, "num": 0}]),
    ),
    ('2["x",{"_placeholder":1,"num":0}]', SioPacket(S.EVENT, data=["x", {"_placeholder": 1, "num": 0}])),
]


@pytest.mark.parametrize(("text", "packet"), DECODE_ONLY, ids=[t for t, _ in DECODE_ONLY])
def test_sio_decode_only(text: str, packet: SioPacket) -> None:
    assert SioDecoder().feed(text) == packet


def test_binary_event_placeholder_also_as_nested_and_repeated() -> None:
    decoder = SioDecoder()
    text = '52-["x",[{"k":{"_placeholder":true,"num":1}}],{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert decoder.feed(text) is None
    assert decoder.is_awaiting_attachments
    assert decoder.feed(b"a") is None
    last = decoder.feed(bytearray(b"b"))  # type: ignore[arg-type]  # bytearray is tolerated at runtime
    assert last == SioPacket(S.EVENT, data=["x", [{"k": b"b"}], b"a", b"b"])


def test_encode_normalises_binary_types() -> None:
    # BINARY_EVENT without binary goes out as a plain EVENT; EVENT with
    # bytearray/memoryview goes out as BINARY_EVENT with bytes attachments.
    assert encode_sio(SioPacket(S.BINARY_EVENT, data=["x"])) == ['2["x"]']
    assert encode_sio(SioPacket(S.BINARY_ACK, data=[], id=3)) == ["33[]"]
    out = encode_sio(SioPacket(S.EVENT, data=["x", bytearray(b"1"), (memoryview(b"2"),)]))
    assert out == ['52-["x",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}]]', b"1", b"2"]
    assert all(type(part) is bytes for part in out[1:])


def test_encode_does_not_mutate_data() -> None:
    data = ["x", {"a": b"1", "b": [b"2", "keep"]}, "tail"]
    snapshot = ["x", {"a": b"1", "b": [b"2", "keep"]}, "tail"]
    encode_sio(SioPacket(S.EVENT, data=data))
    assert data == snapshot


def test_json_is_compact_js_style() -> None:
    # SPEC §3.1: no spaces, key order kept, non-ASCII as raw UTF-8.
    value = {"b": 1, "a": ["é", "☃", 1.5, None, True]}
    assert json.dumps(value) == '{"b":1,"a":["é","☃",1.5,null,true]}'
    assert json.dumps_bytes(value) == '{"b":1,"a":["é","☃",1.5,null,true]}'.encode()
    # The polling separator can never appear raw in JSON output.
    assert json.dumps("a\x1eb") == '"a\\u001eb"'
    assert json.loads(b'{"b":1,"a":[]}') == {"b": 1, "a": []}


def test_payload_decoder_accepts_buffer_types() -> None:
    decoder = PayloadDecoder()
    source = bytearray(b"4a\x1e4b")
    assert decoder.feed(memoryview(source)[:3]) == [EioPacket(E.MESSAGE, "a")]  # type: ignore[arg-type]
    assert decoder.feed(source[3:]) == []  # type: ignore[arg-type]
    source[4] = ord("x")  # the decoder kept its own copy
    assert decoder.finish() == [EioPacket(E.MESSAGE, "b")]
