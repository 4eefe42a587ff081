"""Hypothesis strategies for Engine.IO 4 / Socket.IO 5 traffic, for fuzzing.

Layer: test support. Imports hypothesis at import time, so it is only for code that fuzzes
(``pip install realcast[testing]``); nothing else in engineio_min imports it, and the codec
never does. Everything here is built on the codec, so what it calls "valid" is exactly what
``engineio_min.codec`` encodes and decodes; the project's own property tests use it too.

Three kinds of strategies (see docs/design/server-api.md, "Fuzzing", for examples):

* values: ``json_values``, ``values_with_binary``, ``namespaces``, ``ack_ids``,
  ``event_names``, ``event_args``;
* valid packets: ``eio_packets``, ``polling_payloads``, ``sio_packets``, and their wire forms
  (``encoded_sio_packets`` -> :class:`SioWire`; ``to_websocket_messages``, ``to_polling_body``);
* hostile input: ``invalid_eio_packets``, ``invalid_polling_payloads``, ``invalid_sio_messages``
  (each breaks a rule of SPEC §2.4/§2.5/§3.2, so a conforming decoder must reject it),
  ``hostile_sio_messages`` (those plus nasty input that may be legal: truncations, control
  characters in namespaces, deep nesting, the largest ack id) as :class:`Hostile`, and
  ``wire_text`` / ``wire_bytes`` / ``mutated`` for undirected fuzzing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from hypothesis import strategies as st

from engineio_min.codec.eio import EioPacket, EioType, encode_eio, encode_eio_polling
from engineio_min.codec.payload import SEPARATOR
from engineio_min.codec.sio import MAX_ATTACHMENTS, RESERVED_EVENTS, SioPacket, SioType, encode_sio

__all__ = [
    "MAX_ACK_ID",
    "WIRE_ALPHABET",
    "Hostile",
    "SioWire",
    "ack_ids",
    "binary_count",
    "eio_packets",
    "eio_ws_messages",
    "encoded_sio_packets",
    "event_args",
    "event_names",
    "hostile_sio_messages",
    "invalid_eio_packets",
    "invalid_polling_payloads",
    "invalid_sio_messages",
    "json_values",
    "mutated",
    "namespaces",
    "polling_payloads",
    "query_strings",
    "sio_packets",
    "sio_wire",
    "to_polling_body",
    "to_websocket_messages",
    "values_with_binary",
    "wire_bytes",
    "wire_text",
]

# The largest ack id a peer may send: JavaScript's Number.MAX_SAFE_INTEGER (the reference
# side holds ack ids as Numbers; engineio_min refuses larger ones).
MAX_ACK_ID: Final = 2**53 - 1

# Characters real packets are made of, so that undirected fuzzing gets past the first byte.
WIRE_ALPHABET: Final = '0123456b789-/,[]{}":_placeholdernumtrue \x1e=ÿé'

_PLACEHOLDER_KEY: Final = "_placeholder"


# --------------------------------------------------------------------------
# Values


def _json_keys() -> st.SearchStrategy[str]:
    # An object with "_placeholder": true IS a placeholder in every implementation, so the
    # key is left out of plain data.
    return st.text(max_size=8).filter(lambda key: key != _PLACEHOLDER_KEY)


def _json_scalars() -> st.SearchStrategy[Any]:
    # Values that survive JSON both ways: integers within 64 bits (msgspec, like most
    # decoders, refuses bigger ones), finite floats, and text without lone surrogates.
    return (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**64 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12)
    )


def json_values(*, max_leaves: int = 12, floats: bool = True) -> st.SearchStrategy[Any]:
    """JSON-able values (None, bool, int, float, str, lists, str-keyed dicts) that round-trip.

    ``floats=False`` leaves floats out (their text differs between Python and JavaScript,
    ``1e+16`` against ``1e16``), for byte-exact comparisons.
    """
    scalars = _json_scalars() if floats else _json_scalars().filter(lambda value: not isinstance(value, float))
    keys = _json_keys()
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=max_leaves,
    )


def values_with_binary(*, max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """JSON-able values with ``bytes`` / ``bytearray`` leaves anywhere (binary attachments)."""
    leaves = _json_scalars() | st.binary(max_size=16) | st.binary(max_size=8).map(bytearray)
    keys = _json_keys()
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=max_leaves,
    )


def binary_count(value: Any) -> int:
    """How many binary attachments ``value`` would travel with (bytes-like leaves)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return 1
    if isinstance(value, list | tuple):
        return sum(binary_count(item) for item in value)
    if isinstance(value, dict):
        return sum(binary_count(item) for item in value.values())
    return 0


