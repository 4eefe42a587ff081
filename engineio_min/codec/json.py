"""JSON for both protocol layers: the only module that calls the JSON library.

Layer: codec (pure; no I/O, no asyncio, no logging, no clock). Imports only
msgspec and ``engineio_min.errors``.

Socket.IO compares JSON byte for byte (SPEC §3.1), so output must be compact
JavaScript-style JSON: no spaces after ``,`` or ``:``, object keys in insertion
order, non-ASCII written as raw UTF-8 rather than ``\\uXXXX``. msgspec's default
encoder produces exactly that, and is several times faster than the stdlib
``json`` module. Swap the library here and nowhere else.

Notes on msgspec's behaviour that callers may notice:

* ``bytes`` are encoded as base64 strings. The Socket.IO encoder never lets
  bytes reach this module (they become attachments, see ``binary.py``).
* NaN and infinities encode as ``null``, as ``JSON.stringify`` does.
* Control characters (including the polling separator ``\\x1e``) are always
  escaped, so Socket.IO JSON can never break a polling payload.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engineio_min.errors import DecodeError

__all__ = ["dumps", "dumps_bytes", "loads"]

# One encoder/decoder pair for the whole process: building them per call costs
# an allocation and a little setup on every packet.
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_encode = _encoder.encode
_decode = _decoder.decode


def dumps(obj: Any) -> str:
    """Serialise ``obj`` to compact JavaScript-style JSON text.

    Raises:
        TypeError: ``obj`` holds a value msgspec cannot encode (a caller bug).
    """
    return _encode(obj).decode()


def dumps_bytes(obj: Any) -> bytes:
    """Serialise ``obj`` to compact JavaScript-style JSON, UTF-8 encoded."""
    return _encode(obj)


def loads(data: str | bytes) -> Any:
    """Parse JSON text (``str``) or UTF-8 JSON (``bytes``).

    Raises:
        DecodeError: malformed JSON, invalid UTF-8, numbers out of range,
            or nesting too deep for the interpreter's recursion limit.
    """
    try:
        return _decode(data)
    # msgspec.DecodeError and UnicodeDecodeError are both ValueErrors; msgspec
    # raises RecursionError for deeply nested input ("[[[[..."), which is peer
    # controlled and therefore a decode error, not a crash.
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"invalid JSON: {exc}") from exc
