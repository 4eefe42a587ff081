"""Pure codec for Engine.IO protocol 4 and Socket.IO protocol 5.

Layer: codec, the bottom layer (pure functions and dataclasses; no I/O, no
asyncio, no logging, no clock). Imports only the standard library, msgspec
and ``engineio_min.errors``. The same input always gives the same output.

Modules:

* ``json``: the only caller of the JSON library (compact JS-style output);
* ``eio``: one Engine.IO packet <-> WebSocket frame / polling record;
* ``payload``: polling bodies (``\\x1e``-separated records), whole or chunked;
* ``handshake``: the OPEN packet body (seconds in, milliseconds out);
* ``sio``: Socket.IO packets and the per-session decoder;
* ``binary``: placeholder deconstruct/reconstruct for binary attachments.

Decoding raises only :class:`~engineio_min.errors.DecodeError` and
:class:`~engineio_min.errors.PayloadTooLarge`; anything else is a bug.
"""

from __future__ import annotations

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
from engineio_min.codec.payload import (
    MAX_PACKETS_PER_RESPONSE,
    SEPARATOR,
    PayloadDecoder,
    decode_payload,
    encode_payload,
)
from engineio_min.codec.sio import (
    MAX_ATTACHMENTS,
    RESERVED_EVENTS,
    SioDecoder,
    SioPacket,
    SioType,
    encode_event_text,
    encode_sio,
)

__all__ = [
    "CLOSE_TEXT",
    "MAX_ATTACHMENTS",
    "MAX_PACKETS_PER_RESPONSE",
    "NOOP_TEXT",
    "PING_TEXT",
    "PONG_PROBE_TEXT",
    "RESERVED_EVENTS",
    "SEPARATOR",
    "EioPacket",
    "EioType",
    "PayloadDecoder",
    "SioDecoder",
    "SioPacket",
    "SioType",
    "decode_eio",
    "decode_payload",
    "encode_eio",
    "encode_eio_polling",
    "encode_event_text",
    "encode_open",
    "encode_payload",
    "encode_sio",
]
