"""What every moderation store does, run against SQLite and a real PostgreSQL alike: expiry on
read, scoping, replacing, lifting, slow mode, purge, persistence across a reopen, the Change each
committed write yields, apply() of another node's change, and reload()."""

from __future__ import annotations

import json

from realcast.store import Ban, Change, ChangeKind, SlowMode

from .conftest import AnyStore, Clock, OpenStore


async def test_ban_is_active_until_it_expires(store: AnyStore, clock: Clock) -> None:
    ban = await store.ban("a", "s", "u", reason="Spam", duration=60, moderator_id="m")
    assert ban.expires_at == clock.now + 60 and ban.duration == 60
    assert store.get_ban("a", "s", "u") == ban
    clock.advance(59.9)
    assert store.get_ban("a", "s", "u") is not None
    clock.advance(0.1)
    assert store.get_ban("a", "s", "u") is None


async def test_bans_are_scoped_by_app_and_stream(store: AnyStore) -> None:
    await store.ban("a", "s", "u", reason=None, duration=None, moderator_id="m")
    assert store.get_ban("a", "s", "u") is not None
    assert store.get_ban("b", "s", "u") is None
    assert store.get_ban("a", "t", "u") is None
    assert store.get_ban("a", "s", "v") is None


async def test_permanent_ban_and_unban(store: AnyStore, clock: Clock) -> None:
    ban = await store.ban("a", "s", "u", reason="x", duration=None, moderator_id="m")
    assert ban.expires_at is None and ban.duration is None
    clock.advance(10 * 365 * 24 * 3600)
    assert store.get_ban("a", "s", "u") is not None
    assert await store.unban("a", "s", "u") is True
    assert store.get_ban("a", "s", "u") is None
    assert await store.unban("a", "s", "u") is False


async def test_reban_replaces(store: AnyStore) -> None:
    await store.ban("a", "s", "u", reason="one", duration=10, moderator_id="m")
    await store.ban("a", "s", "u", reason="two", duration=None, moderator_id="m2")
    ban = store.get_ban("a", "s", "u")
    assert ban is not None and (ban.reason, ban.expires_at, ban.moderator_id) == ("two", None, "m2")
    assert len(store.bans("a", "s")) == 1


async def test_mutes_expire_and_unmute(store: AnyStore, clock: Clock) -> None:
    mute = await store.mute("a", "s", "u", duration=300, moderator_id="m")
    assert mute.duration == 300
    assert store.get_mute("a", "s", "u") == mute
    assert await store.unmute("a", "s", "u") is True
    assert store.get_mute("a", "s", "u") is None
    await store.mute("a", "s", "u", duration=1, moderator_id="m")
    clock.advance(1)
    assert store.get_mute("a", "s", "u") is None
    assert await store.unmute("a", "s", "u") is False


async def test_slow_mode_on_and_off(store: AnyStore) -> None:
    assert store.get_slow_mode("a", "s") is None
    assert await store.set_slow_mode("a", "s", 5) is not None
    slow = store.get_slow_mode("a", "s")
    assert slow is not None and slow.interval == 5
    assert store.get_slow_mode("b", "s") is None
    assert await store.set_slow_mode("a", "s", None) is None
    assert store.get_slow_mode("a", "s") is None


async def test_list_and_purge(store: AnyStore, clock: Clock) -> None:
    await store.ban("a", "s", "u1", reason=None, duration=5, moderator_id="m")
    clock.advance(1)
    await store.ban("a", "s", "u2", reason=None, duration=None, moderator_id="m")
    await store.ban("a", "t", "u3", reason=None, duration=None, moderator_id="m")
    assert [b.user_id for b in store.bans("a", "s")] == ["u1", "u2"]
    clock.advance(5)
    assert await store.purge_expired() == 1
    assert [b.user_id for b in store.bans("a", "s")] == ["u2"]


async def test_everything_survives_reopening(open_store: OpenStore, clock: Clock) -> None:
    first = await open_store()
    await first.ban("a", "s", "u", reason="Spam", duration=3600, moderator_id="m")
    await first.ban("a", "s", "gone", reason=None, duration=5, moderator_id="m")
    await first.ban("a", "s", "lifted", reason=None, duration=None, moderator_id="m")
    await first.unban("a", "s", "lifted")
    await first.mute("a", "s", "v", duration=None, moderator_id="m")
    await first.set_slow_mode("a", "s", 7)
    await first.close()
    clock.advance(10)
    second = await open_store()
    ban = second.get_ban("a", "s", "u")
    assert ban is not None and ban.reason == "Spam" and ban.duration == 3600
    assert second.get_ban("a", "s", "gone") is None  # expired while closed
    assert second.get_ban("a", "s", "lifted") is None
    assert second.get_mute("a", "s", "v") is not None
    slow = second.get_slow_mode("a", "s")
    assert slow is not None and slow.interval == 7


