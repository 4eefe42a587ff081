"""engineio_min.transport.wsreader: client frames in any cut -> messages and control events."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from engineio_min import testing
from engineio_min.transport.wsreader import CloseReceived, FrameReader, PingReceived, ReaderEvent, Violation

LIMIT = 1000


def client(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    """A frame as a client sends it (masked), serialized by websockets."""
    return Frame(opcode, data, fin).serialize(mask=True)


def feed_all(chunks: list[bytes], limit: int = LIMIT) -> list[ReaderEvent]:
    reader = FrameReader(limit)
    events: list[ReaderEvent] = []
    for chunk in chunks:
        events += reader.feed(chunk)
    return events


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(stream), *(p % (len(stream) + 1) for p in points)})
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


# Engine.IO messages as clients send them, and longer text/bytes (several frame-length forms).
message = testing.eio_ws_messages() | st.text(max_size=300) | st.binary(max_size=300)


@given(st.lists(st.tuples(message, st.integers(1, 4)), max_size=8), st.lists(st.integers(0, 10_000), max_size=30))
def test_messages_survive_any_cut_and_fragmenting(messages: list[tuple[str | bytes, int]], points: list[int]) -> None:
    stream = b""
    expected: list[ReaderEvent] = []
    for i, (msg, parts) in enumerate(messages):
        payload = msg.encode() if isinstance(msg, str) else msg
        opcode = Opcode.TEXT if isinstance(msg, str) else Opcode.BINARY
        step = max(len(payload) // parts, 1)
        pieces = [payload[j : j + step] for j in range(0, len(payload), step)] or [b""]
        for k, piece in enumerate(pieces):
            stream += client(opcode if k == 0 else Opcode.CONT, piece, fin=k == len(pieces) - 1)
            if k == 0 and len(pieces) > 1:  # a ping may come between fragments
                stream += client(Opcode.PING, str(i).encode())
                expected.append(PingReceived(str(i).encode()))
        expected.append(msg)
    assert feed_all(cut(stream, points)) == expected


def test_unmasked_frame_is_a_protocol_error() -> None:
    [event] = feed_all([Frame(Opcode.TEXT, b"4hello").serialize(mask=False)])
    assert isinstance(event, Violation) and event.code == 1002


def test_reserved_bits_and_opcodes_are_protocol_errors() -> None:
    for first_byte in (0xC1, 0x83):  # RSV1 set; opcode 3 (reserved)
        frame = bytearray(client(Opcode.TEXT, b"x"))
        frame[0] = first_byte
        [event] = feed_all([bytes(frame)])
        assert isinstance(event, Violation) and event.code == 1002, event


def test_too_big_frame_is_refused_from_its_header() -> None:
    reader = FrameReader(LIMIT)
    header = client(Opcode.TEXT, b"a" * (LIMIT + 1))[:8]  # 2 + 2 (length) + 4 (mask)
    [event] = reader.feed(header)
    assert event == Violation(1009, "message too big")
    assert reader.feed(b"more") == []  # nothing is read after a violation


def test_message_at_the_limit_passes_and_fragments_over_it_do_not() -> None:
    assert feed_all([client(Opcode.BINARY, b"a" * LIMIT)]) == [b"a" * LIMIT]
    half = b"a" * (LIMIT // 2)
    events = feed_all([client(Opcode.BINARY, half, fin=False), client(Opcode.CONT, half, fin=False),
                       client(Opcode.CONT, b"b", fin=True)])  # fmt: skip
    assert events == [Violation(1009, "message too big")]


def test_invalid_utf8_text_is_1007() -> None:
    assert feed_all([client(Opcode.TEXT, b"4\xff\xfe")]) == [Violation(1007, "invalid UTF-8")]


def test_close_frames() -> None:
    assert feed_all([client(Opcode.CLOSE, (1000).to_bytes(2, "big") + b"bye")]) == [CloseReceived(1000, "bye")]
    assert feed_all([client(Opcode.CLOSE, b"")]) == [CloseReceived(None, "")]
    [bad_code] = feed_all([client(Opcode.CLOSE, (999).to_bytes(2, "big"))])
    assert isinstance(bad_code, Violation) and bad_code.code == 1002
    bad_reason = feed_all([client(Opcode.CLOSE, (1000).to_bytes(2, "big") + b"\xff")])
    assert bad_reason == [Violation(1007, "invalid UTF-8 in close reason")]
    reader = FrameReader(LIMIT)
    assert reader.feed(client(Opcode.CLOSE, b"") + client(Opcode.TEXT, b"after")) == [CloseReceived(None, "")]


def test_continuation_rules() -> None:
    assert feed_all([client(Opcode.CONT, b"x")]) == [Violation(1002, "unexpected continuation frame")]
    events = feed_all([client(Opcode.TEXT, b"a", fin=False), client(Opcode.TEXT, b"b")])
    assert events == [Violation(1002, "expected a continuation frame")]


def test_unsolicited_pong_is_ignored() -> None:
    assert feed_all([client(Opcode.PONG, b"x"), client(Opcode.TEXT, b"3")]) == ["3"]


def test_a_big_frame_in_small_chunks() -> None:
    frame = client(Opcode.BINARY, bytes(range(256)) * 3)
    chunks = [frame[i : i + 7] for i in range(0, len(frame), 7)]
    assert feed_all(chunks) == [bytes(range(256)) * 3]


def test_our_close_frame_keeps_a_long_reason_valid_utf8() -> None:
    from websockets.frames import Close

    from engineio_min.transport.websocket import close_frame

    frame = close_frame(1008, "é" * 100)  # 200 bytes of reason: cut to fit 125
    payload = frame[2:]
    assert frame[0] == 0x88 and frame[1] == len(payload) <= 125
    assert Close.parse(payload) == Close(1008, "é" * 61)


class _ParserOnly(FrameReader):
    """The reader without its fast path for single text frames: every frame through Frame.parse."""

    __slots__ = ()

    def _whole_text_frame(self, data: bytes) -> str | None:
        return None


def _mutated(frame: bytes, how: int, value: int) -> bytes:
    if how == 0 or not frame:
        return frame
    data = bytearray(frame)
    if how == 1:
        data[0] = value  # FIN, reserved bits, opcode
    elif how == 2:
        data[1] = value  # mask bit and length
    elif how == 3:
        data[value % len(data)] ^= 0xFF  # anywhere, the masked payload included
    elif how == 4:
        return bytes(data[: value % len(data)])  # cut short
    elif how == 5:
        return bytes(data) + bytes([value])  # one byte too many
    elif how == 6:
        data[1] ^= 0x80  # the mask bit cleared, the mask key left in place
    return bytes(data)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.text(max_size=200), st.binary(max_size=200), st.just("é" * 70)),
            st.integers(0, 6),
            st.integers(0, 255),
            st.booleans(),
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([60, 125, 126, LIMIT]),
)
def test_fast_path_reads_like_the_parser(frames: list[tuple[str | bytes, int, int, bool]], limit: int) -> None:
    # Whatever the reads hold (one valid text frame, or anything else), the events and the
    # reader's state match a reader that parses every frame with Frame.parse.
    fast, parser = FrameReader(limit), _ParserOnly(limit)
    for payload, how, value, fin in frames:
        opcode = Opcode.TEXT if isinstance(payload, str) else Opcode.BINARY
        raw = payload.encode() if isinstance(payload, str) else payload
        data = _mutated(client(opcode, raw, fin), how, value)
        assert fast.feed(data) == parser.feed(data)
        assert (fast.done, fast._pending, fast._fragments) == (parser.done, parser._pending, parser._fragments)


def test_fast_path_takes_a_whole_text_frame() -> None:
    # Not vacuous: a single text frame, short or with a 16-bit length, is decoded by the fast path.
    reader = FrameReader(LIMIT)
    for text in ("40", "x" * 125, "é" * 300):
        assert reader._whole_text_frame(client(Opcode.TEXT, text.encode())) == text
    assert reader._whole_text_frame(client(Opcode.TEXT, b"x" * (LIMIT + 1))) is None
    assert reader._whole_text_frame(_mutated(client(Opcode.TEXT, b"40"), 6, 0)) is None  # mask bit off
