"""Socket.IO protocol 5 packets: encode, and decode with attachment reassembly.

Layer: codec (pure; no I/O, no asyncio, no logging, no clock). Imports only the
standard library, ``engineio_min.errors`` and sibling codec modules.

Grammar (SPEC §3.1), the text carried inside an Engine.IO MESSAGE (after its
``4``)::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

Binary packets normalise away. :class:`SioPacket` holds the real values with
``bytes`` in place; :func:`encode_sio` sends EVENT/ACK data that contains
binary as BINARY_EVENT/BINARY_ACK plus attachments, and :class:`SioDecoder`
delivers reassembled BINARY_EVENT/BINARY_ACK packets as EVENT/ACK. The layers
above therefore only ever see EVENT and ACK; the bytes in ``data`` say whether
it travelled as binary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from engineio_min.codec.binary import deconstruct, reconstruct
from engineio_min.codec.json import dumps, loads
from engineio_min.errors import DecodeError

__all__ = [
    "DEFAULT_MAX_ATTACHMENT_BYTES",
    "INVALID_NAMESPACE_MESSAGE",
    "MAX_ATTACHMENTS",
    "MESSAGE_PREFIX",
    "RESERVED_EVENTS",
    "InvalidEventPayload",
    "SioDecoder",
    "SioPacket",
    "SioType",
    "encode_connect_error_text",
    "encode_connect_text",
    "encode_disconnect_text",
    "encode_event_text",
    "encode_sio",
]


class SioType(IntEnum):
    """Socket.IO packet types (SPEC §3.1)."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


# SPEC §3.7: names neither side may emit; an incoming EVENT naming one is an
# invalid packet.
RESERVED_EVENTS: Final[frozenset[str]] = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

# SPEC §3.2: the reference parser's ``maxAttachments`` default. Each pending
# attachment is buffered until the last one arrives, so the count is capped.
MAX_ATTACHMENTS: Final = 10

# Bytes of binary attachments one packet may bring (the sum over them). They are held
# until the last one arrives, so a peer that announces ten and sends nine would otherwise
# pin up to ten messages of max_payload each for as long as it stays connected.
DEFAULT_MAX_ATTACHMENT_BYTES: Final = 1_000_000

# Ack ids are JavaScript Numbers on the reference side; beyond
# Number.MAX_SAFE_INTEGER they lose precision, so no honest peer sends one.
# Capping the digit count also keeps int() away from its 4300-digit limit and
# a peer from making us scan a megabyte of digits.
_MAX_ACK_ID: Final = 2**53 - 1
_MAX_ACK_ID_DIGITS: Final = len(str(_MAX_ACK_ID))

_DEFAULT_NAMESPACE: Final = "/"

# Every Socket.IO packet travels in an Engine.IO MESSAGE, whose type digit comes first:
# the text parts of encode_sio() go out as MESSAGE_PREFIX + text.
MESSAGE_PREFIX: Final = "4"

# The CONNECT_ERROR message for a namespace the server does not have (the reference's words,
# which clients show and match on).
INVALID_NAMESPACE_MESSAGE: Final = "Invalid namespace"

_CONNECT: Final = SioType.CONNECT
_DISCONNECT: Final = SioType.DISCONNECT
_EVENT: Final = SioType.EVENT
_ACK: Final = SioType.ACK
_CONNECT_ERROR: Final = SioType.CONNECT_ERROR
_BINARY_EVENT: Final = SioType.BINARY_EVENT
_BINARY_ACK: Final = SioType.BINARY_ACK

# The types whose data may carry binary attachments (SPEC §3.5).
_ATTACHMENT_TYPES: Final = frozenset({_EVENT, _ACK, _BINARY_EVENT, _BINARY_ACK})

_TYPE_DIGITS: Final[tuple[str, ...]] = tuple(str(t.value) for t in SioType)
_DIGIT_TYPES: Final[dict[str, SioType]] = {str(t.value): t for t in SioType}
_ASCII_DIGITS: Final = frozenset("0123456789")
# Digits accepted in an attachment count (leading zeros included, as the
# reference's Number() parse allows "05-"); the value is then capped anyway.
_MAX_COUNT_DIGITS: Final = 8


