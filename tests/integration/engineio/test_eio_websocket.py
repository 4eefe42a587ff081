"""Engine.IO WebSocket transport (SPEC.md §2.4, §2.6; §5 "WebSocket", "Close")."""

from __future__ import annotations

import contextlib

import pytest
from websockets.exceptions import ConnectionClosed

from .eio_testkit import EioWs, assert_only_heartbeats


@pytest.fixture
async def ws(port: int):
    c, _ = await EioWs.open_session(port)
    yield c
    await c.close()


async def test_text_echo(ws: EioWs) -> None:
    await ws.send("4hello")
    assert await ws.recv_msg() == "4hello"


async def test_binary_echo_is_a_binary_frame(ws: EioWs) -> None:
    await ws.send(b"\x01\x02\x03\x04")
    got = await ws.recv_msg()
    assert isinstance(got, bytes), f"binary must come back as a binary frame, got {got!r}"
    assert got == b"\x01\x02\x03\x04"


async def test_binary_echo_all_byte_values_and_empty(ws: EioWs) -> None:
    await ws.send(bytes(range(256)))
    assert await ws.recv_msg() == bytes(range(256))
    await ws.send(b"")
    assert await ws.recv_msg() == b""


async def test_empty_and_unicode_text_echo(ws: EioWs) -> None:
    await ws.send("4")
    assert await ws.recv_msg() == "4"
    await ws.send("4héllo ✓ 😀")
    assert await ws.recv_msg() == "4héllo ✓ 😀"


async def test_order_is_kept(ws: EioWs) -> None:
    for i in range(200):
        await ws.send(f"4m{i}" if i % 3 else bytes([i]))
    for i in range(200):
        assert await ws.recv_msg() == (f"4m{i}" if i % 3 else bytes([i]))


async def test_noop_upgrade_and_open_from_client_are_ignored(ws: EioWs) -> None:
    for pkt in ("6", "5", "0"):
        await ws.send(pkt)
    await ws.send("4after")
    assert await ws.recv_msg() == "4after"


@pytest.mark.parametrize("bad", ["abc", "", "7", "x4hello"], ids=["abc", "empty", "type7", "x"])
async def test_invalid_packet_closes(ws: EioWs, bad: str) -> None:
    # §2.4: the first character must be 0-6 (or b); anything else is a parse error
    await ws.send(bad)
    frames = await ws.wait_closed(1.0)
    assert_only_heartbeats(frames)


async def test_client_ping_closes(ws: EioWs) -> None:
    # v4: "invalid heartbeat direction" (§2.4)
    await ws.send("2")
    await ws.wait_closed(1.0)


async def test_client_close_packet_closes(ws: EioWs) -> None:
    # §2.6: RealCast closes at once on a client "1" (the suite allows 2 s)
    await ws.send("1")
    frames = await ws.wait_closed(1.0)
    assert_only_heartbeats(frames)


async def test_frame_over_max_payload_closes(ws: EioWs) -> None:
    with contextlib.suppress(ConnectionClosed):  # the server may close while we still send
        await ws.send("4" + "a" * 1_000_000)  # 1 000 001 bytes
    frames = await ws.wait_closed(2.0)
    assert_only_heartbeats(frames)
    if ws.ws.close_code is not None and ws.ws.close_code not in (1000, 1005, 1006):
        assert ws.ws.close_code == 1009, ws.ws.close_code


async def test_frame_at_max_payload_is_echoed(ws: EioWs) -> None:
    msg = "4" + "z" * (1_000_000 - 1)
    await ws.send(msg)
    assert await ws.recv_msg(5) == msg


async def test_sessions_are_independent(port: int) -> None:
    a, _ = await EioWs.open_session(port)
    b, _ = await EioWs.open_session(port)
    try:
        await a.send("4for-a")
        await b.send("4for-b")
        assert await b.recv_msg() == "4for-b"
        assert await a.recv_msg() == "4for-a"
        await a.send("abc")
        await a.wait_closed(1.0)
        await b.send("4b-still-alive")
        assert await b.recv_msg() == "4b-still-alive"
    finally:
        await a.close()
        await b.close()
