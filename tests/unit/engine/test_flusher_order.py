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


def test_a_loop_closed_with_a_flush_pending_does_not_stop_the_next_loop_flushing() -> None:
    # Tests (and embedders) run one loop after another with the same server: a flush that the
    # first loop never ran must not make the flusher think the next one is scheduled.
    flusher = Flusher()
    log: list[str] = []

    first = asyncio.new_event_loop()

    def mark_then_stop() -> None:
        flusher.mark_dirty(Recorder("in the first loop", log))  # its flush is queued...
        first.stop()  # ...for the next iteration, which never comes

    first.call_soon(mark_then_stop)
    first.run_forever()
    first.close()
    assert log == []

    async def mark_and_wait(name: str) -> None:
        flusher.mark_dirty(Recorder(name, log))
        await asyncio.sleep(0)

    asyncio.run(mark_and_wait("in the second loop"))
    assert log == ["in the first loop", "in the second loop"]
