"""Engine.IO heartbeat (SPEC.md §2.7; §5 "Heartbeat"). pingInterval 300 ms, pingTimeout 200 ms."""

from __future__ import annotations

import asyncio
import time

from .eio_testkit import EioWs, Polling


async def test_polling_three_ping_pong_rounds(port: int) -> None:
    p = await Polling.start(port)
    last = p.handshake_at
    for _ in range(3):
        resp = await p.get(timeout=2)
        now = time.monotonic()
        assert resp.status == 200 and resp.body == b"2", resp
        # the next ping comes pingInterval after the handshake / the last pong, not sooner
        assert now - last >= 0.25, f"ping after {now - last:.3f}s"
        assert now - last < 1.0, f"ping after {now - last:.3f}s"
        resp = await p.post("3")
        last = time.monotonic()
        assert resp.status == 200 and resp.body == b"ok", resp


async def test_websocket_three_ping_pong_rounds(port: int) -> None:
    c, _ = await EioWs.open_session(port)
    try:
        last = time.monotonic()
        for _ in range(3):
            assert await c.recv(2) == "2"
            now = time.monotonic()
            assert 0.2 <= now - last < 1.0, f"ping after {now - last:.3f}s"
            await c.send("3")
            last = time.monotonic()
        await c.send("4alive")
        assert await c.recv_msg() == "4alive"
    finally:
        await c.close()


async def test_polling_no_pong_closes_by_500ms(port: int) -> None:
    # the suite sleeps exactly pingInterval + pingTimeout: no grace period (§2.7)
    p = await Polling.start(port)
    await asyncio.sleep(0.5)
    resp = await p.get(timeout=1)
    assert resp.status == 400, resp
    assert resp.json() == {"code": 1, "message": "Session ID unknown"}, resp


async def test_polling_no_pong_with_held_get(port: int) -> None:
    # the held GET gets the ping; no pong follows, so the session dies 200 ms later
    p = await Polling.start(port)
    resp = await p.get(timeout=2)
    assert resp.body == b"2", resp
    await asyncio.sleep(0.25)
    resp = await p.get(timeout=1)
    assert resp.status == 400, resp


async def test_websocket_no_pong_closes(port: int) -> None:
    c, _ = await EioWs.open_session(port)
    try:
        assert await c.recv(2) == "2"
        t0 = time.monotonic()
        frames = await c.wait_closed(1.0, pong=False)
        assert frames == [], frames
        assert time.monotonic() - t0 < 0.6
    finally:
        await c.close()


async def test_only_pongs_reset_the_heartbeat(port: int) -> None:
    # other traffic does not keep a session alive (§2.7)
    c, _ = await EioWs.open_session(port)
    try:
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 1.5:
            try:
                await c.send("4chatter")
                await asyncio.wait_for(c.ws.recv(), 0.05)
            except TimeoutError:
                pass
            except Exception:  # ConnectionClosed on send or recv
                closed = True
                break
        assert closed, "session kept alive without pongs"
        assert time.monotonic() - t0 < 1.0
    finally:
        await c.close()


async def test_next_ping_is_timed_from_the_pong(port: int) -> None:
    # §2.7: on pong, the interval timer restarts; the next ping is pingInterval after the pong
    c, _ = await EioWs.open_session(port)
    try:
        assert await c.recv(2) == "2"
        await asyncio.sleep(0.12)  # still inside the 200 ms timeout
        await c.send("3")
        ponged = time.monotonic()
        assert await c.recv(2) == "2"
        assert time.monotonic() - ponged >= 0.25, f"next ping {time.monotonic() - ponged:.3f}s after pong"
        await c.send("3")
        await c.send("4ok")
        assert await c.recv_msg() == "4ok"
    finally:
        await c.close()


async def test_late_pong_does_not_save_the_session(port: int) -> None:
    p = await Polling.start(port)
    resp = await p.get(timeout=2)
    assert resp.body == b"2", resp
    await asyncio.sleep(0.3)  # past pingTimeout
    resp = await p.post("3")
    assert resp.status == 400, resp


async def test_unsolicited_pongs_neither_delay_the_ping_nor_keep_the_session(port: int) -> None:
    # A pong only answers a ping: a client pinging us with pongs cannot push its next ping
    # back (nor make the server keep a deadline per pong).
    c, _ = await EioWs.open_session(port)
    try:
        opened = time.monotonic()

        async def pong_every_100ms() -> None:
            while True:
                await c.send("3")
                await asyncio.sleep(0.1)

        ponger = asyncio.create_task(pong_every_100ms())
        try:
            assert await c.recv(2) == "2"
        finally:
            ponger.cancel()
        assert time.monotonic() - opened < 0.45, "the ping waited for the unsolicited pongs"
        # And without a real pong it still ends. A "3" the ponger sent just after the server's ping
        # (before this client read it) answers that ping, legitimately: so on a loaded machine a
        # few more pings may come before the close, but nothing else, and the close must come.
        frames = await c.wait_closed(2.0, pong=False)
        assert set(frames) <= {"2"} and len(frames) <= 3, frames
    finally:
        await c.close()
