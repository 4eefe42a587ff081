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

from engineio_min.codec import json
from engineio_min.codec.binary import deconstruct, has_binary
from engineio_min.codec.eio import EioPacket, EioType, decode_eio, encode_eio, encode_eio_polling
from engineio_min.codec.payload import PayloadDecoder, decode_payload, encode_payload
from engineio_min.codec.sio import (
    MAX_ATTACHMENTS,
    RESERVED_EVENTS,
    SioDecoder,
    SioPacket,
    SioType,
    encode_event_text,
    encode_sio,
)
from engineio_min.errors import DecodeError, PayloadTooLarge

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------
# Strategies

eio_types = st.sampled_from(EioType)
text_packets = st.builds(EioPacket, eio_types, st.text(max_size=50))
binary_packets = st.builds(EioPacket, st.just(EioType.MESSAGE), st.binary(max_size=50))
eio_packets = text_packets | binary_packets
# Polling records must not contain the separator (SPEC §2.5).
record_packets = (
    st.builds(EioPacket, eio_types, st.text(max_size=30).filter(lambda s: "\x1e" not in s)) | binary_packets
)

# JSON values that survive msgspec both ways: ints within 64 bits (bigger
# ones decode as "out of range"), finite floats, and no "_placeholder" key
# (an object with "_placeholder": true IS a placeholder, in any implementation).
json_keys = st.text(max_size=8).filter(lambda k: k != "_placeholder")
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4),
    max_leaves=12,
)
binary_leaves = st.binary(max_size=16) | st.binary(max_size=8).map(bytearray)
values_with_binary = st.recursive(
    json_scalars | binary_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4),
    max_leaves=12,
)
namespaces = st.just("/") | st.text(max_size=10).filter(lambda s: "," not in s).map(lambda s: "/" + s)
ack_ids = st.integers(min_value=0, max_value=2**53 - 1)
event_names = st.text(max_size=12).filter(lambda s: s not in RESERVED_EVENTS) | st.integers(0, 1000)


def _binary_count(value: Any) -> int:
    if isinstance(value, bytes | bytearray):
        return 1
    if isinstance(value, list):
        return sum(_binary_count(item) for item in value)
    if isinstance(value, dict):
        return sum(_binary_count(item) for item in value.values())
    return 0


event_args = st.lists(values_with_binary, max_size=5).filter(lambda args: _binary_count(args) <= MAX_ATTACHMENTS)

sio_packets = st.one_of(
    st.builds(
        SioPacket,
        st.just(SioType.CONNECT),
        namespaces,
        st.none() | st.dictionaries(json_keys, json_values, max_size=4),
    ),
    st.builds(SioPacket, st.just(SioType.DISCONNECT), namespaces),
    st.builds(
        lambda nsp, name, args, ack_id: SioPacket(SioType.EVENT, nsp, [name, *args], ack_id),
        namespaces,
        event_names,
        event_args,
        st.none() | ack_ids,
    ),
    st.builds(SioPacket, st.just(SioType.ACK), namespaces, event_args, ack_ids),
    st.builds(
        SioPacket,
        st.just(SioType.CONNECT_ERROR),
        namespaces,
        st.none() | st.text(max_size=10) | st.dictionaries(json_keys, json_values, max_size=4),
    ),
)


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
@given(sio_packets)
def test_sio_round_trip(packet: SioPacket) -> None:
    parts = encode_sio(packet)
    assert isinstance(parts[0], str)
    assert all(type(part) is bytes for part in parts[1:])
    assert len(parts) - 1 <= MAX_ATTACHMENTS
    # Through the Engine.IO layer too, over both transports.
    ws_frames = [encode_eio(EioPacket(EioType.MESSAGE, part)) for part in parts]
    decoded = [decode_eio(frame).data for frame in ws_frames]
    assert _decode_all(SioDecoder(), decoded) == packet
    if "\x1e" in packet.namespace:
        # JSON escapes control characters, but the namespace is written raw:
        # one holding the polling separator can only travel over WebSocket.
        return
    body = encode_payload(EioPacket(EioType.MESSAGE, part) for part in parts)
    assert _decode_all(SioDecoder(), [p.data for p in decode_payload(body)]) == packet


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
    assert found == (_binary_count(list(value) if isinstance(value, tuple) else value) > 0)


@FAST
@given(json_values)
def test_json_round_trip(value: Any) -> None:
    text = json.dumps(value)
    assert json.loads(text) == value
    assert json.loads(json.dumps_bytes(value)) == value
    assert json.dumps_bytes(value) == text.encode()


float_free_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4),
    max_leaves=12,
)


@FAST
@given(float_free_json)
def test_json_is_javascript_style(value: Any) -> None:
    # SPEC §3.1: the output of json.dumps(x, separators=(",", ":"), ensure_ascii=False)
    # (floats left out: Python writes 1e+16 where JavaScript writes 1e16).
    assert json.dumps(value) == stdlib_json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------
# Robustness: decode or raise DecodeError / PayloadTooLarge, nothing else

# Characters that make up real packets, so the fuzzer gets past the first byte.
WIRE_ALPHABET = '0123456b789-/,[]{}":_placeholdernumtrue \x1e=ÿé'
wire_text = st.text(alphabet=WIRE_ALPHABET, max_size=40) | st.text(max_size=40)
wire_bytes = st.binary(max_size=40) | wire_text.map(lambda s: s.encode())


def _mutate(data: st.DataObject, text: str) -> str:
    """Insert, delete or replace one character of ``text``."""
    pos = data.draw(st.integers(0, len(text)))
    op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
    char = data.draw(st.sampled_from(WIRE_ALPHABET))
    if op == "insert":
        return text[:pos] + char + text[pos:]
    if op == "delete":
        return text[:pos] + text[pos + 1 :]
    return text[:pos] + char + text[pos + 1 :]


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
@given(st.data(), sio_packets)
def test_sio_decoder_mutated_packets(data: st.DataObject, packet: SioPacket) -> None:
    parts = encode_sio(packet)
    header = parts[0]
    assert isinstance(header, str)
    parts[0] = _mutate(data, header)
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
