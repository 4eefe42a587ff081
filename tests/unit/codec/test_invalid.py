"""Invalid input: every case of SPEC §3.2 and the Engine.IO parse errors of §2.4/§2.5.

Each must raise DecodeError (or PayloadTooLarge for the packet limit), and
nothing else.
"""

from __future__ import annotations

import pytest

from engineio_min.codec import json
from engineio_min.codec.eio import EioPacket, EioType, decode_eio
from engineio_min.codec.payload import PayloadDecoder, decode_payload
from engineio_min.codec.sio import MAX_ATTACHMENTS, RESERVED_EVENTS, SioDecoder, SioPacket, SioType
from engineio_min.errors import DecodeError, PayloadTooLarge

PH0 = '{"_placeholder":true,"num":0}'
PH1 = '{"_placeholder":true,"num":1}'

# --------------------------------------------------------------------------
# Engine.IO packets


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty
        "abc",  # [suite] invalid packet
        "7",
        "9x",
        "x4",
        " 4",
        "\x1e",
        "٤hello",  # a non-ASCII digit is not a type
        "b!!!!",  # not base64
        "bAQIDBA",  # missing padding
        "bAQIDBA=",  # wrong padding
        "bAQIDBA==x",  # data after the padding
        "b=AQIDBA=",
        "bAQID BA==",
        "béé=",  # non-ASCII
    ],
)
def test_decode_eio_invalid(text: str) -> None:
    with pytest.raises(DecodeError):
        decode_eio(text)


# --------------------------------------------------------------------------
# Polling payloads


@pytest.mark.parametrize(
    "body",
    [
        "",
        b"",
        "4a\x1e",  # trailing separator = empty last record
        "\x1e4a",
        "4a\x1e\x1e4b",
        "4a\x1eabc",
        "4a\x1eb!!",
        b"4\xff",  # invalid UTF-8
        b"4\xc3",  # truncated UTF-8 sequence
        b"4\xed\xa0\x80",  # UTF-8-encoded surrogate
        b"4a\x1e4\xc3\x1e4b",
    ],
)
def test_decode_payload_invalid(body: str | bytes) -> None:
    with pytest.raises(DecodeError):
        decode_payload(body)
    raw = body.encode() if isinstance(body, str) else body
    decoder = PayloadDecoder()
    with pytest.raises(DecodeError):
        decoder.feed(raw)
        decoder.finish()


def test_decode_payload_packet_limit() -> None:
    assert len(decode_payload("2\x1e2\x1e2", max_packets=3)) == 3
    with pytest.raises(PayloadTooLarge):
        decode_payload("2\x1e2\x1e2\x1e2", max_packets=3)
    with pytest.raises(PayloadTooLarge):
        decode_payload(b"2\x1e2\x1e2\x1e2", max_packets=3)
    # The default limit: 10 000 records.
    assert len(decode_payload("\x1e".join(["6"] * 10_000))) == 10_000
    with pytest.raises(PayloadTooLarge):
        decode_payload("\x1e".join(["6"] * 10_001))


def test_decode_payload_error_order() -> None:
    # A bad record before the limit is reported as a DecodeError ...
    with pytest.raises(DecodeError):
        decode_payload("2\x1ex\x1e2\x1e2", max_packets=2)
    # ... one after it is never looked at: the limit comes first.
    with pytest.raises(PayloadTooLarge):
        decode_payload("2\x1e2\x1ex\x1e2", max_packets=2)
    with pytest.raises(PayloadTooLarge):
        decode_payload(b"2\x1e2\x1e\xff", max_packets=2)


def test_payload_decoder_packet_limit() -> None:
    decoder = PayloadDecoder(max_packets=2)
    assert decoder.feed(b"2\x1e") == [EioPacket(EioType.PING)]
    with pytest.raises(PayloadTooLarge):
        decoder.feed(b"2\x1e")


@pytest.mark.parametrize("max_packets", [0, -1])
def test_max_packets_must_be_positive(max_packets: int) -> None:
    with pytest.raises(ValueError):
        decode_payload("2", max_packets=max_packets)
    with pytest.raises(ValueError):
        PayloadDecoder(max_packets=max_packets)


# --------------------------------------------------------------------------
# JSON


@pytest.mark.parametrize(
    "data", ["", "[", '["x"', "[x]", "NaN", "[1,]", '"\x01"', "1e999", "1" * 5000, "[" * 100_000, b"\xff"]
)
def test_loads_invalid(data: str | bytes) -> None:
    with pytest.raises(DecodeError):
        json.loads(data)


# --------------------------------------------------------------------------
# Socket.IO text packets (SPEC §3.2)

