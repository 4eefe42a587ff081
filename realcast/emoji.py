"""Recognise exactly one emoji (one emoji grapheme) for ``reaction:send``.

Layer: application (realcast); imports only the standard library. Pure functions.

The standard library has no ``Extended_Pictographic`` property, so the ranges below are the
``Extended_Pictographic`` entries of Unicode's ``emoji-data.txt`` (Unicode 15), merged into
intervals. They include code points reserved for future emoji, so emoji newer than this table
are still accepted.

Grammar (a simplification of UTS #51 "possible emoji", ED-27, that accepts every RGI emoji)::

    emoji    := flag | element ( ZWJ element )*
    flag     := RI RI                                  regional-indicator pair, e.g. 🇫🇷
    element  := keycap | pict [ VS16 ] [ modifier ] [ tags ]
    keycap   := [0-9#*] [ VS16 ] U+20E3
    tags     := [U+E0020-U+E007E]+ U+E007F             subdivision flags, e.g. 🏴 + tags
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

__all__ = ["MAX_EMOJI_CODE_POINTS", "is_single_emoji"]

# The longest RGI sequences (family/couple ZWJ sequences with skin tones) have 10-11 code
# points, subdivision flags 7; 16 leaves room and bounds the work per reaction.
MAX_EMOJI_CODE_POINTS: Final = 16

_PICTOGRAPHIC_RANGES: Final[tuple[tuple[int, int], ...]] = (
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x2199),
    (0x21A9, 0x21AA),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x2388, 0x2388),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x2605),
    (0x2607, 0x2612),
    (0x2614, 0x2685),
    (0x2690, 0x2705),
    (0x2708, 0x2712),
    (0x2714, 0x2714),
    (0x2716, 0x2716),
    (0x271D, 0x271D),
    (0x2721, 0x2721),
    (0x2728, 0x2728),
    (0x2733, 0x2734),
    (0x2744, 0x2744),
    (0x2747, 0x2747),
    (0x274C, 0x274C),
    (0x274E, 0x274E),
    (0x2753, 0x2755),
    (0x2757, 0x2757),
    (0x2763, 0x2767),
    (0x2795, 0x2797),
    (0x27A1, 0x27A1),
    (0x27B0, 0x27B0),
    (0x27BF, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0x1F000, 0x1F0FF),
    (0x1F10D, 0x1F10F),
    (0x1F12F, 0x1F12F),
    (0x1F16C, 0x1F171),
    (0x1F17E, 0x1F17F),
    (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A),
    (0x1F1AD, 0x1F1E5),
    (0x1F201, 0x1F20F),
    (0x1F21A, 0x1F21A),
    (0x1F22F, 0x1F22F),
    (0x1F232, 0x1F23A),
    (0x1F23C, 0x1F23F),
    (0x1F249, 0x1F3FA),
    (0x1F400, 0x1F53D),
    (0x1F546, 0x1F64F),
    (0x1F680, 0x1F6FF),
    (0x1F774, 0x1F77F),
    (0x1F7D5, 0x1F7FF),
    (0x1F80C, 0x1F80F),
    (0x1F848, 0x1F84F),
    (0x1F85A, 0x1F85F),
    (0x1F888, 0x1F88F),
    (0x1F8AE, 0x1F8FF),
    (0x1F90C, 0x1F93A),
    (0x1F93C, 0x1F945),
    (0x1F947, 0x1FAFF),
    (0x1FC00, 0x1FFFD),
)
_RANGE_STARTS: Final = tuple(start for start, _ in _PICTOGRAPHIC_RANGES)

_ZWJ: Final = 0x200D
_VS16: Final = 0xFE0F
_KEYCAP: Final = 0x20E3
_KEYCAP_BASES: Final = frozenset(map(ord, "0123456789#*"))
_MODIFIERS: Final = range(0x1F3FB, 0x1F3FF + 1)
_REGIONAL_INDICATORS: Final = range(0x1F1E6, 0x1F1FF + 1)
_TAGS: Final = range(0xE0020, 0xE007E + 1)
_CANCEL_TAG: Final = 0xE007F


def _is_pictographic(cp: int) -> bool:
    i = bisect_right(_RANGE_STARTS, cp) - 1
    return i >= 0 and cp <= _PICTOGRAPHIC_RANGES[i][1]


def _element_end(cps: list[int], i: int) -> int:
    """Parse one ``element`` starting at ``i``; return the index after it, or -1."""
    n = len(cps)
    cp = cps[i]
    if cp in _KEYCAP_BASES:
        i += 1
        if i < n and cps[i] == _VS16:
            i += 1
        return i + 1 if i < n and cps[i] == _KEYCAP else -1
    if not _is_pictographic(cp):
        return -1
    i += 1
    if i < n and cps[i] == _VS16:
        i += 1
    if i < n and cps[i] in _MODIFIERS:
        i += 1
    if i < n and cps[i] in _TAGS:
        while i < n and cps[i] in _TAGS:
            i += 1
        if i >= n or cps[i] != _CANCEL_TAG:
            return -1
        i += 1
    return i


def is_single_emoji(text: str) -> bool:
    """True when ``text`` is exactly one emoji, with nothing before or after it.

    >>> is_single_emoji("👍"), is_single_emoji("👍🏽"), is_single_emoji("👍👍"), is_single_emoji("a")
    (True, True, False, False)
    """
    if not text or len(text) > MAX_EMOJI_CODE_POINTS:
        return False
    cps = [ord(c) for c in text]
    n = len(cps)
    if cps[0] in _REGIONAL_INDICATORS:
        return n == 2 and cps[1] in _REGIONAL_INDICATORS
    i = 0
    while True:
        i = _element_end(cps, i)
        if i < 0:
            return False
        if i == n:
            return True
        if cps[i] != _ZWJ or i + 1 >= n:
            return False
        i += 1
