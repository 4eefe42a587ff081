"""Smoke test of the benchmark harness (not collected by the project's pytest run, whose
testpaths is tests/). Run it explicitly:

    .venv/bin/pytest benchmarks/test_bench_smoke.py
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402


def server_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload


class _FakeGen(loadgen.LoadGen):
    def __init__(self) -> None:  # only what scan() touches
        self.sent_frames: list[bytes] = []
        self.pings_answered = 0

    def send(self, c: loadgen.Conn, data: bytes) -> None:
        self.sent_frames.append(data)


def test_scan_counts_chat_messages_across_reads_and_answers_pings() -> None:
    a, b = socket.socketpair()
    try:
        g = _FakeGen()
        c = loadgen.Conn(a, 0, loadgen.K_RECV)
        msg = server_frame(b'42["chat:message",{"message":"' + b"x" * 200 + b'"}]')
        other = server_frame(b'42["viewer.joined",{"user_id":"u1"}]')
        stream = msg + server_frame(b"2") + other + msg * 3
        total = 0
        # feed the stream in awkward pieces: cuts inside headers and payloads
        for cut in (1, 3, 150, 7, 400, 2):
            piece, stream = stream[:cut], stream[cut:]
            data = c.frag + piece
            total += g.scan(c, data, len(data), 0.0)
        data = c.frag + stream
        total += g.scan(c, data, len(data), 0.0)
        assert total == 4
        assert g.sent_frames == [loadgen.PONG]
        assert c.skip == 0 and c.frag == b""
    finally:
        a.close()
        b.close()


def test_fast_path_answers_websocket_pings() -> None:
    a, b = socket.socketpair()
    try:
        g = _FakeGen()
        g.rbuf = bytearray(1 << 16)
        c = loadgen.Conn(a, 0, loadgen.K_RECV)
        # a frame of 393 bytes has 0x89 as the low length byte: not a ping
        data = server_frame(b'42["chat:message",' + b"z" * 374 + b"]") + b"\x89\x04abcd"
        g.rbuf[: len(data)] = data
        g.ws_pings(c, len(data))
        assert len(g.sent_frames) == 1
        f = g.sent_frames[0]
        assert f[0] == 0x8A and f[1] == 0x84
        assert bytes(x ^ f[2 + i % 4] for i, x in enumerate(f[6:])) == b"abcd"
    finally:
        a.close()
        b.close()


def test_mask_frame_roundtrip() -> None:
    payload = b'42["chat:message",{"m":"' + b"y" * 300 + b'"}]'
    f = loadgen.mask_frame(payload)
    assert f[0] == 0x81 and f[1] == 0x80 | 126
    n = int.from_bytes(f[2:4], "big")
    key, body = f[4:8], f[8:]
    assert n == len(payload) == len(body)
    assert bytes(x ^ key[i % 4] for i, x in enumerate(body)) == payload


@pytest.mark.timeout(180)
def test_quick_run_against_python_socketio(tmp_path: Path) -> None:
    pytest.importorskip("socketio")
    pytest.importorskip("aiohttp")
    out = subprocess.run(
        [sys.executable, str(HERE / "run.py"), "--quick", "--fanout", "--connect",
         "--servers", "psio_aiohttp", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=170, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    figs = res["figures"]
    assert figs["deliveries_per_s_R200"]["psio_aiohttp"]["median"] > 1000
    assert figs["connects_per_s"]["psio_aiohttp"]["median"] > 10
    assert (tmp_path / "results.md").exists()
    assert (tmp_path / "deliveries_by_room.png").exists()


def test_connect_cpu_drives_full_connects() -> None:
    # connect_cpu.py exits with an error if any client gets no chat:joined.
    out = subprocess.run(
        [sys.executable, str(HERE / "connect_cpu.py"), "--clients", "100", "--rooms", "3", "--runs", "1"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "median:" in out and "80 counted connects" in out
    per_connect_us = float(out.split("median: ")[1].split(" us")[0])
    assert per_connect_us > 0


def test_receivers_split_over_nodes_by_join_order() -> None:
    # probes sit at regular indexes (every 20th from 10 here): round robin over two ports would
    # put them all on one node; a split by join order puts half on each
    args = loadgen.parse_args(["--mode", "latency", "--port", "9001", "--extra-ports", "9002", "--receivers", "1000"])
    g = loadgen.LoadGen(args)
    probes = [i for i in range(1000) if i % 20 == 10]
    ports = [g.port_for(i, loadgen.K_PROBE) for i in probes]
    assert ports.count(9001) == ports.count(9002) == 25
    assert g.port_for(1000, loadgen.K_SEND) == 9001


@pytest.mark.timeout(60)
def test_quick_cluster_run(tmp_path: Path) -> None:
    # two RealCast nodes over a private redis-server: cross-node latency and a small capacity run
    out = subprocess.run(
        [sys.executable, str(HERE / "cluster_run.py"), "--quick", "--latency", "--capacity",
         "--servers", "realcast", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=55, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads((tmp_path / "cluster.json").read_text())
    lat = res["raw"]["latency"]["realcast"][0]
    assert "error" not in lat, lat
    # probes on both nodes got the messages sent on node 1
    assert all(per["samples"] > 0 for per in lat["latency_by_port"].values())
    assert len(lat["latency_by_port"]) == 2
    assert res["capacity"]["on_time"] == res["capacity"]["clients"] == 200
    assert (tmp_path / "cluster.md").exists()
