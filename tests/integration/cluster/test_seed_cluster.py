"""The seed's own samples on a cluster, through HAProxy (issue 9, "Done when").

Two real ``realcast serve`` nodes, n1 and n2, over the session's redis-server and PostgreSQL,
behind a real haproxy configured from deploy/haproxy.cfg. The seed's JS "Complete Chat Example"
and its Python sample (URL and token substituted, nothing else) connect through the balancer,
and so does their moderator; the balancer deals new sessions out in turn, so the moderator and
the sample's user land on different nodes, which each test checks from the Engine.IO session
ids (they start with the node's id): every message, typing notice, reaction, viewer count and
the ban between them crosses from one node to the other.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.cluster.balancer import HAPROXY, Balancer, start_haproxy
from tests.integration.cluster.nodes import Cluster
from tests.integration.realcast.harness import APP_A, STREAM, Peer, token
from tests.integration.realcast.test_seed_examples import (
    NODE_MODULES,
    TIMEOUT,
    PythonSample,
    assert_complete_chat_output,
    moderate_the_sample,
    run_complete_chat_example,
)
from tests.services import PostgresServer, RedisServer

HERE = Path(__file__).parent

pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (apt-get install haproxy)")


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, postgres_server: PostgresServer) -> Iterator[Cluster]:
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()  # an earlier test may have stopped it
    redis.Redis.from_url(redis_server.url).flushall()
    nodes = Cluster(redis_server.url, postgres_server.create_database("seed_cluster"), n=2)
    yield nodes
    nodes.stop_all()


@pytest.fixture(scope="module")
def haproxy(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Balancer]:
    ports = {node_id: cluster.nodes[node_id].port for node_id in ("n1", "n2")}
    balancer = start_haproxy(tmp_path_factory.mktemp("haproxy"), ports)
    try:
        yield balancer
    finally:
        balancer.stop()


def node_of(engine_id: str) -> str:
    node, dot, rest = engine_id.partition(".")
    assert dot and node in ("n1", "n2") and rest, f"session id {engine_id!r} does not name a node"
    return node


@pytest.mark.skipif(shutil.which("node") is None or not NODE_MODULES.is_dir(), reason="needs node + tests/js")
async def test_js_complete_chat_example_across_nodes(haproxy: Balancer, tmp_path: Path) -> None:
    lines = await run_complete_chat_example(haproxy.url, tmp_path, wrapper=HERE / "js" / "report_engine_ids.mjs")
    # The driver connects its moderator first, then imports the example: two sessions, in order.
    engines = [line.split()[1] for line in lines if line.startswith("ENGINE ")]
    assert len(engines) == 2, lines
    moderator_node, example_node = (node_of(e) for e in engines)
    assert moderator_node != example_node, f"both on {example_node}: nothing crossed nodes\n{lines}"
    assert_complete_chat_output(lines)  # "Viewers: 2" counted over both nodes


async def test_python_sample_across_nodes(haproxy: Balancer, tmp_path: Path) -> None:
    report = 'print(f"ENGINE {sio.eio.sid}", flush=True)  # which node the balancer chose\n'
    sample = PythonSample(haproxy.url, tmp_path, extra=report)
    mod = Peer(haproxy.url)
    await mod.connect({"token": token(APP_A, "mod", "Mod", moderator_of=[STREAM]), "app_id": APP_A.app_id})
    moderator_node = node_of(mod.sio.eio.sid)
    await sample.start()
    try:
        assert (await mod.call("chat:join", {"stream_id": STREAM}))["ok"] is True
        await sample.read_until("READY")
        output = sample.output
        assert "Connected to RealCast\n" in output  # the sample's own print
        engines = [line.split()[1] for line in output if line.startswith("ENGINE ")]
        assert len(engines) == 1, output
        assert node_of(engines[0]) != moderator_node, f"both on {moderator_node}: nothing crossed nodes"
        # The sample saw its own events come back on its node; the moderator gets them through
        # Redis, and viewer.joined may be held up to a second by presence coalescing: wait.
        wanted = {"chat:message", "reaction.sent", "chat:typing", "viewer.joined"}
        for _ in range(int(TIMEOUT / 0.05)):
            if wanted <= {e for e, _ in mod.received}:
                break
            await asyncio.sleep(0.05)
        assert wanted <= {e for e, _ in mod.received}, mod.received
        assert ("viewer.joined", {"stream_id": STREAM, "user_id": "py_user", "username": "PyUser"}) in mod.received
        await moderate_the_sample(mod, sample)
    finally:
        await sample.stop()
        await mod.close()