@dataclass(frozen=True, slots=True)
class SioPacket:
    """One Socket.IO packet, with binary attachments already in place.

    ``data`` holds the real values (``bytes`` where binary goes); ``None``
    means the packet has no payload. ``id`` is the ack id, if any.
    """

    type: SioType
    namespace: str = _DEFAULT_NAMESPACE
    data: Any = None
    id: int | None = None


# --------------------------------------------------------------------------
# Encoding


def encode_sio(packet: SioPacket) -> list[str | bytes]:
    """Encode ``packet`` as its Socket.IO text followed by its attachments.

    EVENT/ACK (or BINARY_EVENT/BINARY_ACK) data containing ``bytes``,
    ``bytearray`` or ``memoryview`` anywhere is sent as BINARY_EVENT/BINARY_ACK
    with placeholders; data without binary is sent as plain EVENT/ACK.

    Returns:
        ``[text, *attachments]``: ``text`` is the Socket.IO text without the
        Engine.IO ``4`` (e.g. ``'2/admin,12["x",1]'``); each attachment is one
        Engine.IO binary MESSAGE to send after it, in order.

    The namespace is written as given; it must start with ``/`` and contain no
    ``,`` (the decoder guarantees both for namespaces that came from a peer).
    """
    packet_type = packet.type
    data = packet.data
    if packet_type in _ATTACHMENT_TYPES:
        # One walk; with no binary, data comes back unchanged and uncopied.
        data, attachments = deconstruct(data)
        is_event = packet_type in (_EVENT, _BINARY_EVENT)
        if attachments:
            packet_type = _BINARY_EVENT if is_event else _BINARY_ACK
            header = f"{_TYPE_DIGITS[packet_type]}{len(attachments)}-"
        else:
            header = "2" if is_event else "3"
    else:
        attachments = []
        header = _TYPE_DIGITS[packet_type]
    # Small-string concatenation: cheaper here than building a parts list.
    namespace = packet.namespace
    if namespace != _DEFAULT_NAMESPACE:
        header += namespace + ","
    if packet.id is not None:
        header += str(packet.id)
    if data is not None:
        header += dumps(data)
    result: list[str | bytes] = [header]
    result.extend(attachments)
    return result


def encode_event_text(namespace: str, event: str, args: Sequence[Any]) -> str:
    """Fast path for the common emit: an EVENT with no binary and no ack.

    Returns:
        The whole Engine.IO MESSAGE text, ``4`` included: ``42["hey","Jude"]``
        or ``42/admin,["x"]``. Equal to ``"4" + encode_sio(...)[0]``.

    The caller guarantees ``args`` hold no binary (they would be written as
    base64 strings, not attachments) and that ``event`` is not reserved; use
    :func:`encode_sio` when unsure. Skipping that walk is what makes this path
    cheap: one list build and one JSON encode.
    """
    payload = dumps([event, *args])
    if namespace == _DEFAULT_NAMESPACE:
        return "42" + payload
    return "42" + namespace + "," + payload


def _message_header(type_digits: str, namespace: str) -> str:
    """``4`` + type + ``namespace,`` (the namespace left out for ``/``)."""
    if namespace == _DEFAULT_NAMESPACE:
        return type_digits
    return type_digits + namespace + ","


def encode_connect_text(namespace: str, sid: str) -> str:
    """The server's CONNECT reply as a whole Engine.IO MESSAGE: ``40{"sid":...}``.

    Equal to ``"4" + encode_sio(SioPacket(SioType.CONNECT, namespace, {"sid": sid}))[0]``.
    """
    if namespace == _DEFAULT_NAMESPACE:  # (inline: this is on every connect)
        return "40" + dumps({"sid": sid})
    return "40" + namespace + "," + dumps({"sid": sid})


def encode_connect_error_text(namespace: str, payload: dict[str, Any]) -> str:
    """A CONNECT_ERROR as a whole Engine.IO MESSAGE: ``44{"message":...}``.

    ``payload`` is ``{"message": str}`` plus ``"data"`` when the refusal carries some. The
    namespace is echoed as the client wrote it: the caller refuses names with control
    characters first (one holding ``\x1e`` would break a polling body).
    """
    return _message_header("44", namespace) + dumps(payload)


