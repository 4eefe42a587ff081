"""Three real nodes over a real Redis and PostgreSQL behave as one server (issue 9, item 3).

Each test uses its own stream, so the three nodes are shared by the module. Clients are the
stock python-socketio client; "A on n1, B on n2, the backend API on n3".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from tests.integration.cluster.nodes import Cluster, http, user
from tests.integration.realcast.harness import Peer
from tests.services import PostgresServer, RedisServer


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, postgres_server: PostgresServer) -> Iterator[Cluster]:
    redis.Redis.from_url(redis_server.url).flushall()
    database_url = postgres_server.create_database("cross_node")
    nodes = Cluster(redis_server.url, database_url, n=3)
    yield nodes
    nodes.stop_all()


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        with contextlib.suppress(Exception):  # teardown: a peer a test already disconnected
            await peer.close()


async def test_chat_typing_reactions_cross_nodes(cluster: Cluster, peers: list[Peer]) -> None:
    s = "chat-x"
    alice = await user(cluster.url("n1"), "alice", "Alice", peers=peers)
    bob = await user(cluster.url("n2"), "bob", "Bob", peers=peers)
    first = await alice.call("chat:join", {"stream_id": s})
    assert first["ok"] and first["online_users"] == 1
    joined = await bob.call("chat:join", {"stream_id": s})
    assert joined["online_users"] == 2  # counted over both nodes
    sent = await alice.call("chat:message", {"stream_id": s, "message": "hello from n1"})
    assert sent["ok"]
    got = await bob.next("chat:message")
    assert (got["message"], got["user_id"], got["message_id"]) == ("hello from n1", "alice", sent["message_id"])
    assert (await alice.next("chat:message"))["message_id"] == sent["message_id"]  # sender included, once
    await alice.nothing("chat:message", 0.3)

    await bob.emit("chat:typing", {"stream_id": s})
    assert (await alice.next("chat:typing"))["user_id"] == "bob"
    await bob.nothing("chat:typing", 0.3)

    await alice.call("reaction:send", {"stream_id": s, "emoji": "👍"})
    assert (await bob.next("reaction.sent"))["emoji"] == "👍"

    # A third client on n3 sees the history of both nodes, in order.
    await bob.call("chat:message", {"stream_id": s, "message": "hello from n2"})
    carol = await user(cluster.url("n3"), "carol", peers=peers)
    history = (await carol.call("chat:join", {"stream_id": s}))["recent_messages"]
    assert [m["message"] for m in history] == ["hello from n1", "hello from n2"]


async def test_recent_messages_are_the_last_50_of_all_nodes(cluster: Cluster, peers: list[Peer]) -> None:
    s = "history-x"
    senders = [
        await user(cluster.url(n), f"writer{n}", peers=peers, moderator_of=[s])  # moderators: no chat limits
        for n in ("n1", "n2")
    ]
    sent = []
    for i in range(60):
        ack = await senders[i % 2].call("chat:message", {"stream_id": s, "message": f"m{i}"})
        assert ack["ok"], ack
        sent.append(f"m{i}")
        if i % 4 == 3:
            await asyncio.sleep(1.0)  # stay under 5 per second per connection
    reader = await user(cluster.url("n3"), "reader", peers=peers)
    history = (await reader.call("chat:join", {"stream_id": s}))["recent_messages"]
    assert [m["message"] for m in history] == sent[-50:]


async def test_viewer_counts_are_distinct_users_over_the_cluster(cluster: Cluster, peers: list[Peer]) -> None:
    s = "count-x"
    watcher = await user(cluster.url("n3"), "watcher", peers=peers)
    await watcher.call("stream:subscribe", {"stream_id": s})
    assert (await watcher.next("viewer.count.update"))["count"] == 1
    tab1 = await user(cluster.url("n1"), "dana", "Dana", peers=peers)
    tab2 = await user(cluster.url("n2"), "dana", "Dana", peers=peers)
    assert (await watcher.next("viewer.joined"))["user_id"] == "watcher"  # its own arrival, as on one node
    await tab1.call("stream:subscribe", {"stream_id": s})
    joined = await watcher.next("viewer.joined")
    assert (joined["user_id"], joined["username"]) == ("dana", "Dana")
    subscribed = await tab2.call("stream:subscribe", {"stream_id": s})
    assert subscribed["viewers"] == 2  # dana's second tab, on another node, is the same viewer
    await asyncio.sleep(1.5)
    counts = [c["count"] for c in watcher.drain("viewer.count.update")]
    assert counts and counts[-1] == 2 and 3 not in counts
    await watcher.nothing("viewer.joined", 0.2)  # no second join for the second tab
    await tab1.close()
    await asyncio.sleep(1.2)
    await watcher.nothing("viewer.left", 0.2)  # dana still watches on n2
    await tab2.close()
    left = await watcher.next("viewer.left", 3)
    assert left["user_id"] == "dana"
    await asyncio.sleep(1.2)
    assert watcher.drain("viewer.count.update")[-1]["count"] == 1


async def test_count_updates_are_coalesced_per_second(cluster: Cluster, peers: list[Peer]) -> None:
    s = "coalesce-x"
    watcher = await user(cluster.url("n1"), "w", peers=peers)
    await watcher.call("stream:subscribe", {"stream_id": s})
    await watcher.next("viewer.count.update")
    crowd = [await user(cluster.url(f"n{1 + i % 3}"), f"c{i}", peers=peers) for i in range(9)]
    start = time.monotonic()
    await asyncio.gather(*(c.call("stream:subscribe", {"stream_id": s}) for c in crowd))
    await asyncio.sleep(2.5)
    updates = watcher.drain("viewer.count.update")
    elapsed = time.monotonic() - start
    assert updates[-1]["count"] == 10
    assert len(updates) <= elapsed + 1  # at most one per second (the first goes out at once)


async def test_backend_api_on_any_node_changes_the_stream_for_everyone(cluster: Cluster, peers: list[Peer]) -> None:
    s = "live-x"
    a = await user(cluster.url("n1"), "a", peers=peers)
    b = await user(cluster.url("n2"), "b", peers=peers)
    for p in (a, b):
        assert (await p.call("stream:subscribe", {"stream_id": s}))["status"] == "offline"
    status, body = await http(cluster.url("n3"), "POST", f"/api/v1/apps/app_xyz789/streams/{s}/live", {"title": "T"})
    assert status == 200 and body["status"] == "live"
    for p in (a, b):
        live = await p.next("stream.live")
        assert live["title"] == "T"
    late = await user(cluster.url("n2"), "late", peers=peers)
    seen = await late.call("stream:subscribe", {"stream_id": s})
    assert (seen["status"], seen["title"]) == ("live", "T")
    status, body = await http(cluster.url("n1"), "GET", f"/api/v1/apps/app_xyz789/streams/{s}")
    assert (status, body["status"], body["viewers"]) == (200, "live", 3)
    status, body = await http(cluster.url("n2"), "POST", f"/api/v1/apps/app_xyz789/streams/{s}/offline", {})
    assert status == 200 and body["changed"] is True
    for p in (a, b, late):
        assert "duration" in await p.next("stream.offline")


async def test_analytics_over_the_cluster(cluster: Cluster, peers: list[Peer]) -> None:
    s = "analytics-x"
    a = await user(cluster.url("n1"), "an1", peers=peers)
    b = await user(cluster.url("n2"), "an2", peers=peers)
    analyst = await user(cluster.url("n3"), "analyst", peers=peers)
    for p in (a, b):
        await p.call("chat:join", {"stream_id": s})
    await a.call("chat:message", {"stream_id": s, "message": "x"})
    await b.call("chat:message", {"stream_id": s, "message": "y"})
    await b.call("reaction:send", {"stream_id": s, "emoji": "🔥"})
    now: dict[str, Any] = await analyst.call("analytics:subscribe", {"stream_id": s})
    assert now["ok"]
    assert (now["viewers"], now["messages_per_minute"], now["reactions_per_minute"]) == (2, 2, 1)
    assert now["peak_viewers"] == 2
    tick = await analyst.next("analytics:update", 3)
    assert tick["messages_per_minute"] == 2 and tick["average_watch_time"] >= 0


async def test_ban_is_enforced_and_evicts_on_every_node(cluster: Cluster, peers: list[Peer]) -> None:
    s = "ban-x"
    mod = await user(cluster.url("n1"), "mod1", "Mod", peers=peers, moderator_of=[s])
    tab_a = await user(cluster.url("n2"), "troll", "Troll", peers=peers)
    tab_b = await user(cluster.url("n3"), "troll", "Troll", peers=peers)
    witness = await user(cluster.url("n3"), "witness", peers=peers)
    for p in (mod, tab_a, tab_b, witness):
        assert (await p.call("chat:join", {"stream_id": s}))["ok"]
    ack = await mod.call("moderation:ban", {"stream_id": s, "target_user_id": "troll", "reason": "spam"})
    acked_at = time.monotonic()
    assert ack["ok"], ack
    # Enforced on both of the troll's nodes within 100 ms of the ack.
    refused = await asyncio.gather(
        *(tab.call("chat:message", {"stream_id": s, "message": "still here?"}) for tab in (tab_a, tab_b))
    )
    assert time.monotonic() - acked_at < 0.1 + 0.05 * 2  # two round trips of the check itself
    assert [r["error"]["type"] for r in refused] == ["permission_denied", "permission_denied"]
    for tab in (tab_a, tab_b):
        assert (await tab.next("user.banned"))["user_id"] == "troll"
    assert (await witness.next("user.banned"))["reason"] == "spam"
    # Evicted from the stream on every node: chat no longer reaches either tab.
    await mod.call("chat:message", {"stream_id": s, "message": "after the ban"})
    assert (await witness.next("chat:message"))["message"] == "after the ban"
    for tab in (tab_a, tab_b):
        await tab.nothing("chat:message", 0.3)
    rejoin = await tab_a.call("chat:join", {"stream_id": s})
    assert rejoin["error"]["type"] == "permission_denied"


async def test_mute_unmute_and_rank_checks_across_nodes(cluster: Cluster, peers: list[Peer]) -> None:
    s = "mute-x"
    mod = await user(cluster.url("n1"), "mod2", peers=peers, moderator_of=[s])
    target = await user(cluster.url("n2"), "loud", peers=peers)
    star = await user(cluster.url("n3"), "star", peers=peers, broadcaster_of=[s])
    ack = await mod.call("moderation:mute", {"stream_id": s, "target_user_id": "loud", "duration": 60})
    assert ack["ok"], ack
    refused = await target.call("chat:message", {"stream_id": s, "message": "x"})
    assert refused["error"]["type"] == "permission_denied"
    assert (await mod.call("moderation:unmute", {"stream_id": s, "target_user_id": "loud"}))["ok"]
    assert (await target.call("chat:message", {"stream_id": s, "message": "back"}))["ok"]
    # The broadcaster is connected on n3 only: n1 must ask the other nodes for their rank.
    denied = await mod.call("moderation:ban", {"stream_id": s, "target_user_id": "star"})
    assert denied["error"]["type"] == "permission_denied"
    await star.close()


async def test_delete_a_message_sent_on_another_node(cluster: Cluster, peers: list[Peer]) -> None:
    s = "delete-x"
    author = await user(cluster.url("n2"), "author", peers=peers)
    mod = await user(cluster.url("n1"), "mod3", peers=peers, moderator_of=[s])
    reader = await user(cluster.url("n3"), "reader3", peers=peers)
    for p in (author, mod, reader):
        await p.call("chat:join", {"stream_id": s})
    sent = await author.call("chat:message", {"stream_id": s, "message": "oops"})
    ack = await mod.call("moderation:delete-message", {"stream_id": s, "message_id": sent["message_id"]})
    assert ack["ok"], ack
    for p in (author, reader):
        assert (await p.next("chat.message.deleted"))["message_id"] == sent["message_id"]
    again = await mod.call("moderation:delete-message", {"stream_id": s, "message_id": sent["message_id"]})
    assert again["error"]["type"] == "invalid_request"
    history = (await (await user(cluster.url("n3"), "late3", peers=peers)).call("chat:join", {"stream_id": s}))
    assert sent["message_id"] not in [m["message_id"] for m in history["recent_messages"]]


async def test_slow_mode_is_per_user_across_nodes(cluster: Cluster, peers: list[Peer]) -> None:
    s = "slow-x"
    mod = await user(cluster.url("n3"), "mod4", peers=peers, moderator_of=[s])
    tab_a = await user(cluster.url("n1"), "fast", peers=peers)
    tab_b = await user(cluster.url("n2"), "fast", peers=peers)
    other = await user(cluster.url("n2"), "other", peers=peers)
    assert (await mod.call("moderation:slow-mode", {"stream_id": s, "enabled": True, "interval": 30}))["ok"]
    assert (await tab_a.call("chat:message", {"stream_id": s, "message": "one"}))["ok"]
    second = await tab_b.call("chat:message", {"stream_id": s, "message": "two"})
    assert second["error"]["type"] == "rate_limit_exceeded" and 25 < second["error"]["retry_after"] <= 30
    assert (await other.call("chat:message", {"stream_id": s, "message": "mine"}))["ok"]
    assert (await mod.call("chat:message", {"stream_id": s, "message": "exempt"}))["ok"]
    assert (await mod.call("chat:message", {"stream_id": s, "message": "exempt again"}))["ok"]
    joined = await other.call("chat:join", {"stream_id": s})
    assert joined["slow_mode"] == {"enabled": True, "interval": 30}


async def test_a_clean_stop_takes_the_nodes_viewers_out_at_once(cluster: Cluster, peers: list[Peer]) -> None:
    s = "stop-x"
    extra = await asyncio.to_thread(cluster.start, "n9")
    watcher = await user(cluster.url("n1"), "w9", peers=peers)
    await watcher.call("stream:subscribe", {"stream_id": s})
    leaver = await user(extra.url, "leaver", peers=peers)
    await leaver.call("stream:subscribe", {"stream_id": s})
    await asyncio.sleep(1.1)
    assert watcher.drain("viewer.count.update")[-1]["count"] == 2
    stopped_at = time.monotonic()
    status, err = await asyncio.to_thread(cluster.stop, "n9")
    assert status == 0, err
    update = await watcher.next("viewer.count.update", 3)
    assert update["count"] == 1 and time.monotonic() - stopped_at < 2.5
