"""The Engine.IO handshake: the body of the OPEN packet.

Layer: codec (pure; no I/O, no asyncio, no logging, no clock). Imports only the
standard library and ``codec.json``.

This is the one place where seconds become Engine.IO's milliseconds
(STYLE §3: ``*_interval``/``*_timeout`` are float seconds everywhere else).
"""

from __future__ import annotations

from collections.abc import Sequence

from engineio_min.codec.json import dumps

__all__ = ["encode_open"]


def _to_ms(seconds: float) -> int:
    # round(), not int(): 0.3 * 1000 is 300.00000000000006, but 0.29 * 1000 is
    # 289.99999999999994, which int() would truncate to 289. python-engineio's
    # int(seconds) * 1000 turns the suite's 0.3 s into 0 (SPEC §6).
    return round(seconds * 1000)


def encode_open(
    sid: str,
    upgrades: Sequence[str],
    ping_interval: float,
    ping_timeout: float,
    max_payload: int,
) -> str:
    """Encode the OPEN packet text, e.g. ``0{"sid":"…","upgrades":["websocket"],…}``.

    The keys are written in the reference server's order, and are exactly
    these five (SPEC §2.3: the conformance suite rejects extra keys).

    Args:
        sid: the engine session id.
        upgrades: transports the session may upgrade to (``["websocket"]``
            over polling, ``[]`` over WebSocket or with upgrades disabled).
        ping_interval: seconds between pings; sent as integer milliseconds.
        ping_timeout: seconds to wait for a pong; sent as integer milliseconds.
        max_payload: the largest POST body / WebSocket message in bytes.

    Returns:
        The whole packet text, type digit ``0`` included.
    """
    body = {
        "sid": sid,
        "upgrades": list(upgrades),
        "pingInterval": _to_ms(ping_interval),
        "pingTimeout": _to_ms(ping_timeout),
        "maxPayload": max_payload,
    }
    return "0" + dumps(body)
