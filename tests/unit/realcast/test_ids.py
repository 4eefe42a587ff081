"""realcast.ids: time-ordered unique message ids and ISO-8601 timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from rc_fakes import FakeClock

from realcast.ids import MessageIdFactory, iso_utc

ID_RE = re.compile(r"msg_[0-9A-HJKMNP-TV-Z]{26}")


def test_ids_have_the_documented_shape() -> None:
    assert ID_RE.fullmatch(MessageIdFactory().new_id())


def test_ids_sort_in_creation_order_within_one_millisecond(clock: FakeClock) -> None:
    factory = MessageIdFactory(clock)
    ids = [factory.new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert ids == sorted(ids)


def test_ids_sort_across_milliseconds_and_survive_a_clock_step_back(clock: FakeClock) -> None:
    factory = MessageIdFactory(clock)
    a = factory.new_id()
    clock.advance(0.002)
    b = factory.new_id()
    clock.advance(-10.0)  # NTP step backwards
    c = factory.new_id()
    assert a < b < c


def test_later_millisecond_sorts_after_even_with_high_randomness(clock: FakeClock) -> None:
    high = MessageIdFactory(clock, randbytes=lambda n: b"\xff" * n)
    first = high.new_id()
    clock.advance(0.001)
    low = MessageIdFactory(clock, randbytes=lambda n: b"\x00" * n)
    assert low.new_id() > first


def test_counter_overflow_borrows_the_next_millisecond(clock: FakeClock) -> None:
    factory = MessageIdFactory(clock, randbytes=lambda n: b"\xff" * n)
    a = factory.new_id()
    b = factory.new_id()
    c = factory.new_id()
    assert a < b < c


def test_iso_utc_is_zulu_with_milliseconds() -> None:
    assert iso_utc(1733738400.0) == "2024-12-09T10:00:00.000Z"
    assert iso_utc(1733738400.4567) == "2024-12-09T10:00:00.456Z"
    parsed = datetime.fromisoformat(iso_utc(1733738400.25).replace("Z", "+00:00"))
    assert parsed == datetime(2024, 12, 9, 10, 0, 0, 250000, tzinfo=UTC)