def namespaces(*, polling_safe: bool = False) -> st.SearchStrategy[str]:
    """Namespace names: ``/`` or ``/`` + any text without ``,`` (unicode and controls included).

    ``polling_safe=True`` also leaves out ``\\x1e``: the namespace is written raw, so one
    holding the record separator cannot travel in a polling body.
    """
    banned = ",\x1e" if polling_safe else ","
    rest = st.text(max_size=10).filter(lambda name: not any(char in banned for char in name))
    return st.just("/") | rest.map(lambda name: "/" + name)


def ack_ids() -> st.SearchStrategy[int]:
    """Ack ids a peer may send: 0 to :data:`MAX_ACK_ID`."""
    return st.integers(min_value=0, max_value=MAX_ACK_ID)


def event_names() -> st.SearchStrategy[str | int]:
    """Event names: any text that is not reserved (SPEC §3.7), or a number (tolerated)."""
    return st.text(max_size=12).filter(lambda name: name not in RESERVED_EVENTS) | st.integers(0, 1000)


def event_args(*, max_args: int = 5, binary: bool = True) -> st.SearchStrategy[list[Any]]:
    """Event (or ack) arguments; with ``binary``, bytes leaves up to ``MAX_ATTACHMENTS`` in all."""
    values = values_with_binary() if binary else json_values()
    return st.lists(values, max_size=max_args).filter(lambda args: binary_count(args) <= MAX_ATTACHMENTS)


# --------------------------------------------------------------------------
# Engine.IO


def eio_packets(
    *, types: Iterable[EioType] | None = None, binary: bool = True, polling_safe: bool = False
) -> st.SearchStrategy[EioPacket]:
    """Engine.IO packets: text packets of ``types`` (default: all seven) and binary MESSAGEs.

    ``polling_safe=True`` keeps ``\\x1e`` out of text data, so that any list of them makes a
    polling body (SPEC §2.5). Encode with ``codec.encode_eio`` (WebSocket) or
    ``codec.encode_eio_polling`` / ``codec.encode_payload`` (polling).
    """
    text = st.text(max_size=50)
    if polling_safe:
        text = text.filter(lambda data: SEPARATOR not in data)
    packets = st.builds(EioPacket, st.sampled_from(list(types) if types is not None else list(EioType)), text)
    if binary:
        packets |= st.builds(EioPacket, st.just(EioType.MESSAGE), st.binary(max_size=50))
    return packets


def eio_ws_messages(**kwargs: Any) -> st.SearchStrategy[str | bytes]:
    """Engine.IO packets as WebSocket messages (``str`` text frames, ``bytes`` binary frames).

    Takes the keyword arguments of :func:`eio_packets`.
    """
    return eio_packets(**kwargs).map(encode_eio)


def polling_payloads(*, min_size: int = 1, max_size: int = 20) -> st.SearchStrategy[list[EioPacket]]:
    """Packet lists that make one polling body (``codec.encode_payload`` joins them with ``\\x1e``)."""
    return st.lists(eio_packets(polling_safe=True), min_size=min_size, max_size=max_size)


# --------------------------------------------------------------------------
# Socket.IO


