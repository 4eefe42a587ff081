"""engineio_min.heartbeat: one loop timer serving many fixed-delay deadlines."""

from __future__ import annotations

import asyncio

from engineio_min.heartbeat import DeadlineQueue, Entry


class Holder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.entry: Entry[Holder] | None = None


def make_queue(delay: float, fired: list[tuple[str, float]]) -> DeadlineQueue[Holder]:
    def fire(holder: Holder) -> None:
        holder.entry = None
        fired.append((holder.name, asyncio.get_running_loop().time()))

    return DeadlineQueue(delay, fire)


async def test_each_fires_its_delay_after_being_added_in_order() -> None:
    fired: list[tuple[str, float]] = []
    queue = make_queue(0.1, fired)
    loop = asyncio.get_running_loop()
    added = {}
    for name in "abc":
        holder = Holder(name)
        holder.entry = queue.add(holder)
        added[name] = loop.time()
        await asyncio.sleep(0.03)
    await asyncio.sleep(0.2)
    assert [name for name, _ in fired] == ["a", "b", "c"]
    for name, at in fired:
        assert 0.1 - 0.002 <= at - added[name] < 0.1 + 0.05, (name, at - added[name])
    assert len(queue) == 0


async def test_forgotten_entries_never_fire_and_do_not_keep_a_timer() -> None:
    fired: list[tuple[str, float]] = []
    queue = make_queue(0.05, fired)
    a, b = Holder("a"), Holder("b")
    a.entry = queue.add(a)
    b.entry = queue.add(b)
    a.entry.cancel()
    await asyncio.sleep(0.1)
    assert [name for name, _ in fired] == ["b"]
    b.entry = queue.add(b)
    b.entry.cancel()
    await asyncio.sleep(0.1)
    assert [name for name, _ in fired] == ["b"]


async def test_a_cancelled_entry_lets_go_of_its_holder_at_once() -> None:
    # A closed session must not stay reachable from the queue until its deadline (issue 12).
    queue = make_queue(30.0, [])
    holder = Holder("h")
    entry = queue.add(holder)
    assert entry.holder is holder
    entry.cancel()
    assert entry.holder is None
    assert len(queue) == 1  # only a husk is left, skipped when it comes due


async def test_re_adding_from_fire_schedules_the_next_round() -> None:
    fired: list[str] = []
    queue: DeadlineQueue[Holder]

    def fire(holder: Holder) -> None:
        fired.append(holder.name)
        holder.entry = queue.add(holder) if len(fired) < 3 else None

    queue = DeadlineQueue(0.02, fire)
    h = Holder("h")
    h.entry = queue.add(h)
    await asyncio.sleep(0.2)
    assert fired == ["h", "h", "h"]


def test_a_new_loop_starts_clean() -> None:
    fired: list[tuple[str, float]] = []
    queue = make_queue(0.01, fired)
    stale = Holder("stale")

    async def add_and_leave() -> None:
        stale.entry = queue.add(stale)  # this loop closes before it is due

    async def add_and_wait() -> None:
        fresh = Holder("fresh")
        fresh.entry = queue.add(fresh)
        await asyncio.sleep(0.05)

    asyncio.run(add_and_leave())
    asyncio.run(add_and_wait())
    assert [name for name, _ in fired] == ["fresh"]