def encode_disconnect_text(namespace: str) -> str:
    """A server-side DISCONNECT as a whole Engine.IO MESSAGE: ``41`` or ``41/admin,``."""
    return _message_header("41", namespace)


# --------------------------------------------------------------------------
# Decoding


class InvalidEventPayload(DecodeError):
    """A well-formed EVENT header (type, namespace, ack id) whose JSON does not decode.

    Bad text from a client, e.g. a lone surrogate (``JSON.stringify`` of a string cut inside
    an emoji writes ``"x\\ud83d"``, which strict UTF-8 JSON parsers refuse). The header
    was read before the JSON, so the layer above knows whom to answer and which ack id to
    answer with, and may refuse the event instead of closing the session. The decoder is
    left in a clean state and may be fed on.
    """

    def __init__(self, namespace: str, ack_id: int | None, reason: str) -> None:
        super().__init__(reason)
        self.namespace = namespace
        self.ack_id = ack_id

# Sentinel for "the packet has no payload": JSON null is a payload (and an
# invalid one for every type), distinct from none at all.
_ABSENT: Final[Any] = object()


def _check_payload(packet_type: SioType, data: Any, ack_id: int | None) -> None:
    """Raise DecodeError unless ``data`` is a valid payload for ``packet_type`` (SPEC §3.1, §3.2)."""
    if packet_type is _EVENT or packet_type is _BINARY_EVENT:
        if type(data) is not list or not data:
            raise DecodeError("EVENT payload must be a non-empty array")
        name = data[0]
        kind = type(name)
        if kind is str:
            if name in RESERVED_EVENTS:
                raise DecodeError(f"reserved event name {name!r}")
        # A number is tolerated as an event name, as by the reference parser;
        # bool is an int subclass in Python but not a number in JSON.
        elif kind is not int and kind is not float:
            raise DecodeError("event name must be a string")
    elif packet_type is _ACK or packet_type is _BINARY_ACK:
        if ack_id is None:
            raise DecodeError("ACK without an ack id")
        if type(data) is not list:
            raise DecodeError("ACK payload must be an array")
    elif packet_type is _CONNECT:
        if data is not _ABSENT and type(data) is not dict:
            raise DecodeError("CONNECT payload must be an object")
    elif packet_type is _DISCONNECT:
        if data is not _ABSENT:
            raise DecodeError("DISCONNECT takes no payload")
    # Only CONNECT_ERROR is left. Who may send it is policy, not syntax: only
    # the shape is checked (an object, or a string from older servers).
    elif data is not _ABSENT and type(data) is not dict and type(data) is not str:
        raise DecodeError("CONNECT_ERROR payload must be an object or a string")


@dataclass(slots=True)
class _Pending:
    """A binary packet header waiting for its attachments."""

    type: SioType
    namespace: str
    data: Any
    id: int | None
    expected: int
    attachments: list[bytes]
    size: int = 0  # bytes of the attachments so far


