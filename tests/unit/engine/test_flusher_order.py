"""Flusher.flush_first: an item flushed before every session of the turn, whenever it was marked."""

from __future__ import annotations

import asyncio

from engineio_min.fanout import Flusher


class Recorder:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def flush_pending(self) -> None:
        self.log.append(self.name)


async def test_flush_first_items_go_before_sessions_marked_earlier() -> None:
    flusher = Flusher()
    log: list[str] = []
    flusher.mark_dirty(Recorder("member 1", log))
    flusher.flush_first(Recorder("publications", log))
    flusher.mark_dirty(Recorder("member 2", log))
    assert log == []  # nothing before the end of the turn
    await asyncio.sleep(0)
    assert log == ["publications", "member 1", "member 2"]
    flusher.flush_first(Recorder("alone", log))  # schedules a flush by itself
    await asyncio.sleep(0)
    assert log[-1] == "alone"
