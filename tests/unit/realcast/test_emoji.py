"""realcast.emoji: exactly one emoji grapheme."""

from __future__ import annotations

import pytest

from realcast.emoji import is_single_emoji


@pytest.mark.parametrize(
    "text",
    [
        "👍",
        "👋",
        "❤️",  # text-default heart with VS16
        "©",  # text-default pictograph without VS16
        "👍🏽",  # skin-tone modifier
        "👨‍👩‍👧‍👦",  # family ZWJ sequence
        "👩🏽‍💻",  # modifier + ZWJ
        "🏳️‍🌈",  # VS16 + ZWJ
        "🇫🇷",  # regional-indicator pair
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland tag sequence
        "1️⃣",
        "#⃣",
        "🫠",  # Unicode 14
    ],
)
def test_accepts_one_emoji(text: str) -> None:
    assert is_single_emoji(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        "1",
        "👍👍",
        "👍 ",
        " 👍",
        "🇫",  # lone regional indicator
        "🇫🇷🇫",
        "🏻",  # lone modifier
        "👍\u200d",  # dangling ZWJ
        "\u200d👍",
        "🏴\U000e0067\U000e0062",  # tag sequence without CANCEL TAG
        "1\u20e3\u20e3",
        "👍" + "\u200d👍" * 10,  # over the length bound
        "\ufe0f",
    ],
)
def test_refuses_anything_else(text: str) -> None:
    assert not is_single_emoji(text)