def sio_packets(
    *,
    types: Iterable[SioType] | None = None,
    namespace: str | st.SearchStrategy[str] | None = None,
    binary: bool = True,
    polling_safe: bool = False,
) -> st.SearchStrategy[SioPacket]:
    """Valid Socket.IO packets as ``codec.SioPacket``, attachments in place as ``bytes``.

    ``types``: any of CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR (default: all five).
    BINARY_EVENT / BINARY_ACK are how EVENT / ACK travel when their data holds bytes (the
    codec normalises them away), so they select EVENT / ACK with binary data. ``namespace``:
    a fixed name or a strategy (default :func:`namespaces`). ``binary=False``: no bytes.
    """
    wanted = set(types) if types is not None else set(SioType) - {SioType.BINARY_EVENT, SioType.BINARY_ACK}
    if namespace is None:
        nsp: st.SearchStrategy[str] = namespaces(polling_safe=polling_safe)
    elif isinstance(namespace, str):
        nsp = st.just(namespace)
    else:
        nsp = namespace
    plain_args = event_args(binary=False)
    # At least one bytes leaf, built in rather than filtered for (most drawn args hold none).
    binary_args = st.builds(
        lambda args, blob, pos: [*args[:pos], blob, *args[pos:]],
        st.lists(values_with_binary(), max_size=4).filter(lambda args: binary_count(args) < MAX_ATTACHMENTS),
        st.binary(max_size=16),
        st.integers(0, 4),
    )
    any_args = event_args(binary=binary)
    objects = st.dictionaries(_json_keys(), json_values(), max_size=4)
    choices: list[st.SearchStrategy[SioPacket]] = []

    def events(args: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[SioPacket]:
        return st.builds(
            lambda name, rest, space, ack_id: SioPacket(SioType.EVENT, space, [name, *rest], ack_id),
            event_names(), args, nsp, st.none() | ack_ids(),
        )  # fmt: skip

    def acks(args: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[SioPacket]:
        return st.builds(SioPacket, st.just(SioType.ACK), nsp, args, ack_ids())

    if SioType.CONNECT in wanted:
        choices.append(st.builds(SioPacket, st.just(SioType.CONNECT), nsp, st.none() | objects))
    if SioType.DISCONNECT in wanted:
        choices.append(st.builds(SioPacket, st.just(SioType.DISCONNECT), nsp))
    if SioType.EVENT in wanted:
        choices.append(events(any_args if binary else plain_args))
    if SioType.BINARY_EVENT in wanted:
        choices.append(events(binary_args))
    if SioType.ACK in wanted:
        choices.append(acks(any_args if binary else plain_args))
    if SioType.BINARY_ACK in wanted:
        choices.append(acks(binary_args))
    if SioType.CONNECT_ERROR in wanted:
        payloads = st.none() | st.text(max_size=10) | objects
        choices.append(st.builds(SioPacket, st.just(SioType.CONNECT_ERROR), nsp, payloads))
    if not choices:
        raise ValueError("sio_packets needs at least one packet type")
    return st.one_of(choices)


def to_websocket_messages(parts: Sequence[str | bytes]) -> list[str | bytes]:
    """Socket.IO parts (``encode_sio`` output) as the Engine.IO WebSocket messages that carry them.

    Text gets the Engine.IO MESSAGE digit ``4``; attachments stay ``bytes`` (binary frames).
    """
    return [encode_eio(EioPacket(EioType.MESSAGE, part)) for part in parts]


def to_polling_body(parts: Sequence[str | bytes]) -> str:
    """Socket.IO parts as one polling body: ``4``+text and ``b``+base64 records joined by ``\\x1e``.

    Raises:
        ValueError: a text part holds ``\\x1e`` (it would split into two records).
    """
    records = []
    for part in parts:
        if isinstance(part, str) and SEPARATOR in part:
            raise ValueError("a Socket.IO text holding \\x1e cannot travel in a polling body")
        records.append(encode_eio_polling(EioPacket(EioType.MESSAGE, part)))
    return SEPARATOR.join(records)


@dataclass(frozen=True, slots=True)
class SioWire:
    """One Socket.IO packet and its encodings.

    ``parts``: the Socket.IO text (no Engine.IO ``4``) then each attachment.
    ``websocket``: the Engine.IO WebSocket messages, in order.
    ``polling``: the polling body, or None when the namespace holds ``\\x1e``.
    """

    packet: SioPacket
    parts: tuple[str | bytes, ...]
    websocket: tuple[str | bytes, ...]
    polling: str | None


def sio_wire(packet: SioPacket) -> SioWire:
    """``packet`` with its wire forms (what :func:`encoded_sio_packets` draws)."""
    parts = encode_sio(packet)
    polling = None if SEPARATOR in packet.namespace else to_polling_body(parts)
    return SioWire(packet, tuple(parts), tuple(to_websocket_messages(parts)), polling)


def encoded_sio_packets(**kwargs: Any) -> st.SearchStrategy[SioWire]:
    """:func:`sio_packets` (same keyword arguments) with their wire forms, as :class:`SioWire`."""
    return sio_packets(**kwargs).map(sio_wire)


# --------------------------------------------------------------------------
# Hostile input


@dataclass(frozen=True, slots=True)
class Hostile:
    """A hostile Socket.IO message sequence.

    ``parts`` are fed in order as Engine.IO MESSAGE payloads (``str`` text without the
    ``4``, ``bytes`` attachments); wrap them with :func:`to_websocket_messages` or
    :func:`to_polling_body` to send them. ``kind`` names the attack. ``invalid`` is True
    when SPEC §3.2 makes the sequence invalid: a conforming decoder raises by the last part
    (and a server closes the connection); False means it may be legal and must be survived.
    """

    kind: str
    parts: tuple[str | bytes, ...]
    invalid: bool


def invalid_eio_packets() -> st.SearchStrategy[str]:
    """Text that is not an Engine.IO packet (SPEC §2.4): empty, a bad type, bad base64."""
    # Surrogates left out: a lone one cannot be sent as text at all.
    bad_first = st.characters(exclude_characters="0123456b", exclude_categories=["Cs"])
    bad_base64 = st.binary(min_size=1, max_size=12).map(lambda raw: encode_eio_polling(EioPacket(EioType.MESSAGE, raw)))
    return st.one_of(
        st.just(""),
        st.tuples(bad_first, st.text(max_size=10)).map("".join),
        st.sampled_from(["٤hello", "²", "b!!!!", "bAQIDBA", "bAQIDBA=", "b=AQIDBA=", "bAQID BA==", "béé="]),
        # Valid base64 with its padding cut, or something after it.
        bad_base64.filter(lambda text: text.endswith("=")).map(lambda text: text.rstrip("=")),
        bad_base64.filter(lambda text: text.endswith("=")).map(lambda text: text + "A"),
    )


def invalid_polling_payloads() -> st.SearchStrategy[bytes]:
    """Polling bodies a server must refuse (SPEC §2.5): empty records, bad UTF-8, bad packets."""
    valid_records = st.lists(eio_packets(polling_safe=True), min_size=1, max_size=4).map(
        lambda packets: [encode_eio_polling(packet).encode() for packet in packets]
    )
    bad_records = st.one_of(
        st.just(b""),  # an empty record: "4a\x1e", "\x1e4a", "4a\x1e\x1e4b"
        invalid_eio_packets().map(str.encode),
        st.sampled_from([b"4\xff", b"4\xc3", b"4\xed\xa0\x80", b"\xfe4"]),  # not UTF-8
    )
    return st.builds(
        lambda before, bad, after: b"\x1e".join([*before, bad, *after]),
        st.lists(valid_records.map(b"\x1e".join), max_size=2),
        bad_records,
        st.lists(valid_records.map(b"\x1e".join), max_size=2),
    )


_BAD_JSON: Final = (
    '"x\\ud83d"',  # a lone surrogate: JSON.stringify of a string cut inside an emoji
    '["a",',  # cut short
    "[1,]",
    "NaN",
    "[1e400]",
    "{'a':1}",
    '["a" "b"]',
    "[\x01]",
    '["\x00"]',  # a raw control character inside a string
)


def _event_text(namespace: str, ack_id: int | None, payload_text: str) -> str:
    prefix = "" if namespace == "/" else namespace + ","
    return "2" + prefix + ("" if ack_id is None else str(ack_id)) + payload_text


def _placeholder(num: str) -> str:
    return '{"_placeholder":true,"num":' + num + "}"


def invalid_sio_messages() -> st.SearchStrategy[Hostile]:
    """Socket.IO message sequences that break SPEC §3.2 (every :attr:`Hostile.invalid` is True)."""
    nsp = namespaces(polling_safe=True)
    ack = st.none() | ack_ids()

    def hostile(kind: str) -> Callable[..., Hostile]:
        return lambda *parts: Hostile(kind, tuple(parts), True)

    bad_type = st.builds(
        lambda first, rest: Hostile("bad type digit", (first + rest,), True),
        st.characters(exclude_characters="0123456", exclude_categories=["Cs"]),
        st.sampled_from(['["message"]', "", "0", '/admin,["x"]']),
    )
    bad_json = st.builds(
        lambda space, ack_id, body: Hostile("bad JSON", (_event_text(space, ack_id, body),), True),
        nsp, ack, st.sampled_from(_BAD_JSON),
    )  # fmt: skip
    bad_event_payload = st.builds(
        lambda space, body: Hostile("bad EVENT payload", (_event_text(space, None, body),), True),
        nsp,
        st.sampled_from(["{}", "[]", '"x"', "[null]", "[true]", "[[1]]", "", *(f'["{n}"]' for n in RESERVED_EVENTS)]),
    )
    garbage_ack = st.builds(
        lambda space, junk: hostile("garbage in the ack id")(_event_text(space, None, junk + '["x"]')),
        nsp, st.sampled_from(["abc", "-1", "1.5", "0x1f", "１２"]),
    )  # fmt: skip
    # As digits: Python will not even str() an int of 5000 digits.
    huge_digits = st.integers(MAX_ACK_ID + 1, 10**40).map(str) | st.just("9" * 5000)
    huge_ack = st.builds(
        lambda space, digits: hostile("ack id too large")(_event_text(space, None, digits + '["x"]')),
        nsp, huge_digits,
    )  # fmt: skip
    wrong_shape = st.sampled_from(
        [
            hostile("CONNECT payload not an object")("0[1]"),
            hostile("CONNECT payload not an object")('0/admin,"x"'),
            hostile("DISCONNECT with a payload")('1{"a":1}'),
            hostile("ACK without an id")('3["x"]'),
            hostile("ACK payload not an array")('31{"a":1}'),
            hostile("empty packet")(""),
        ]
    )
    bad_framing = st.sampled_from(
        [
            hostile("bad attachment count")('5["x"]'),
            hostile("bad attachment count")('5-["x"]'),
            hostile("bad attachment count")('5x-["x"]'),
            hostile("bad attachment count")('5²-["x"]'),
            hostile("too many attachments")(f'5{MAX_ATTACHMENTS + 1}-["x"]'),
            hostile("too many attachments")('5999999999-["x"]'),
            hostile("placeholder out of range")('51-["x",' + _placeholder("1") + "]", b"\x01"),
            hostile("placeholder not a number")('51-["x",' + _placeholder('"0"') + "]", b"\x01"),
            hostile("placeholder without attachment")('50-["x",' + _placeholder("0") + "]"),
            hostile("attachment with nothing pending")(b"\x01\x02"),
        ]
    )
    # Fewer attachments than announced, then a text packet; or more than announced.
    too_few = st.integers(2, MAX_ATTACHMENTS).map(
        lambda count: hostile("too few attachments")(
            f'5{count}-["x",' + ",".join(_placeholder(str(i)) for i in range(count)) + "]",
            *([b"a"] * (count - 1)),
            '2["next"]',
        )
    )
    too_many = st.integers(1, MAX_ATTACHMENTS).map(
        lambda count: hostile("too many attachments sent")(
            f'5{count}-["x",' + ",".join(_placeholder(str(i)) for i in range(count)) + "]",
            *([b"a"] * (count + 1)),
        )
    )
    return st.one_of(
        bad_type, bad_json, bad_event_payload, garbage_ack, huge_ack, wrong_shape, bad_framing, too_few, too_many
    )


def _truncations() -> st.SearchStrategy[Hostile]:
    # A valid packet's text cut anywhere: sometimes still valid ("0/adm"), so never "invalid".
    return st.builds(
        lambda wire, cut: Hostile("truncated", (wire.parts[0][: cut % (len(wire.parts[0]) + 1)],), False),
        encoded_sio_packets(binary=False, polling_safe=True),
        st.integers(0, 10_000),
    )


def _control_namespaces() -> st.SearchStrategy[Hostile]:
    controls = st.text(st.characters(min_codepoint=0, max_codepoint=0x1F, exclude_characters="\x1e"), min_size=1)
    return st.builds(
        lambda name, packet_type: Hostile(
            "control characters in the namespace",
            (f"{packet_type}/{name}," + ('["x"]' if packet_type == 2 else ""),),
            False,
        ),
        controls, st.sampled_from([0, 1, 2]),
    )  # fmt: skip


def _deep_nesting() -> st.SearchStrategy[Hostile]:
    # Deep arrays are valid JSON; a decoder may refuse them past its own depth limit, but
    # must not crash (RecursionError) on them, with a placeholder at the bottom or not.
    def nested(depth: int, binary: bool) -> Hostile:
        leaf = _placeholder("0") if binary else "1"
        text = ("51-" if binary else "2") + '["x",' + "[" * depth + leaf + "]" * depth + "]"
        return Hostile("deep nesting", (text, b"\x01") if binary else (text,), False)

    return st.builds(nested, st.sampled_from([64, 500, 997, 1000, 5000, 100_000]), st.booleans())


def hostile_sio_messages() -> st.SearchStrategy[Hostile]:
    """:func:`invalid_sio_messages` plus hostile input that may be legal: truncated packets,
    control characters in namespaces, deep nesting, the largest ack id and attachment count."""
    most_attachments: tuple[str | bytes, ...] = (
        f'5{MAX_ATTACHMENTS}-["x",' + ",".join(_placeholder(str(i)) for i in range(MAX_ATTACHMENTS)) + "]",
        *([b"\x00"] * MAX_ATTACHMENTS),
    )
    largest = st.sampled_from(
        [
            Hostile("largest ack id", (_event_text("/", MAX_ACK_ID, '["x"]'),), False),
            Hostile("most attachments", most_attachments, False),
        ]
    )
    return st.one_of(invalid_sio_messages(), _truncations(), _control_namespaces(), _deep_nesting(), largest)


def wire_text(*, max_size: int = 40) -> st.SearchStrategy[str]:
    """Undirected fuzz text, half of it from :data:`WIRE_ALPHABET`."""
    return st.text(alphabet=WIRE_ALPHABET, max_size=max_size) | st.text(max_size=max_size)


def wire_bytes(*, max_size: int = 40) -> st.SearchStrategy[bytes]:
    """Undirected fuzz bytes: random, or :func:`wire_text` encoded as UTF-8."""
    return st.binary(max_size=max_size) | wire_text(max_size=max_size).map(str.encode)


@st.composite
def _mutate_one(draw: st.DrawFn, texts: st.SearchStrategy[str]) -> str:
    text = draw(texts)
    pos = draw(st.integers(0, len(text)))
    operation = draw(st.sampled_from(["insert", "delete", "replace"]))
    char = draw(st.sampled_from(WIRE_ALPHABET))
    if operation == "insert":
        return text[:pos] + char + text[pos:]
    if operation == "delete":
        return text[:pos] + text[pos + 1 :]
    return text[:pos] + char + text[pos + 1 :]


def mutated(texts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``texts`` with one character inserted, deleted or replaced (from :data:`WIRE_ALPHABET`).

    For example ``mutated(encoded_sio_packets().map(lambda w: w.parts[0]))``: near-valid headers.
    """
    return _mutate_one(texts)


def query_strings(*, max_size: int = 40) -> st.SearchStrategy[str]:
    """Query strings made of what Engine.IO queries hold, with escapes, ``+``, ``;`` and repeats."""
    fragments = st.sampled_from(["EIO=4", "EIO=3", "transport=polling", "transport=websocket", "sid=", "t=", "&", "="])
    return st.text(alphabet="ab=&%+;2xé", max_size=max_size) | st.lists(
        fragments | st.text(alphabet="ab=&%+;2xé%41", max_size=6), max_size=8
    ).map("".join)
