"""The server's own CPU per broadcast delivery, measured in one process without sockets.

    .venv/bin/python benchmarks/fanout_cpu.py [--members 1000] [--turns 400] [--per-turn 4]
        [--runs 5] [--against DIR] [--timed] [--connect]

Connects ``--members`` WebSocket clients to a bare engineio_min ``Server`` over an
in-memory transport (the WebSocket upgrade and the Socket.IO CONNECT go through the real
code), puts them in one room, then makes ``--per-turn`` broadcasts per loop turn for
``--turns`` turns, in the mix an application makes: to the room, to the room except the
sender, and droppable. It prints the CPU time of our Python per delivery (kernel writes
left out), a precise figure for side-by-side comparisons of changes to the broadcast path.

``--against DIR``: DIR is another source tree (``git archive <commit> | tar -x -C DIR``);
runs alternate between it and this tree, each in a fresh process, and the medians are
printed side by side.

``--connect``: instead, the library's own CPU per connect of ``--members`` clients (the first
fifth not counted): WebSocket upgrade, CONNECT answered by a connect hook that emits one event,
then an event with an ack whose handler joins a room. No application on top, so a change to
engineio_min's connect path (the protocol machines, say) is measured without realcast's auth.

``--timed``: time each broadcasting loop turn as realcast does with metrics on
(``Flusher.latency``), in the trees that have it (a tree without it runs as it is).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from memtransport import MemoryTransport  # benchmarks/ is not a package: the script's folder is on sys.path

HERE = Path(__file__).resolve().parent
UPGRADE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
ROOM = "stream-1"


class CountingTransport(MemoryTransport):
    """It only counts what is written."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.bytes += len(data)


def _masked(payload: bytes) -> bytes:
    """One client text frame (mask key 0: XOR is the identity, the server unmasks anyway)."""
    assert len(payload) < 126
    return bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload


async def _measure(members: int, turns: int, per_turn: int, timed: bool) -> dict[str, float]:
    import engineio_min
    from engineio_min import Server

    server = Server(allowed_origins="*")
    histogram = getattr(engineio_min, "LatencyHistogram", None)
    timed = timed and histogram is not None
    if timed:
        server.flusher.latency = histogram([0.0001 * 2**k for k in range(14)])
    nsp = server.of("/")
    transports = []
    for _ in range(members):
        transport = CountingTransport()
        protocol = server._protocol_factory()
        transport.protocol = protocol
        protocol.connection_made(transport)  # type: ignore[arg-type]
        for data in (UPGRADE, _masked(b"40")):
            transport.protocol.data_received(data)  # the upgrade swaps the protocol
            await asyncio.sleep(0)
        transports.append(transport)
    await asyncio.sleep(0.01)
    sockets = list(nsp.sockets.values())
    if len(sockets) != members:
        raise SystemExit(f"{len(sockets)} of {members} clients connected")
    for sock in sockets:
        sock.join(ROOM)
    message = {"id": "m1", "user": {"id": "u1", "username": "alice"}, "text": "hello everyone", "ts": 1}
    sender = sockets[0]

    async def run(count: int) -> int:
        deliveries = 0
        for turn in range(count):
            for k in range(per_turn):
                kind = (turn * per_turn + k) % 4
                if kind == 1:
                    deliveries += nsp.emit("chat:typing", {"user": "u1"}, to=ROOM, exclude=sender, droppable=True)
                elif kind == 3:
                    deliveries += nsp.emit("reaction", {"emoji": "+1"}, to=ROOM, droppable=True)
                else:
                    deliveries += nsp.emit("chat:message", message, to=ROOM)
            await asyncio.sleep(0)  # the turn ends: every member gets its one write
        return deliveries

    await run(max(1, turns // 5))  # warm-up, not counted
    writes_before = sum(t.writes for t in transports)
    start = time.process_time()
    deliveries = await run(turns)
    cpu = time.process_time() - start
    writes = sum(t.writes for t in transports) - writes_before
    for transport in transports:
        transport.close()
    await asyncio.sleep(0.01)
    await server.shutdown()
    return {"ns_per_delivery": cpu / deliveries * 1e9, "deliveries": deliveries, "writes": writes, "timed": timed}


async def _measure_connects(members: int) -> dict[str, float]:
    from engineio_min import Server

    server = Server(allowed_origins="*")
    nsp = server.of("/")

    @nsp.on_connect
    def connected(sock: Any, auth: dict[str, Any]) -> None:
        sock.emit("hello", {"sid": sock.sid})

    @nsp.on("join")
    def join(sock: Any, data: dict[str, str]) -> dict[str, bool]:
        sock.join(data["room"])
        return {"ok": True}

    frames = (UPGRADE, _masked(b'40{"token":"t"}'), _masked(b'420["join",{"room":"' + ROOM.encode() + b'"}]'))
    transports = []

    async def connect(count: int) -> None:
        for _ in range(count):
            transport = CountingTransport()
            protocol = server._protocol_factory()
            transport.protocol = protocol
            protocol.connection_made(transport)  # type: ignore[arg-type]
            for data in frames:
                transport.protocol.data_received(data)  # the upgrade swaps the protocol
                await asyncio.sleep(0)
            transports.append(transport)

    await connect(members // 5)  # warm-up, not counted
    start = time.process_time()
    await connect(members)
    cpu = time.process_time() - start
    if len(nsp.adapter.members(ROOM)) != members + members // 5 or transports[-1].writes < 3:
        raise SystemExit("not every client connected and joined")
    for transport in transports:
        transport.close()
    await asyncio.sleep(0.01)
    await server.shutdown()
    return {"us_per_connect": cpu / members * 1e6}


def _child(args: argparse.Namespace) -> None:
    import uvloop

    import engineio_min

    if args.connect:
        result = uvloop.run(_measure_connects(args.members))
    else:
        result = uvloop.run(_measure(args.members, args.turns, args.per_turn, args.timed))
    result["source"] = str(Path(engineio_min.__file__).resolve().parent.parent)
    print(json.dumps(result))


def _run_child(src: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, str(HERE / "fanout_cpu.py"), "--child", "--members", str(args.members),
           "--turns", str(args.turns), "--per-turn", str(args.per_turn)]  # fmt: skip
    if args.timed:
        cmd.append("--timed")
    if args.connect:
        cmd.append("--connect")
    done = subprocess.run(cmd, env=env, cwd=src, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the measuring process failed:\n{done.stderr}")
    out = done.stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if Path(result["source"]) != src.resolve():
        raise SystemExit(f"the child imported engineio_min from {result['source']}, not {src}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--per-turn", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another source tree, measured alternately with this one")
    parser.add_argument("--timed", action="store_true", help="time broadcast turns (Flusher.latency) where supported")
    parser.add_argument("--connect", action="store_true", help="CPU per connect instead of per delivery")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    trees = {"this tree": HERE.parent}
    if args.against is not None:
        trees["against"] = args.against
    figures: dict[str, list[float]] = {name: [] for name in trees}
    for run in range(args.runs):
        for name, src in trees.items():
            result = _run_child(src, args)
            if args.connect:
                figures[name].append(result["us_per_connect"])
                print(f"run {run + 1} {name:9s}: {result['us_per_connect']:.2f} us CPU per connect", flush=True)
                continue
            figures[name].append(result["ns_per_delivery"])
            timed = ", timed" if result.get("timed") else ""
            print(f"run {run + 1} {name:9s}: {result['ns_per_delivery']:.1f} ns CPU per delivery "
                  f"({result['deliveries']} deliveries, {result['writes']} writes{timed})", flush=True)  # fmt: skip
    for name, values in figures.items():
        values.sort()
        if args.connect:
            print(f"median {name:9s}: {values[len(values) // 2]:.2f} us CPU per connect "
                  f"({trees[name]}, {args.members} counted connects)")
            continue
        print(f"median {name:9s}: {values[len(values) // 2]:.1f} ns CPU per delivery "
              f"({trees[name]}, {args.members} members, {args.per_turn} broadcasts per turn)")  # fmt: skip


if __name__ == "__main__":
    main()