class SioDecoder:
    """Socket.IO decoder for one Engine.IO session.

    Feed it the payload of every Engine.IO MESSAGE, text and binary, in
    arrival order. A binary packet header is held until its attachments have
    arrived; the packet is then returned with the bytes in place, as EVENT or
    ACK (see the module docstring).

    Any :class:`DecodeError` means the peer broke the protocol; SPEC §3.2 then
    closes the whole Engine.IO session, so the decoder is not reused (except after
    :class:`InvalidEventPayload`, see there).

    Args:
        max_attachment_bytes: the most bytes of attachments one packet may bring; one
            more is a DecodeError. (Only one packet is ever pending, so this bounds what
            a connection holds half received; the layer above bounds the time.)
    """

    __slots__ = ("_max_attachment_bytes", "_pending")

    def __init__(self, max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES) -> None:
        self._pending: _Pending | None = None
        self._max_attachment_bytes = max_attachment_bytes

    @property
    def is_awaiting_attachments(self) -> bool:
        """True while a binary packet header is waiting for attachments."""
        return self._pending is not None

    def feed(self, data: str | bytes) -> SioPacket | None:
        """Decode the next Engine.IO MESSAGE payload.

        Args:
            data: ``str`` is Socket.IO text (the MESSAGE payload, Engine.IO
                ``4`` already removed); ``bytes`` is a binary attachment.

        Returns:
            The complete packet, or None while attachments are still expected.

        Raises:
            DecodeError: the input breaks any rule of SPEC §3.2.
        """
        if not isinstance(data, str):
            return self._feed_attachment(bytes(data))
        if self._pending is not None:
            self._pending = None
            raise DecodeError("text packet received while binary attachments are pending")
        packet_type, namespace, ack_id, payload, attachments = _parse(data)
        _check_payload(packet_type, payload, ack_id)
        if payload is _ABSENT:
            payload = None
        if packet_type is _BINARY_EVENT or packet_type is _BINARY_ACK:
            packet_type = _EVENT if packet_type is _BINARY_EVENT else _ACK
            if attachments:
                self._pending = _Pending(packet_type, namespace, payload, ack_id, attachments, [])
                return None
            # "50-[...]": binary framing with nothing attached; still check
            # that no placeholder points at a missing attachment.
            payload = reconstruct(payload, [])
        return SioPacket(packet_type, namespace, payload, ack_id)

    def _feed_attachment(self, attachment: bytes) -> SioPacket | None:
        pending = self._pending
        if pending is None:
            raise DecodeError("binary message received with no binary packet pending")
        pending.size += len(attachment)
        if pending.size > self._max_attachment_bytes:
            self._pending = None
            raise DecodeError(f"binary attachments over {self._max_attachment_bytes} bytes")
        pending.attachments.append(attachment)
        if len(pending.attachments) < pending.expected:
            return None
        self._pending = None
        data = reconstruct(pending.data, pending.attachments)
        return SioPacket(pending.type, pending.namespace, data, pending.id)


def _parse(text: str) -> tuple[SioType, str, int | None, Any, int]:
    """Split Socket.IO text into (type, namespace, ack id, payload or _ABSENT, attachment count)."""
    if not text:
        raise DecodeError("empty Socket.IO packet")
    packet_type = _DIGIT_TYPES.get(text[0])
    if packet_type is None:
        raise DecodeError(f"invalid Socket.IO packet type {text[0]!r}")
    end = len(text)
    pos = 1
    attachments = 0

    if packet_type is _BINARY_EVENT or packet_type is _BINARY_ACK:
        # Look for the "-" only in a short window: a count never needs many
        # digits, and a header without one is rejected without scanning the
        # whole packet.
        dash = text.find("-", 1, 2 + _MAX_COUNT_DIGITS)
        count = text[1:dash] if dash > 0 else ""
        # isascii() + isdigit(): isdigit() alone accepts "²" and "٣".
        if not count or not (count.isascii() and count.isdigit()):
            raise DecodeError("malformed attachment count")
        attachments = int(count)
        if attachments > MAX_ATTACHMENTS:
            raise DecodeError(f"more than {MAX_ATTACHMENTS} attachments")
        pos = dash + 1

    # Namespace: from a leading "/" up to the first "," or the end of the
    # string ("0/custom" and "0/custom," both mean /custom; SPEC §3.1).
    if pos < end and text[pos] == "/":
        comma = text.find(",", pos)
        if comma < 0:
            namespace = text[pos:]
            pos = end
        else:
            namespace = text[pos:comma]
            pos = comma + 1
    else:
        namespace = _DEFAULT_NAMESPACE

    # Ack id: a run of ASCII digits. Garbage here is not skipped: "2abc[...]"
    # leaves "abc[...]" for the JSON parser, which rejects it.
    ack_id: int | None = None
    digits_end = pos
    while digits_end < end and text[digits_end] in _ASCII_DIGITS:
        digits_end += 1
        if digits_end - pos > _MAX_ACK_ID_DIGITS:
            raise DecodeError("ack id too long")
    if digits_end > pos:
        ack_id = int(text[pos:digits_end])
        if ack_id > _MAX_ACK_ID:
            raise DecodeError("ack id out of range")
        pos = digits_end

    # One slice copy; msgspec cannot decode from an offset into a str.
    if pos == end:
        return packet_type, namespace, ack_id, _ABSENT, attachments
    try:
        payload = loads(text[pos:])
    except DecodeError as exc:
        if packet_type is _EVENT:  # answerable (see InvalidEventPayload); anything else is not
            raise InvalidEventPayload(namespace, ack_id, str(exc)) from None
        raise
    return packet_type, namespace, ack_id, payload, attachments
