"""MemoryTrimmer: trims only after the open connections fell well below their peak."""

from __future__ import annotations

from realcast.memory import MIN_DROP, MemoryTrimmer, glibc_malloc_trim


def test_trims_once_after_a_large_drop_and_not_under_churn() -> None:
    open_now = [0]
    calls: list[int] = []
    trimmer = MemoryTrimmer(lambda: open_now[0], lambda: calls.append(1))
    for level in (500, 2000, 1990, 2000, 1700):  # growth, then churn around the peak
        open_now[0] = level
        trimmer.tick()
    assert calls == []
    open_now[0] = 20  # the storm is over
    trimmer.tick()
    trimmer.tick()  # and nothing more to give back at the same level
    assert calls == [1] and trimmer.trims == 1
    open_now[0] = 20 + MIN_DROP - 1  # small servers: a drop below MIN_DROP is not worth a trim
    trimmer.tick()
    open_now[0] = 21
    trimmer.tick()
    assert calls == [1]


def test_without_malloc_trim_nothing_is_called() -> None:
    open_now = [1000]
    trimmer = MemoryTrimmer(lambda: open_now[0], None)
    trimmer.tick()
    open_now[0] = 0
    trimmer.tick()
    assert trimmer.trims == 0


def test_glibc_is_found_here() -> None:
    # This project's machines run Debian (glibc): the real function must be found and callable.
    trim = glibc_malloc_trim()
    assert trim is not None
    trim()
