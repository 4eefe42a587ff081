"""deploy/haproxy.cfg (and deploy/nginx.conf) in front of two real ``realcast serve`` nodes.

The nodes are n1 and n2, each its own process, data directory and port, with no Redis: they
share nothing, so a request that reaches the wrong node finds no session (HTTP 400 "Session ID
unknown") and its client fails. Every client below talks to the balancer only, and must
authenticate, join and get each of its chat messages back; long-polling clients make dozens of
requests each, all of which must reach the node that owns their session (the sid names it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio

from ..realcast.harness import APP_A, STREAM, token
from ..realcast.process import ROOT, ServerProcess
from .balancer import HAPROXY, NGINX, Balancer, realcast_nodes, start_haproxy, start_nginx

NODE = shutil.which("node")
NODE_MODULES = ROOT / "tests" / "js" / "node_modules"
HERE = Path(__file__).parent
NODE_IDS = ("n1", "n2")
CLIENTS_PER_MODE = 3  # odd: without sid routing, round-robin could not line every request up by luck
ROUNDS = 3
TIMEOUT = 8.0

pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (apt-get install haproxy)")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    with realcast_nodes(tmp_path_factory.mktemp("nodes"), NODE_IDS) as started:
        yield started


@pytest.fixture(scope="module")
def haproxy(nodes: dict[str, ServerProcess], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Balancer]:
    balancer = start_haproxy(tmp_path_factory.mktemp("haproxy"), {n: p.port for n, p in nodes.items()})
    try:
        yield balancer
    finally:
        balancer.stop()


def node_of(sid: str) -> str:
    node, dot, rest = sid.partition(".")
    assert dot and len(rest) == 20, f"sid {sid!r} does not name its node"
    return node


def http(method: str, url: str, body: str | None = None) -> tuple[int, str]:
    data = None if body is None else body.encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "text/plain;charset=UTF-8")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def handshake(base_url: str) -> str:
    status, body = http("GET", f"{base_url}/socket.io/?EIO=4&transport=polling")
    assert status == 200 and body.startswith("0{"), (status, body)
    sid: str = json.loads(body[1:])["sid"]
    return sid


# -- Python client (python-socketio, stock) -----------------------------------------------------

async def python_client(url: str, user: str, transports: list[str]) -> dict[str, Any]:
    """One stock AsyncClient: authenticate, join, ROUNDS messages each seen coming back."""
    sio = socketio.AsyncClient(reconnection=False)
    messages: asyncio.Queue[str] = asyncio.Queue()
    authenticated = asyncio.Event()
    sio.on("authenticated", lambda *_: authenticated.set())
    sio.on("chat:message", lambda data: messages.put_nowait(data["message"]))
    auth = {"token": token(APP_A, user, user), "app_id": APP_A.app_id}
    await sio.connect(url, auth=auth, transports=transports, wait_timeout=TIMEOUT)
    try:
        sid = sio.eio.sid
        await asyncio.wait_for(authenticated.wait(), TIMEOUT)
        joined = await sio.call("chat:join", {"stream_id": STREAM}, timeout=TIMEOUT)
        assert joined["ok"] is True, joined
        for round_number in range(ROUNDS):
            text = f"{user} round {round_number}"
            ack = await sio.call("chat:message", {"stream_id": STREAM, "message": text}, timeout=TIMEOUT)
            assert ack["ok"] is True, ack
            # Other clients of the same node share the room: skip their messages.
            while (await asyncio.wait_for(messages.get(), TIMEOUT)) != text:
                pass
        if transports == ["polling", "websocket"]:
            for _ in range(int(TIMEOUT / 0.02)):
                if sio.transport() == "websocket":
                    break
                await asyncio.sleep(0.02)
        assert sio.eio.sid == sid  # the same session throughout (no reconnect hid a failure)
        return {"sid": sid, "transport": sio.transport()}
    finally:
        await sio.disconnect()


PY_MODES = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}


@pytest.mark.parametrize("mode", list(PY_MODES))
async def test_python_clients_through_haproxy(haproxy: Balancer, mode: str) -> None:
    transports = PY_MODES[mode]
    results = await asyncio.gather(
        *(python_client(haproxy.url, f"py_{mode}_{i}", transports) for i in range(CLIENTS_PER_MODE))
    )
    expected_transport = "polling" if mode == "polling" else "websocket"
    assert [r["transport"] for r in results] == [expected_transport] * CLIENTS_PER_MODE
    # leastconn spreads the handshakes: both nodes hold sessions, so routing was exercised.
    assert set(Counter(node_of(r["sid"]) for r in results)) == set(NODE_IDS), results


# -- JS client (socket.io-client, stock) --------------------------------------------------------

def run_js_clients(work: Path, url: str, mode: str, users: list[str]) -> list[dict[str, Any]]:
    assert NODE is not None
    # The script runs from a folder whose node_modules is the stock client's (tests/js).
    (work / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    shutil.copy(HERE / "js" / "balancer_client.mjs", work / "client.mjs")
    env = {"TOKENS": json.dumps([token(APP_A, user, user) for user in users]), "APP_ID": APP_A.app_id,
           "PATH": "/usr/bin:/bin"}
    try:
        proc = subprocess.run([NODE, "client.mjs", url, mode], cwd=work, env=env, capture_output=True,
                              text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"node clients hung: {exc.stdout!r} {exc.stderr!r}") from None
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{"ok"')]
    result = json.loads(lines[-1]) if lines else {"ok": False, "error": "no JSON result"}
    assert proc.returncode == 0 and result["ok"], f"{result.get('error')}\nstderr: {proc.stderr[-2000:]}"
    clients: list[dict[str, Any]] = result["clients"]
    return clients


@pytest.mark.skipif(NODE is None or not (NODE_MODULES / "socket.io-client").is_dir(),
                    reason="node or tests/js/node_modules/socket.io-client is missing (cd tests/js && npm ci)")
@pytest.mark.parametrize("mode", ["polling", "default"])
def test_js_clients_through_haproxy(haproxy: Balancer, tmp_path: Path, mode: str) -> None:
    clients = run_js_clients(tmp_path, haproxy.url, mode, [f"js_{mode}_{i}" for i in range(CLIENTS_PER_MODE)])
    if mode == "polling":
        assert {c["transport"] for c in clients} == {"polling"}
    else:
        assert all(c["transport"] == "websocket" and c["upgraded"] for c in clients), clients
    assert {node_of(c["sid"]) for c in clients} == set(NODE_IDS), clients


# -- the routing itself, request by request -----------------------------------------------------

def test_every_sid_names_its_node_and_only_that_node_knows_it(
    haproxy: Balancer, nodes: dict[str, ServerProcess]
) -> None:
    for node_id, node in nodes.items():
        assert node_of(handshake(node.url)) == node_id
    for _ in range(6):
        sid = handshake(haproxy.url)
        owner = node_of(sid)
        other = next(n for n in NODE_IDS if n != owner)
        # Through the balancer, a POST naming the session reaches its owner...
        status, body = http("POST", f"{haproxy.url}/socket.io/?EIO=4&transport=polling&sid={sid}", "1")
        assert (status, body) == (200, "ok")
        # ... sent straight to the other node, the same request is refused.
        status, body = http("POST", f"{nodes[other].url}/socket.io/?EIO=4&transport=polling&sid={sid}", "1")
        assert status == 400 and "Session ID unknown" in body, (status, body)


def test_health_check_is_served_through_the_balancer(haproxy: Balancer) -> None:
    status, body = http("GET", f"{haproxy.url}/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}


async def test_when_a_node_dies_its_clients_start_over_on_another(tmp_path: Path) -> None:
    with realcast_nodes(tmp_path / "nodes", NODE_IDS) as own_nodes:
        balancer = start_haproxy(tmp_path, {n: p.port for n, p in own_nodes.items()})
        try:
            own_nodes["n1"].stop()
            # Before the health check marks n1 down: redispatched to n2, which knows no such session.
            status, body = http("POST", f"{balancer.url}/socket.io/?EIO=4&transport=polling&sid=n1.{'A' * 20}", "1")
            assert status == 400 and "Session ID unknown" in body, (status, body)
            # New sessions all land on n2, over polling too.
            results = await asyncio.gather(
                *(python_client(balancer.url, f"survivor_{i}", ["polling"]) for i in range(3))
            )
            assert {node_of(r["sid"]) for r in results} == {"n2"}
        finally:
            balancer.stop()


# -- nginx (optional: only where it is installed) -----------------------------------------------

@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")
async def test_python_clients_through_nginx(nodes: dict[str, ServerProcess], tmp_path: Path) -> None:
    balancer = start_nginx(tmp_path, {n: p.port for n, p in nodes.items()})
    try:
        results = []
        for mode, transports in PY_MODES.items():
            results += await asyncio.gather(
                *(python_client(balancer.url, f"nginx_{mode}_{i}", transports) for i in range(2))
            )
        assert [r["transport"] for r in results] == ["polling"] * 2 + ["websocket"] * 4
        assert {node_of(r["sid"]) for r in results} == set(NODE_IDS), results
        sid = handshake(balancer.url)
        status, body = http("POST", f"{balancer.url}/socket.io/?EIO=4&transport=polling&sid={sid}", "1")
        assert (status, body) == (200, "ok")
    finally:
        balancer.stop()
