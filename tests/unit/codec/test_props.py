"""Hypothesis properties of the codec (STYLE §7).

* round trip: decode(encode(p)) == p for Engine.IO packets, payloads and
  Socket.IO packets (nested binary, unicode namespaces, ack ids);
* robustness: any input decodes or raises DecodeError/PayloadTooLarge;
* chunking: a payload fed whole or split anywhere gives the same packets.
"""

from __future__ import annotations

import contextlib
import itertools
import json as stdlib_json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engineio_min import testing
from engineio_min.codec import json
from engineio_min.codec.binary import deconstruct, has_binary
from engineio_min.codec.eio import EioPacket, EioType, decode_eio, encode_eio, encode_eio_polling
from engineio_min.codec.payload import PayloadDecoder, decode_payload, encode_payload
from engineio_min.codec.sio import MAX_ATTACHMENTS, SioDecoder, SioPacket, SioType, encode_event_text, encode_sio
from engineio_min.errors import DecodeError, PayloadTooLarge

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------
# Strategies: the public ones (engineio_min.testing), so that users fuzz with what we test with.

eio_packets = testing.eio_packets()
record_packets = testing.eio_packets(polling_safe=True)
json_values = testing.json_values()
values_with_binary = testing.values_with_binary()
namespaces = testing.namespaces()
sio_packets = testing.sio_packets()


def _decode_all(decoder: SioDecoder, parts: list[str | bytes]) -> SioPacket | None:
    results = [decoder.feed(part) for part in parts]
    # Nothing comes out before the last attachment.
    assert results[:-1] == [None] * (len(parts) - 1)
    return results[-1]


# --------------------------------------------------------------------------
# Round trips


@FAST
@given(eio_packets)
def test_eio_round_trip(packet: EioPacket) -> None:
    assert decode_eio(encode_eio(packet)) == packet
    assert decode_eio(encode_eio_polling(packet)) == packet


@FAST
@given(st.lists(record_packets, min_size=1, max_size=20))
def test_payload_round_trip(packets: list[EioPacket]) -> None:
    body = encode_payload(packets)
    assert decode_payload(body) == packets
    assert decode_payload(body.encode()) == packets
    assert encode_payload(decode_payload(body)) == body


@FAST
@given(testing.encoded_sio_packets())
def test_sio_round_trip(wire: testing.SioWire) -> None:
    packet, parts = wire.packet, list(wire.parts)
    assert parts == encode_sio(packet)
    assert isinstance(parts[0], str)
    assert all(type(part) is bytes for part in parts[1:])
    assert len(parts) - 1 <= MAX_ATTACHMENTS
    # Through the Engine.IO layer too, over both transports.
    decoded = [decode_eio(frame).data for frame in wire.websocket]
    assert _decode_all(SioDecoder(), decoded) == packet
    if wire.polling is None:
        # JSON escapes control characters, but the namespace is written raw:
        # one holding the polling separator can only travel over WebSocket.
        assert "\x1e" in packet.namespace
        return
    assert _decode_all(SioDecoder(), [p.data for p in decode_payload(wire.polling)]) == packet


@FAST
@given(st.lists(sio_packets, min_size=1, max_size=5))
def test_sio_decoder_stream(packets: list[SioPacket]) -> None:
    # One decoder for a whole session: packets come out in order.
    decoder = SioDecoder()
    out = [result for p in packets for part in encode_sio(p) if (result := decoder.feed(part)) is not None]
    assert out == packets


@FAST
@given(namespaces, st.text(max_size=12), st.lists(json_values, max_size=5))
def test_encode_event_text_equals_encode_sio(namespace: str, event: str, args: list[Any]) -> None:
    text = encode_event_text(namespace, event, args)
    assert text == "4" + str(encode_sio(SioPacket(SioType.EVENT, namespace, [event, *args]))[0])


@FAST
@given(values_with_binary | st.lists(values_with_binary, max_size=3).map(tuple))
def test_has_binary_agrees_with_deconstruct(value: Any) -> None:
    # Emitters pick the text fast path on has_binary; deconstruct is what the binary path sends.
    found = has_binary(value)
    assert found == bool(deconstruct(value)[1])
    assert found == (testing.binary_count(list(value) if isinstance(value, tuple) else value) > 0)


