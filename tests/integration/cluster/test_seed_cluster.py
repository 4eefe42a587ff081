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
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.cluster.balancer import HAPROXY, Balancer, start_haproxy
from tests.integration.cluster.nodes import Cluster
from tests.integration.realcast.harness import APP_A, STREAM, Peer, token
from tests.integration.realcast.process import realcast_env
from tests.integration.realcast.test_seed_examples import NODE_MODULES, TIMEOUT, substitute
from tests.services import PostgresServer, RedisServer

HERE = Path(__file__).parent
REALCAST_SAMPLES = HERE.parent / "realcast"

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
    work = tmp_path / "js"
    work.mkdir()
    (work / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    example = (REALCAST_SAMPLES / "js" / "complete_chat_example.mjs").read_text(encoding="utf-8")
    viewer_token = token(APP_A, "user_abc123", "GamerPro")
    (work / "example.mjs").write_text(substitute(example, haproxy.url, viewer_token), encoding="utf-8")
    shutil.copy(REALCAST_SAMPLES / "js" / "drive_complete_chat.mjs", work / "drive.mjs")
    shutil.copy(HERE / "js" / "report_engine_ids.mjs", work / "main.mjs")
    mod_token = token(APP_A, "mod", "Mod", moderator_of=[STREAM])
    node = await asyncio.create_subprocess_exec(
        "node",
        "main.mjs",
        cwd=work,
        env={"PATH": realcast_env()["PATH"], "REALCAST_URL": haproxy.url, "MOD_TOKEN": mod_token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(node.communicate(), TIMEOUT)
    finally:
        if node.returncode is None:
            node.kill()
    output = out.decode()
    assert node.returncode == 0, output
    lines = output.splitlines()
    # The driver connects its moderator first, then imports the example: two sessions, in order.
    engines = [line.split()[1] for line in lines if line.startswith("ENGINE ")]
    assert len(engines) == 2, output
    moderator_node, example_node = (node_of(e) for e in engines)
    assert moderator_node != example_node, f"both on {example_node}: nothing crossed nodes\n{output}"
    assert "Connected!" in lines
    assert "GamerPro: Hello everyone!" in lines
    assert "Mod is typing..." in lines and "Mod: Welcome!" in lines
    assert "Viewers: 2" in lines  # counted over both nodes
    assert "ALERT: You have been banned from this chat" in lines
    assert lines[-1] == "DRIVER OK"


async def test_python_sample_across_nodes(haproxy: Balancer, tmp_path: Path) -> None:
    sample = (REALCAST_SAMPLES / "samples" / "seed_python_sample.py.txt").read_text(encoding="utf-8")
    driver = (REALCAST_SAMPLES / "samples" / "python_driver.py").read_text(encoding="utf-8")
    report = 'print(f"ENGINE {sio.eio.sid}", flush=True)  # which node the balancer chose\n'
    script = tmp_path / "sample.py"
    script.write_text(substitute(sample, haproxy.url, token(APP_A, "py_user", "PyUser")) + "\n" + report + driver)

    mod = Peer(haproxy.url)
    await mod.connect({"token": token(APP_A, "mod", "Mod", moderator_of=[STREAM]), "app_id": APP_A.app_id})
    moderator_node = node_of(mod.sio.eio.sid)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        env=realcast_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output: list[str] = []

    async def read_until(marker: str) -> None:
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()  # type: ignore[union-attr]
            if not line:
                raise AssertionError("sample exited early:\n" + "".join(output))
            output.append(line)
            if line.startswith(("FAILED", marker)):
                assert line.startswith(marker), "".join(output)
                return

    try:
        assert (await mod.call("chat:join", {"stream_id": STREAM}))["ok"] is True
        await read_until("READY")
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
        message = next(d for e, d in mod.received if e == "chat:message")
        assert (message["user_id"], message["username"], message["message"]) == (
            "py_user",
            "PyUser",
            "hello from python",
        )
        await mod.emit("chat:typing", {"stream_id": STREAM})
        await mod.call("chat:message", {"stream_id": STREAM, "message": "Welcome, Python!"})
        ack = await mod.call("moderation:ban", {"stream_id": STREAM, "target_user_id": "py_user", "reason": "test"})
        assert ack["ok"] is True
        await read_until("DONE")
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await mod.close()
