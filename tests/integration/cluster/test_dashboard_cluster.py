"""The dashboard on a cluster node: the cluster's viewer counts, this node's connections and actions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
import redis

from tests.integration.cluster.nodes import Cluster, user
from tests.integration.realcast.harness import API_KEY_A, APP_A, Peer
from tests.integration.realcast.test_dashboard import AdminClient
from tests.services import PostgresServer, RedisServer


@pytest.fixture
def two_nodes(redis_server: RedisServer, postgres_server: PostgresServer) -> Iterator[Cluster]:
    redis.Redis.from_url(redis_server.url).flushall()
    nodes = Cluster(redis_server.url, postgres_server.create_database("dashboard_cluster"), n=2)
    yield nodes
    nodes.stop_all()


async def test_a_node_dashboard_counts_viewers_over_the_cluster(two_nodes: Cluster) -> None:
    stream = "dash-cluster"
    peers: list[Peer] = []
    admin = AdminClient(two_nodes.url("n1"))
    try:
        here = await user(two_nodes.url("n1"), "alice", peers=peers)
        there = await user(two_nodes.url("n2"), "bob", peers=peers)
        mod = await user(two_nodes.url("n2"), "mod", moderator_of=[stream], peers=peers)
        for peer in (here, there, mod):
            assert (await peer.call("chat:join", {"stream_id": stream}))["ok"]
        assert (await mod.call("moderation:slow-mode", {"stream_id": stream, "enabled": True, "interval": 5}))["ok"]
        await admin.sign_in({"app_id": APP_A.app_id, "api_key": API_KEY_A})
        snap = await admin.snapshot_where(lambda s: s["streams"] and s["streams"][0]["viewers"] == 3)
        assert (snap["cluster"], snap["node_id"]) == (True, "n1")
        assert snap["connections"]["authenticated"] == 1  # alice: the only client of n1
        assert snap["streams"][0]["slow_mode"] == {"enabled": True, "interval": 5}  # shared moderation state
        assert snap["moderation"] == []  # the slow-mode action was taken on n2: n2's trail has it
        await there.close()
        await admin.snapshot_where(lambda s: s["streams"] and s["streams"][0]["viewers"] == 2)
    finally:
        await asyncio.wait_for(admin.sio.disconnect(), 5)
        for peer in peers:
            with contextlib.suppress(Exception):
                await peer.close()