@FAST
@given(json_values)
def test_json_round_trip(value: Any) -> None:
    text = json.dumps(value)
    assert json.loads(text) == value
    assert json.loads(json.dumps_bytes(value)) == value
    assert json.dumps_bytes(value) == text.encode()


# Floats left out: Python writes 1e+16 where JavaScript writes 1e16.
float_free_json = testing.json_values(floats=False)


@FAST
@given(float_free_json)
def test_json_is_javascript_style(value: Any) -> None:
    # SPEC §3.1: the output of json.dumps(x, separators=(",", ":"), ensure_ascii=False)
    # (floats left out: Python writes 1e+16 where JavaScript writes 1e16).
    assert json.dumps(value) == stdlib_json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------
# Robustness: decode or raise DecodeError / PayloadTooLarge, nothing else

wire_text = testing.wire_text()
wire_bytes = testing.wire_bytes()


@FUZZ
@given(wire_text | wire_bytes)
def test_decode_eio_never_crashes(data: str | bytes) -> None:
    try:
        packet = decode_eio(data)
    except DecodeError:
        return
    assert isinstance(packet.type, EioType)


@FUZZ
@given(wire_text | wire_bytes, st.integers(1, 5))
def test_decode_payload_never_crashes(body: str | bytes, max_packets: int) -> None:
    with contextlib.suppress(DecodeError, PayloadTooLarge):
        decode_payload(body, max_packets)


@FUZZ
@given(st.lists(wire_text | wire_bytes, max_size=6))
def test_sio_decoder_never_crashes(parts: list[str | bytes]) -> None:
    decoder = SioDecoder()
    for part in parts:
        try:
            decoder.feed(part)
        except DecodeError:
            return


@FUZZ
@given(st.data(), testing.encoded_sio_packets())
def test_sio_decoder_mutated_packets(data: st.DataObject, wire: testing.SioWire) -> None:
    parts = list(wire.parts)
    parts[0] = data.draw(testing.mutated(st.just(str(parts[0]))))
    decoder = SioDecoder()
    try:
        for part in parts:
            result = decoder.feed(part)
    except DecodeError:
        return
    if result is not None:
        # Whatever came out is itself encodable and decodes the same way.
        assert _decode_all(SioDecoder(), encode_sio(result)) == result


# --------------------------------------------------------------------------
# Chunking: whole body == any split


def _outcome_whole(body: bytes, max_packets: int) -> list[EioPacket] | type[Exception]:
    try:
        return decode_payload(body, max_packets)
    except (DecodeError, PayloadTooLarge) as exc:
        return type(exc)


def _outcome_chunked(chunks: list[bytes], max_packets: int) -> list[EioPacket] | type[Exception]:
    decoder = PayloadDecoder(max_packets)
    packets: list[EioPacket] = []
    try:
        for chunk in chunks:
            packets.extend(decoder.feed(chunk))
        packets.extend(decoder.finish())
    except (DecodeError, PayloadTooLarge) as exc:
        return type(exc)
    return packets


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    return [body[a:b] for a, b in itertools.pairwise(points)] or [b""]


valid_bodies = st.lists(record_packets, min_size=1, max_size=8).map(lambda ps: encode_payload(ps).encode())
any_bodies = valid_bodies | wire_bytes | st.lists(wire_bytes, max_size=4).map(b"\x1e".join)


@FUZZ
@given(any_bodies, st.lists(st.integers(0, 10_000), max_size=8), st.integers(1, 10))
def test_payload_split_anywhere(body: bytes, cuts: list[int], max_packets: int) -> None:
    whole = _outcome_whole(body, max_packets)
    assert _outcome_chunked(_split(body, cuts), max_packets) == whole
    # h11-style extreme: one byte at a time (chunks split UTF-8 sequences).
    assert _outcome_chunked([body[i : i + 1] for i in range(len(body))], max_packets) == whole
    # Text and bytes bodies agree when the bytes are valid UTF-8.
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return
    try:
        assert decode_payload(text, max_packets) == whole
    except (DecodeError, PayloadTooLarge) as exc:
        assert type(exc) is whole


@FAST
@given(st.lists(record_packets, min_size=1, max_size=8), st.lists(st.integers(0, 10_000), max_size=8))
def test_payload_split_valid(packets: list[EioPacket], cuts: list[int]) -> None:
    body = encode_payload(packets).encode()
    assert _outcome_chunked(_split(body, cuts), 10_000) == packets