async def test_each_committed_write_yields_one_change_in_order(store: AnyStore) -> None:
    seen: list[Change] = []

    async def listen(change: Change) -> None:
        # Called before the write returns, with the cache already updated.
        if change.kind is ChangeKind.BAN:
            assert store.get_ban("a", "s", "u") == change.record
        seen.append(change)

    store.add_listener(listen)
    ban = await store.ban("a", "s", "u", reason="r", duration=None, moderator_id="m")
    assert seen == [Change(ChangeKind.BAN, "a", "s", "u", ban)]
    mute = await store.mute("a", "s", "u", duration=9, moderator_id="m")
    slow = await store.set_slow_mode("a", "s", 3)
    await store.set_slow_mode("a", "s", None)
    await store.unmute("a", "s", "u")
    await store.unban("a", "s", "u")
    assert seen[1:] == [
        Change(ChangeKind.MUTE, "a", "s", "u", mute),
        Change(ChangeKind.SLOW_MODE, "a", "s", None, slow),
        Change(ChangeKind.SLOW_MODE, "a", "s", None, None),
        Change(ChangeKind.UNMUTE, "a", "s", "u", None),
        Change(ChangeKind.UNBAN, "a", "s", "u", None),
    ]


async def test_a_failing_listener_does_not_undo_the_write(store: AnyStore) -> None:
    async def broken(change: Change) -> None:
        raise ConnectionError("broker down")

    store.add_listener(broken)
    await store.ban("a", "s", "u", reason=None, duration=None, moderator_id="m")
    assert store.get_ban("a", "s", "u") is not None


async def test_apply_brings_another_node_in_line_without_a_write(open_store: OpenStore, clock: Clock) -> None:
    node1, node2 = await open_store(), await open_store()
    changes: list[Change] = []

    async def publish(change: Change) -> None:
        changes.append(Change.from_dict(json.loads(json.dumps(change.as_dict()))))  # as over the wire

    node1.add_listener(publish)
    await node1.ban("a", "s", "u", reason="Spam", duration=60, moderator_id="m")
    await node1.mute("a", "s", "v", duration=None, moderator_id="m")
    await node1.set_slow_mode("a", "s", 10)
    assert node2.get_ban("a", "s", "u") is None  # node2 has not heard yet
    for change in changes:
        node2.apply(change)
        node2.apply(change)  # idempotent: a change heard twice changes nothing more
    assert node2.get_ban("a", "s", "u") == node1.get_ban("a", "s", "u")
    assert node2.get_mute("a", "s", "v") == node1.get_mute("a", "s", "v")
    assert node2.get_slow_mode("a", "s") == node1.get_slow_mode("a", "s")
    clock.advance(60)
    assert node2.get_ban("a", "s", "u") is None  # expiry holds for applied records too
    changes.clear()
    await node1.unmute("a", "s", "v")
    await node1.set_slow_mode("a", "s", None)
    for change in changes:
        node2.apply(change)
    assert node2.get_mute("a", "s", "v") is None and node2.get_slow_mode("a", "s") is None
    # apply() wrote nothing: a third node reading the database sees node1's writes only.
    node2.apply(Change(ChangeKind.BAN, "a", "s", "ghost", Ban("a", "s", "ghost", None, clock.now, None, "m")))
    node3 = await open_store()
    assert node3.get_ban("a", "s", "ghost") is None


async def test_reload_catches_up_with_changes_missed(open_store: OpenStore) -> None:
    node1, node2 = await open_store(), await open_store()
    await node1.ban("a", "s", "u", reason=None, duration=None, moderator_id="m")
    await node1.set_slow_mode("a", "s", 4)
    await node2.mute("a", "s", "v", duration=None, moderator_id="m")
    await node1.unmute("a", "s", "v")  # node2 never hears of it
    node2.apply(Change(ChangeKind.SLOW_MODE, "a", "t", None, SlowMode("a", "t", 9, 0.0)))  # never committed
    assert node2.get_ban("a", "s", "u") is None and node2.get_mute("a", "s", "v") is not None
    await node2.reload()
    assert node2.get_ban("a", "s", "u") == node1.get_ban("a", "s", "u")
    assert node2.get_mute("a", "s", "v") is None
    assert node2.get_slow_mode("a", "s") == SlowMode("a", "s", 4, node1.get_slow_mode("a", "s").updated_at)  # type: ignore[union-attr]
    assert node2.get_slow_mode("a", "t") is None