INVALID_SIO_TEXT = [
    # The first character is not 0-6 ("4abc" -> SIO text "abc") [suite]; an empty EIO message "4".
    "abc",
    "",
    "7",
    "9[]",
    " 2[]",
    "٢[]",
    # EVENT payload not a non-empty array, bad event name [suite: 42{}]
    "2{}",
    "2[]",
    "2",
    "2null",
    '2"x"',
    "212",
    "2[true]",
    "2[false]",
    "2[null]",
    "2[{}]",
    '2[["x"]]',
    '2/admin,{"a":1}',
    *(f'2["{name}"]' for name in sorted(RESERVED_EVENTS)),
    '2/admin,["disconnect"]',
    # Garbage at the ack id position [suite: 42abc[...]]
    '2abc["x"]',
    '212abc["x"]',
    '2/admin,abc["x"]',
    '2-1["x"]',
    '2 1["x"]',
    '2٣["x"]',
    "2" + "9" * 17 + '["x"]',  # longer than any JS-safe integer
    '29007199254740992["x"]',  # 2**53: beyond Number.MAX_SAFE_INTEGER
    "2" + "1" * 100_000 + '["x"]',
    # JSON does not parse
    '2["x"',
    "2[x]",
    '2["x"]]',
    "2[1,]",
    "2[NaN]",
    "2" + "[" * 100_000,
    # CONNECT payload not an object; DISCONNECT with a payload
    "0[1]",
    '0"x"',
    "0null",
    "01.5",
    "0/admin,[1]",
    '1{"a":1}',
    "1/admin,[]",
    "1null",
    # ACK payload not an array, or no id
    '31{"a":1}',
    "31",
    "31null",
    "3[]",
    '3/admin,["x"]',
    # CONNECT_ERROR payload neither object nor string
    "4[1]",
    "4true",
    "4null",
    # Binary framing: malformed attachment count
    '5-["x"]',
    '5["x"]',
    '5a-["x"]',
    '51["x"]',
    '5 1-["x"]',
    '5١-["x"]',
    '5+1-["x"]',
    '5-1-["x"]',
    "5",
    "51",
    "6",
    '5000000001-["x"]',
    # ... more than MAX_ATTACHMENTS
    f'5{MAX_ATTACHMENTS + 1}-["x"]',
    '599-["x"]',
    # binary packets obey the payload rules too
    "51-{}",
    f"51-[{PH0}]",  # event name is a placeholder
    '51-["disconnect"]',
    f"61-[{PH0}]",  # BINARY_ACK without id
    "61-1{}",
    # BINARY_EVENT with no attachments, but a placeholder
    f'50-["x",{PH0}]',
]


@pytest.mark.parametrize("text", INVALID_SIO_TEXT, ids=[t[:30] for t in INVALID_SIO_TEXT])
def test_sio_invalid_text(text: str) -> None:
    with pytest.raises(DecodeError):
        SioDecoder().feed(text)


def test_max_attachments_accepted() -> None:
    placeholders = ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(MAX_ATTACHMENTS))
    decoder = SioDecoder()
    assert decoder.feed(f'5{MAX_ATTACHMENTS}-["x",{placeholders}]') is None
    for i in range(MAX_ATTACHMENTS - 1):
        assert decoder.feed(bytes([i])) is None
    packet = decoder.feed(b"last")
    assert packet is not None
    assert packet.data[-1] == b"last"


# Binary sequences: (header, attachments) that must fail at some feed.
INVALID_BINARY_SEQUENCES: list[tuple[str, list[bytes]]] = [
    # placeholder num out of range / not an int / missing
    (f'51-["x",{PH1}]', [b"a"]),
    ('51-["x",{"_placeholder":true,"num":-1}]', [b"a"]),
    ('51-["x",{"_placeholder":true,"num":"0"}]', [b"a"]),
    ('51-["x",{"_placeholder":true,"num":0.0}]', [b"a"]),
    ('51-["x",{"_placeholder":true,"num":true}]', [b"a"]),
    ('51-["x",{"_placeholder":true,"num":null}]', [b"a"]),
    ('51-["x",{"_placeholder":true}]', [b"a"]),
    ('51-["x",{"a":[{"_placeholder":true,"num":5}]}]', [b"a"]),
    # an attachment no placeholder refers to
    (f'52-["x",{PH0}]', [b"a", b"b"]),
    (f'52-["x",{PH1},{PH1}]', [b"a", b"b"]),
    ('51-["x"]', [b"a"]),
    (f"61-1[{PH1}]", [b"a"]),
]


@pytest.mark.parametrize(("header", "attachments"), INVALID_BINARY_SEQUENCES)
def test_sio_invalid_placeholders(header: str, attachments: list[bytes]) -> None:
    decoder = SioDecoder()
    assert decoder.feed(header) is None
    for attachment in attachments[:-1]:
        assert decoder.feed(attachment) is None
    with pytest.raises(DecodeError):
        decoder.feed(attachments[-1])


def test_sio_text_while_attachments_pending() -> None:
    decoder = SioDecoder()
    assert decoder.feed(f'52-["x",{PH0},{PH1}]') is None
    assert decoder.feed(b"a") is None
    with pytest.raises(DecodeError):
        decoder.feed('2["y"]')


def test_sio_binary_without_pending_header() -> None:
    with pytest.raises(DecodeError):
        SioDecoder().feed(b"\x01\x02\x03")
    decoder = SioDecoder()
    assert decoder.feed(f'51-["x",{PH0}]') is None
    assert decoder.feed(b"a") == SioPacket(SioType.EVENT, data=["x", b"a"])
    with pytest.raises(DecodeError):
        decoder.feed(b"one too many")
