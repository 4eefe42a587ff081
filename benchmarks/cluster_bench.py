"""The cost of the Redis adapter: server CPU per 1M deliveries, a room fed through Redis vs locally.

    .venv/bin/python benchmarks/cluster_bench.py [--members 1000] [--turns 400] [--per-turn 4]
        [--runs 3] [--redis-url redis://127.0.0.1:6379/0]

Side by side in one run, each case in a fresh process, alternating:
- local: one Server (LocalAdapter) with ``--members`` WebSocket clients in a room (in-memory
  transport, as benchmarks/fanout_cpu.py) makes the broadcasts;
- redis: two Servers with RedisAdapters in one process, the origin with no client, the other
  with the ``--members`` clients; every broadcast goes origin -> Redis -> receiving node, which
  frames it once and fans it out through the same coalesced path. The CPU counted is that of
  both nodes (this process); redis-server's own CPU is printed apart.
Without ``--redis-url`` a private redis-server is started on a free port (Debian's binary).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout_cpu import ROOM, UPGRADE, CountingTransport, _masked  # benchmarks/ is not a package

HERE = Path(__file__).resolve().parent

MESSAGE = {"id": "m1", "user": {"id": "u1", "username": "alice"}, "text": "hello everyone", "ts": 1}


async def _connect_members(server: Any, members: int) -> list[CountingTransport]:
    transports = []
    for _ in range(members):
        transport = CountingTransport()
        protocol = server._protocol_factory()
        transport.protocol = protocol
        protocol.connection_made(transport)
        for data in (UPGRADE, _masked(b"40")):
            transport.protocol.data_received(data)
            await asyncio.sleep(0)
        transports.append(transport)
    await asyncio.sleep(0.01)
    nsp = server.of("/")
    if len(nsp.sockets) != members:
        raise SystemExit(f"{len(nsp.sockets)} of {members} clients connected")
    for sock in list(nsp.sockets.values()):
        sock.join(ROOM)
    return transports


def _emit_turn(nsp: Any, turn: int, per_turn: int) -> None:
    for k in range(per_turn):
        if (turn * per_turn + k) % 2:
            nsp.emit("reaction", {"emoji": "+1"}, to=ROOM, droppable=True)
        else:
            nsp.emit("chat:message", MESSAGE, to=ROOM)


async def _local(members: int, turns: int, per_turn: int) -> dict[str, float]:
    from engineio_min import Server

    server = Server(allowed_origins="*")
    nsp = server.of("/")
    transports = await _connect_members(server, members)
    for turn in range(turns // 5):  # warm-up
        _emit_turn(nsp, turn, per_turn)
        await asyncio.sleep(0)
    writes_before = sum(t.writes for t in transports)
    start = time.process_time()
    for turn in range(turns):
        _emit_turn(nsp, turn, per_turn)
        await asyncio.sleep(0)
    cpu = time.process_time() - start
    writes = sum(t.writes for t in transports) - writes_before
    for transport in transports:
        transport.close()
    await server.shutdown()
    return {"cpu": cpu, "deliveries": turns * per_turn * members, "writes": writes}


async def _redis(members: int, turns: int, per_turn: int, url: str) -> dict[str, float]:
    import redis.asyncio

    from engineio_min import Server
    from engineio_min.redis_adapter import RedisAdapter

    clients = [redis.asyncio.Redis.from_url(url) for _ in range(2)]
    servers = [
        Server(allowed_origins="*", node_id=name,
               adapter_factory=lambda nsp, c=client, n=name: RedisAdapter(nsp, c, n))  # type: ignore[misc]
        for name, client in zip(("origin", "receiver"), clients, strict=True)
    ]  # fmt: skip
    for server in servers:
        await server.start("127.0.0.1", 0)
    origin, receiver = (s.of("/") for s in servers)
    transports = await _connect_members(servers[1], members)
    adapter: Any = receiver.adapter
    await adapter.sync()
    # Paced as the local case is: the origin's next turn starts once the receiver got this one,
    # so that each turn reaches the clients as its own batch (not many turns in one read).
    arrived = [0]
    wanted: list[tuple[int, asyncio.Future[None]]] = []
    on_message = adapter._on_message

    def counting(data: bytes) -> None:
        on_message(data)
        arrived[0] += 1
        if wanted and arrived[0] >= wanted[0][0]:
            wanted.pop()[1].set_result(None)

    adapter._on_message = counting
    loop = asyncio.get_running_loop()

    async def run(count: int) -> None:
        for turn in range(count):
            future = loop.create_future()
            wanted.append((arrived[0] + per_turn, future))
            _emit_turn(origin, turn, per_turn)
            await asyncio.wait_for(future, 10)
        await asyncio.sleep(0.01)  # the last flush

    await run(turns // 5)  # warm-up
    writes_before = sum(t.writes for t in transports)
    start = time.process_time()
    await run(turns)
    cpu = time.process_time() - start
    writes = sum(t.writes for t in transports) - writes_before
    for transport in transports:
        transport.close()
    for server in servers:
        await server.shutdown()
    for client in clients:
        await client.aclose()
    return {"cpu": cpu, "deliveries": turns * per_turn * members, "writes": writes}


def _child(args: argparse.Namespace) -> None:
    import uvloop

    if args.child == "local":
        result = uvloop.run(_local(args.members, args.turns, args.per_turn))
    else:
        result = uvloop.run(_redis(args.members, args.turns, args.per_turn, args.redis_url))
    print(json.dumps(result))


def _redis_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--per-turn", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redis-url")
    parser.add_argument("--child", choices=("local", "redis"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    redis_proc = None
    workdir = tempfile.mkdtemp(prefix="cluster-bench-redis-")
    if args.redis_url is None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed; pass --redis-url")
        port = _free_port()
        redis_proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        args.redis_url = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.3)
    figures: dict[str, list[float]] = {"local": [], "redis": []}
    redis_figures: list[float] = []
    try:
        for run in range(args.runs):
            for case in ("local", "redis"):
                redis_before = _redis_cpu(redis_proc.pid) if redis_proc else 0.0
                cmd = [sys.executable, str(HERE / "cluster_bench.py"), "--child", case,
                       "--members", str(args.members), "--turns", str(args.turns), "--per-turn", str(args.per_turn),
                       "--redis-url", args.redis_url]  # fmt: skip
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"the {case} run failed:\n{done.stderr}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                per_million = result["cpu"] / result["deliveries"] * 1e6
                figures[case].append(per_million)
                extra = ""
                if case == "redis" and redis_proc is not None:
                    redis_per_million = (_redis_cpu(redis_proc.pid) - redis_before) / result["deliveries"] * 1e6
                    redis_figures.append(redis_per_million)
                    extra = f", redis-server {redis_per_million:.3f} CPU-s per 1M"
                print(f"run {run + 1} {case:5s}: {per_million:.3f} server CPU-s per 1M deliveries{extra} "
                      f"({result['writes']} client writes)", flush=True)  # fmt: skip
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {case: sorted(v)[len(v) // 2] for case, v in figures.items()}
    print(f"median local: {medians['local']:.3f} CPU-s per 1M deliveries (room of {args.members}, "
          f"{args.per_turn} broadcasts per turn)")  # fmt: skip
    print(f"median redis: {medians['redis']:.3f} CPU-s per 1M deliveries (both nodes) = "
          f"{medians['redis'] / medians['local']:.2f}x local")  # fmt: skip
    if redis_figures:
        print(f"median redis-server: {sorted(redis_figures)[len(redis_figures) // 2]:.3f} CPU-s per 1M deliveries")


if __name__ == "__main__":
    main()
