"""``realcast serve --workers N``: N processes on one port (SO_REUSEPORT), one supervisor.

Real processes only: the parent is ``python -m realcast serve``; its workers are found through
/proc; clients are the stock python-socketio client over WebSocket (the only transport that
works without a balancer in front of workers, see deploy/README.md).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio

from ..realcast.harness import APP_A, STREAM, token
from ..realcast.process import ServerProcess, run_cli
from .balancer import node_env

TIMEOUT = 8.0
WORKER_IDS = {"box-w1", "box-w2"}


def children(pid: int) -> set[int]:
    """The live child processes of ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        # pid (comm) state ppid ...; comm may hold spaces, so split after its ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def wait_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    """The pids still alive after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if Path(f"/proc/{pid}").exists() and _not_zombie(pid)}
        time.sleep(0.05)
    return alive


def _not_zombie(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


@pytest.mark.parametrize(
    "flags",
    [
        [],
        ["--redis-url", "redis://127.0.0.1:6379/0"],
        ["--database-url", "postgresql://realcast@127.0.0.1/realcast"],
    ],
    ids=["neither", "no-database", "no-redis"],
)
def test_workers_without_shared_state_are_refused(tmp_path: Path, flags: list[str]) -> None:
    result = run_cli("serve", "--port", "0", "--data-dir", str(tmp_path), "--workers", "2", *flags, env=node_env())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("realcast: error: --workers 2 needs redis_url and database_url")
    assert "realcast listening" not in result.stdout


def test_workers_refuse_a_node_id_too_long_for_their_suffix(tmp_path: Path, redis_url: str) -> None:
    flags = ["--redis-url", redis_url, "--database-url", "postgresql://x@127.0.0.1/x", "--node-id", "a" * 30]
    result = run_cli("serve", "--port", "0", "--data-dir", str(tmp_path), "--workers", "2", *flags, env=node_env())
    assert result.returncode == 2
    assert result.stderr.strip() == "realcast: error: node_id is too long for --workers 2: at most 29 characters"


def test_a_worker_start_up_error_is_the_servers(tmp_path: Path) -> None:
    # Nothing listens on port 1: each worker fails to open the database and says so; the parent
    # adds no line of its own and exits 2, as one process would.
    flags = ["--redis-url", "redis://127.0.0.1:1/0", "--database-url", "postgresql://x@127.0.0.1:1/x"]
    result = run_cli("serve", "--port", "0", "--data-dir", str(tmp_path), "--workers", "2", *flags, env=node_env())
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("realcast: error:")]
    assert errors and all("database_url" in line for line in errors), result.stderr
    assert "exited during start-up" not in result.stderr


@pytest.fixture
def workers(tmp_path: Path, fresh_redis_url: str, fresh_database_url: str) -> Iterator[ServerProcess]:
    server = ServerProcess(
        "--workers", "2", "--node-id", "box", "--data-dir", str(tmp_path),
        "--redis-url", fresh_redis_url, "--database-url", fresh_database_url,
        env=node_env(),
    )
    try:
        yield server
    finally:
        if not server.stderr.closed:  # the test did not stop it itself
            server.stop()


async def websocket_chat(url: str, user: str) -> str:
    """A stock client over WebSocket only: authenticate, join, get its message back; its sid."""
    sio = socketio.AsyncClient(reconnection=False)
    messages: asyncio.Queue[str] = asyncio.Queue()
    authenticated = asyncio.Event()
    sio.on("authenticated", lambda *_: authenticated.set())
    sio.on("chat:message", lambda data: messages.put_nowait(data["message"]))
    auth = {"token": token(APP_A, user, user), "app_id": APP_A.app_id}
    await sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=TIMEOUT)
    try:
        sid: str = sio.eio.sid
        await asyncio.wait_for(authenticated.wait(), TIMEOUT)
        assert (await sio.call("chat:join", {"stream_id": STREAM}, timeout=TIMEOUT))["ok"] is True
        text = f"hello from {user}"
        assert (await sio.call("chat:message", {"stream_id": STREAM, "message": text}, timeout=TIMEOUT))["ok"]
        while (await asyncio.wait_for(messages.get(), TIMEOUT)) != text:
            pass  # another client's message (same worker, same room)
        return sid
    finally:
        await sio.disconnect()


async def test_two_workers_share_the_port_and_stop_together(workers: ServerProcess) -> None:
    pids = children(workers.proc.pid)
    assert len(pids) == 2
    # The kernel picks the worker per connection (a hash of the addresses and ports): keep
    # connecting until both have answered; 12 at a time, in at most 4 rounds.
    seen: set[str] = set()
    for round_number in range(4):
        sids = await asyncio.gather(*(websocket_chat(workers.url, f"u{round_number}_{i}") for i in range(12)))
        seen |= {sid.partition(".")[0] for sid in sids}
        if seen == WORKER_IDS:
            break
    assert seen == WORKER_IDS
    status, stderr = workers.stop()
    assert status == 0, stderr
    assert not wait_gone(pids)


def test_a_worker_that_dies_stops_the_others(workers: ServerProcess) -> None:
    pids = sorted(children(workers.proc.pid))
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGKILL)
    workers.proc.wait(timeout=15)
    assert workers.proc.returncode == 1
    assert not wait_gone(set(pids))
    _, stderr = workers.stop()
    assert "realcast: error: worker box-w" in stderr and "exited (status -9)" in stderr, stderr
