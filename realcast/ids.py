"""Message ids and wire timestamps.

Layer: application (realcast); imports only the standard library. Pure apart from the
injected clock and randomness source.

Message ids are ``msg_`` followed by 26 Crockford base32 characters: a 48-bit millisecond
timestamp then an 80-bit counter that starts at a random value each millisecond and is
incremented within it (the ULID layout). Ids therefore sort lexicographically in creation
order within one process, and are unique across processes with overwhelming probability.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

__all__ = ["MessageIdFactory", "iso_utc"]

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS: Final = 80
_RANDOM_MAX: Final = (1 << _RANDOM_BITS) - 1
_TIME_MAX: Final = (1 << 48) - 1
PREFIX: Final = "msg_"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class MessageIdFactory:
    """Makes strictly increasing, time-ordered message ids.

    Args:
        clock: wall-clock seconds since the epoch (``time.time`` by default).
        randbytes: source of randomness for the first id of each millisecond.
    """

    __slots__ = ("_clock", "_last_ms", "_last_rand", "_randbytes")

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        randbytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._clock = clock
        self._randbytes = randbytes
        self._last_ms = -1
        self._last_rand = 0

    def new_id(self) -> str:
        """Return the next id; never equal to, and sorting after, the previous one."""
        ms = int(self._clock() * 1000)
        if ms <= self._last_ms:
            # Same millisecond, or the wall clock stepped back: keep the last timestamp and
            # count up, so ordering survives clock adjustments.
            ms = self._last_ms
            rand = self._last_rand + 1
            if rand > _RANDOM_MAX:  # 2**80 ids in one millisecond: borrow the next one
                ms += 1
                rand = 0
        else:
            # Keep the top bit clear so the counter has room to grow within the millisecond.
            rand = int.from_bytes(self._randbytes(10), "big") >> 1
        self._last_ms = ms
        self._last_rand = rand
        return PREFIX + _base32(min(ms, _TIME_MAX), 10) + _base32(rand, 16)


def iso_utc(timestamp: float) -> str:
    """Format epoch seconds as ISO-8601 UTC with millisecond precision and a ``Z`` suffix.

    >>> iso_utc(1733738400.5)
    '2024-12-09T10:00:00.500Z'
    """
    dt = datetime.fromtimestamp(timestamp, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
