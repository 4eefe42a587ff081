"""HTTP long-polling payloads: several Engine.IO packets in one HTTP body.

Layer: codec (pure; no I/O, no asyncio, no logging, no clock). Imports only the
standard library, ``engineio_min.errors`` and ``codec.eio``.

Format (SPEC §2.5, both directions): the polling records of the packets (see
:func:`~engineio_min.codec.eio.encode_eio_polling`) joined by the record
separator ``\\x1e``, with no trailing separator. Example:
``4hello\\x1e2\\x1ebAQIDBA==``. The format assumes no record contains ``\\x1e``;
Socket.IO text never does (JSON escapes control characters), raw Engine.IO
text messages are the sender's responsibility.

Error order. A payload is checked record by record, in stream order: the
first ``max_packets`` records are decoded (invalid UTF-8 or an invalid packet
raises :class:`DecodeError`), and if a record follows them
:class:`PayloadTooLarge` is raised. :func:`decode_payload` and
:class:`PayloadDecoder` follow the same order, so any body gives the same
packets, or the same exception type, however it is split into chunks.

Byte-size limits (``maxHttpBufferSize`` -> HTTP 413) belong to the transport,
which sees ``Content-Length`` and the chunks before they reach this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from engineio_min.codec.eio import EioPacket, decode_eio, encode_eio_polling
from engineio_min.errors import DecodeError, PayloadTooLarge

__all__ = [
    "MAX_PACKETS_PER_RESPONSE",
    "SEPARATOR",
    "PayloadDecoder",
    "decode_payload",
    "encode_payload",
]

SEPARATOR: Final = "\x1e"
_SEPARATOR_BYTE: Final = b"\x1e"

# The most packets to put in one GET response. python-engineio's client
# (engineio/payload.py, ``Payload.max_decode_packets = 16``, checked against
# python-engineio 4.15) raises "Too many packets in payload" on a longer body
# and drops the connection, so a server that talks to Python clients must split
# a bigger backlog over several GETs. The JS client has no such limit.
MAX_PACKETS_PER_RESPONSE: Final = 16

# Default packet-count limit for decoding a client body. A 1 MB body (the
# default maxHttpBufferSize) could otherwise hold ~500k one-byte records, each
# costing a Python object; 10k is far above what any client batches.
_DEFAULT_MAX_PACKETS: Final = 10_000


def encode_payload(packets: Iterable[EioPacket]) -> str:
    """Join ``packets`` into one polling body (``\\x1e`` between records).

    The caller decides how many packets go in one response; see
    :data:`MAX_PACKETS_PER_RESPONSE`.

    Raises:
        ValueError: binary data on a packet that is not a MESSAGE (a caller bug).
    """
    return SEPARATOR.join(map(encode_eio_polling, packets))


def _check_max_packets(max_packets: int) -> None:
    if max_packets < 1:
        raise ValueError(f"max_packets must be at least 1, got {max_packets}")


def _too_many(max_packets: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"more than {max_packets} packets in one payload")


def _decode_record(record: bytes) -> EioPacket:
    try:
        text = record.decode()
    except UnicodeDecodeError as exc:
        raise DecodeError(f"payload is not valid UTF-8: {exc}") from exc
    return decode_eio(text)


def decode_payload(body: str | bytes, max_packets: int = _DEFAULT_MAX_PACKETS) -> list[EioPacket]:
    """Decode a whole polling body into its packets.

    Args:
        body: the body as text, or as UTF-8 bytes.
        max_packets: the most records accepted (at least 1).

    Raises:
        DecodeError: empty body, invalid UTF-8, or an invalid record (empty
            records included, so a trailing separator is an error).
        PayloadTooLarge: more than ``max_packets`` records.
    """
    _check_max_packets(max_packets)
    if isinstance(body, str):
        text = body
    else:
        try:
            text = bytes(body).decode()
        except UnicodeDecodeError:
            # Rare path: find which comes first in the stream, the bad record
            # or the packet limit (see the module docstring).
            return _decode_payload_bytes(bytes(body), max_packets)
    if SEPARATOR not in text:
        # The common POST: one packet. decode_eio raises for an empty body.
        return [decode_eio(text)]
    # maxsplit bounds the work: never more than max_packets + 1 pieces.
    records = text.split(SEPARATOR, max_packets)
    if len(records) > max_packets:
        # Records before the limit are checked first, as PayloadDecoder does.
        for record in records[:max_packets]:
            decode_eio(record)
        raise _too_many(max_packets)
    return [decode_eio(record) for record in records]


def _decode_payload_bytes(body: bytes, max_packets: int) -> list[EioPacket]:
    records = body.split(_SEPARATOR_BYTE, max_packets)
    packets = [_decode_record(record) for record in records[:max_packets]]
    if len(records) > max_packets:
        raise _too_many(max_packets)
    return packets


class PayloadDecoder:
    """Incremental polling-body decoder, for a POST body that arrives in chunks.

    Feed every chunk to :meth:`feed`, handle the packets it returns, then call
    :meth:`finish` at the end of the body for the last packet. The result is
    the same as :func:`decode_payload` on the whole body.

    A record is complete once the ``\\x1e`` after it has arrived. Splitting on
    the byte 0x1E is safe anywhere in UTF-8: it is ASCII, so it never occurs
    inside a multi-byte sequence, and a chunk may end in the middle of one.

    After :meth:`finish` the decoder is ready for the next body. After
    :meth:`feed` or :meth:`finish` raises, the body is invalid: discard the
    decoder along with the session (SPEC §2.5 closes it).
    """

    __slots__ = ("_count", "_max_packets", "_pending")

    def __init__(self, max_packets: int = _DEFAULT_MAX_PACKETS) -> None:
        _check_max_packets(max_packets)
        self._max_packets = max_packets
        # Chunks of the current, incomplete record; joined once it completes.
        self._pending: list[bytes] = []
        # Records completed so far in this body.
        self._count = 0

    def feed(self, chunk: bytes) -> list[EioPacket]:
        """Add the next chunk of the body.

        Returns:
            The packets whose records are now complete, in order (often none).

        Raises:
            DecodeError: a completed record is not valid UTF-8 or not a packet.
            PayloadTooLarge: the body has more than ``max_packets`` records.
        """
        if type(chunk) is not bytes:
            chunk = bytes(chunk)  # bytearray/memoryview: keep a stable copy
        if _SEPARATOR_BYTE not in chunk:
            if chunk:
                self._pending.append(chunk)
            return []
        pieces = chunk.split(_SEPARATOR_BYTE)
        if self._pending:
            self._pending.append(pieces[0])
            pieces[0] = b"".join(self._pending)
            self._pending.clear()
        tail = pieces.pop()
        packets: list[EioPacket] = []
        max_packets = self._max_packets
        for record in pieces:
            packets.append(_decode_record(record))
            self._count += 1
            # This record ended with a separator, so another record follows.
            if self._count >= max_packets:
                raise _too_many(max_packets)
        if tail:
            self._pending.append(tail)
        return packets

    def finish(self) -> list[EioPacket]:
        """Signal the end of the body and decode its last record.

        Returns:
            A list holding the last packet.

        Raises:
            DecodeError: the body was empty, ended with a separator, or the
                last record is invalid.
        """
        record = b"".join(self._pending)
        self._pending.clear()
        self._count = 0
        if not record:
            raise DecodeError("empty payload or empty last record")
        return [_decode_record(record)]
