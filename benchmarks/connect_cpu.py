"""The server's own CPU per full connect, measured in one process without sockets.

    .venv/bin/python benchmarks/connect_cpu.py [--clients 5000] [--rooms 100] [--profile FILE]

Drives a RealcastApp (as `realcast serve` builds it, bench configuration) through what
loadgen's connect scenario does over TCP: the WebSocket upgrade request, CONNECT with a
JWT, `chat:join`, and waits for `chat:joined`, with an in-memory transport. What it
prints is the CPU time of our Python per connect, without the kernel and uvloop's
transports: a precise figure for side-by-side comparisons (`git stash`) of changes to the
connect path, where the full benchmark's connect rate moves by +-7% between runs. The
first fifth of the clients warms the process up and is not counted. `--profile` writes a
cProfile of the counted part (read it with `python -m pstats FILE`). `--heap` prints, instead
of the CPU time, the Python heap (tracemalloc) the counted clients hold once connected and joined,
per client: the server's objects plus one in-memory transport each (the same in every tree), so
two trees compare by their per-session objects.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import make_jwt, mask_frame  # benchmarks/ is not a package: found through sys.path
from memtransport import MemoryTransport

SECRET = "bench-jwt-secret-0123456789abcdef-0123456789abcdef"
UPGRADE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


class KeepingTransport(MemoryTransport):
    """Writes are kept for the checks."""

    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(bytes(data))


def _client_frames(clients: int, rooms: int) -> list[tuple[bytes, bytes]]:
    frames = []
    for i in range(clients):
        auth = {"token": make_jwt(SECRET.encode(), f"u{i}", f"user{i}", "app_bench"), "app_id": "app_bench"}
        connect = mask_frame(b"40" + json.dumps(auth, separators=(",", ":")).encode())
        who = {"stream_id": f"s_{i % rooms}", "user_id": f"u{i}", "username": f"user{i}"}
        join = mask_frame(b"42" + json.dumps(["chat:join", who], separators=(",", ":")).encode())
        frames.append((connect, join))
    return frames


async def _measure(clients: int, rooms: int, profile: str | None, heap: bool = False) -> float:
    from realcast.__main__ import _load, _parser
    from realcast.app import RealcastApp
    from realcast.config import ensure_dev_app

    config, _ = ensure_dev_app(_load(_parser().parse_args(["serve"])))
    app = RealcastApp(config)
    server = app.server
    frames = _client_frames(clients, rooms)
    transports: list[KeepingTransport] = []

    async def connect(first: int, last: int) -> None:
        for connect_frame, join_frame in frames[first:last]:
            transport = KeepingTransport()
            protocol = server._protocol_factory()
            transport.protocol = protocol
            protocol.connection_made(transport)  # type: ignore[arg-type]
            for data in (UPGRADE, connect_frame, join_frame):
                transport.protocol.data_received(data)
                await asyncio.sleep(0)  # one loop turn: the server flushes what it owes
            if not any(b'"chat:joined"' in out for out in transport.out):
                raise SystemExit(f"no chat:joined; the server wrote {transport.out!r}")
            transport.out.clear()  # what the client read is not the server's memory
            transports.append(transport)

    warm = clients // 5
    await connect(0, warm)
    if heap:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        await connect(warm, clients)
        await asyncio.sleep(0.05)
        gc.collect()
        held = (tracemalloc.get_traced_memory()[0] - before) / (clients - warm)
        tracemalloc.stop()
        for transport in transports:
            transport.close()
        await asyncio.sleep(0.05)
        await app.stop()
        return held
    profiler = cProfile.Profile() if profile else None
    start = time.process_time()
    if profiler is not None:
        profiler.enable()
    await connect(warm, clients)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    per_connect = (time.process_time() - start) / (clients - warm)
    for transport in transports:
        transport.close()
    await asyncio.sleep(0.05)
    await app.stop()
    return per_connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", help="write a cProfile of the last run here")
    parser.add_argument("--heap", action="store_true", help="heap bytes held per connected client instead of CPU")
    args = parser.parse_args()
    import uvloop

    results = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as data_dir:
            os.environ.update(
                REALCAST_APP_ID="app_bench", REALCAST_JWT_SECRET=SECRET, REALCAST_API_KEY="bench-api-key-0123456789",
                REALCAST_LOG_LEVEL="WARNING", REALCAST_DEV="false", REALCAST_DATA_DIR=data_dir,
            )  # fmt: skip
            from realcast.__main__ import _tune_gc

            _tune_gc()  # as `realcast serve` does
            profile = args.profile if run == args.runs - 1 else None
            results.append(uvloop.run(_measure(args.clients, args.rooms, profile, args.heap)))
            if args.heap:
                print(f"run {run + 1}: {results[-1]:.0f} heap bytes per connected client", flush=True)
            else:
                print(f"run {run + 1}: {results[-1] * 1e6:.1f} us CPU per connect", flush=True)
    results.sort()
    if args.heap:
        print(f"median: {results[len(results) // 2]:.0f} heap bytes per connected client "
              f"({args.clients - args.clients // 5} counted clients per run, {args.rooms} streams)")
        return
    print(
        f"median: {results[len(results) // 2] * 1e6:.1f} us CPU per connect "
        f"({args.clients - args.clients // 5} counted connects per run, {args.rooms} streams)"
    )


if __name__ == "__main__":
    main()
