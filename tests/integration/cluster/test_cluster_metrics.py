"""/metrics of a cluster node over a real Redis: the node label and the cluster families move."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.cluster.nodes import Cluster, user
from tests.integration.realcast.harness import Peer
from tests.services import PostgresServer, RedisServer


@pytest.fixture
def two_nodes(redis_server: RedisServer, fresh_redis_url: str, postgres_server: PostgresServer) -> Iterator[Cluster]:
    nodes = Cluster(fresh_redis_url, postgres_server.create_database("metrics_cluster"), n=2)
    yield nodes
    nodes.stop_all()


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_cluster_families_follow_cross_node_chat(two_nodes: Cluster) -> None:
    s = "metrics-x"
    peers: list[Peer] = []
    try:
        a = await user(two_nodes.url("n1"), "ma", peers=peers)
        b = await user(two_nodes.url("n2"), "mb", peers=peers)
        for p in (a, b):
            assert (await p.call("chat:join", {"stream_id": s}))["ok"]
        before = await asyncio.to_thread(scrape, two_nodes.url("n2"))
        for i in range(3):
            assert (await a.call("chat:message", {"stream_id": s, "message": f"m{i}"}))["ok"]
            await b.next("chat:message")
        n1 = await asyncio.to_thread(scrape, two_nodes.url("n1"))
        n2 = await asyncio.to_thread(scrape, two_nodes.url("n2"))
    finally:
        for peer in peers:
            await peer.close()

    def get(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, node: str, **labels: str) -> float:
        return samples[(name, frozenset({"node": node, **labels}.items()))]

    assert get(n1, "realcast_cluster_healthy", "n1") == 1 and get(n2, "realcast_cluster_healthy", "n2") == 1
    # n1 published each message once; n2 received them from Redis and delivered them to its member.
    assert get(n1, "realcast_cluster_messages_total", "n1", outcome="published") >= 3
    received = get(n2, "realcast_cluster_messages_total", "n2", outcome="received")
    assert received - get(before, "realcast_cluster_messages_total", "n2", outcome="received") >= 3
    assert get(n2, "realcast_cluster_messages_total", "n2", outcome="dropped") == 0
