"""Engine.IO upgrade from polling to WebSocket (SPEC.md §2.8; §5 "Upgrade")."""

from __future__ import annotations

import asyncio

from .eio_testkit import EIO_PATH, EioWs, Polling, ws_refused


async def probe(p: Polling) -> EioWs:
    ws = await EioWs.connect(p.port, EIO_PATH, sid=p.sid)
    await ws.send("2probe")
    got = await ws.recv(1.0)
    assert got == "3probe", f"expected 3probe, got {got!r}"
    return ws


def assert_bad_request(resp) -> None:
    # after the upgrade the sid lives on, but HTTP requests use the wrong transport: code 3
    assert resp.status == 400, resp
    assert resp.json() == {"code": 3, "message": "Bad request"}, resp


async def test_full_upgrade(port: int) -> None:
    p = await Polling.start(port)
    ws = await probe(p)
    try:
        # a GET after 3probe gets exactly a noop so the client can drain polling
        resp = await p.get(timeout=1.0)
        assert resp.status == 200 and resp.body == b"6", resp
        await ws.send("5")
        await ws.send("4hello")
        # the echo is the very next frame: no leftover noop / ping flushed onto the socket
        assert await ws.recv(1.0) == "4hello"
        await ws.send(b"\x01\x02\x03\x04")
        assert await ws.recv_msg(1.0) == b"\x01\x02\x03\x04"
        assert_bad_request(await p.get(timeout=1.0))
        assert_bad_request(await p.post("4late"))
    finally:
        await ws.close()


async def test_pending_get_gets_noop_after_probe(port: int) -> None:
    p = await Polling.start(port)
    held = await p.start_get()
    try:
        await asyncio.sleep(0.03)
        ws = await probe(p)
        try:
            resp = await held.read_response(timeout=1.0)
            assert resp.status == 200 and resp.body == b"6", resp
            await ws.send("5")
            await ws.send("4after")
            assert await ws.recv(1.0) == "4after"
        finally:
            await ws.close()
    finally:
        await held.close()


async def test_heartbeat_moves_to_websocket(port: int) -> None:
    p = await Polling.start(port)
    ws = await probe(p)
    try:
        await ws.send("5")
        # pings now come over the WebSocket; answering them keeps the session up
        for _ in range(2):
            assert await ws.recv(1.0) == "2"
            await ws.send("3")
        await ws.send("4still-up")
        assert await ws.recv_msg() == "4still-up"
    finally:
        await ws.close()


async def test_second_websocket_after_upgrade_is_closed(port: int) -> None:
    p = await Polling.start(port)
    ws = await probe(p)
    try:
        await ws.send("5")
        # SPEC 2.8 (the official suites' case): accepted, then closed at once
        assert await ws_refused(port, EIO_PATH, sid=p.sid) == "closed after 101"
        # the first one keeps working
        await ws.send("4first")
        assert await ws.recv_msg() == "4first"
    finally:
        await ws.close()


async def test_second_websocket_during_probe_is_closed(port: int) -> None:
    p = await Polling.start(port)
    ws = await probe(p)
    try:
        assert await ws_refused(port, EIO_PATH, sid=p.sid, timeout=0.2) == "closed after 101"
        await ws.send("5")
        await ws.send("4first")
        assert await ws.recv_msg() == "4first"
    finally:
        await ws.close()


async def test_upgrade_of_websocket_session_is_refused(port: int) -> None:
    c, open_pkt = await EioWs.open_session(port)
    try:
        assert await ws_refused(port, EIO_PATH, sid=open_pkt["sid"]) == "closed after 101"
        await c.send("4ws-only")
        assert await c.recv_msg() == "4ws-only"
    finally:
        await c.close()


async def test_polling_keeps_working_until_upgrade_packet(port: int) -> None:
    # §2.8 step 5: until "5", server traffic keeps going over polling
    p = await Polling.start(port)
    ws = await EioWs.connect(port, EIO_PATH, sid=p.sid)
    try:
        await p.post_ok("4before-probe")
        resp = await p.get(timeout=1.0)
        assert resp.status == 200 and resp.body == b"4before-probe", resp
        await ws.send("2probe")
        assert await ws.recv(1.0) == "3probe"
        await ws.send("5")
        await ws.send("4on-ws")
        assert await ws.recv(1.0) == "4on-ws"
    finally:
        await ws.close()


async def test_other_packet_on_probe_socket_closes_it_and_keeps_polling(port: int) -> None:
    # [ref] anything but 2probe / 5 on the probing socket closes that socket only
    p = await Polling.start(port)
    ws = await EioWs.connect(port, EIO_PATH, sid=p.sid)
    try:
        await ws.send("4not-a-probe")
        await ws.wait_closed(1.0, pong=False)
    finally:
        await ws.close()
    await p.post_ok("4polling-still-works")
    resp = await p.get(timeout=1.0)
    assert resp.status == 200 and resp.body == b"4polling-still-works", resp


async def test_upgrade_on_closed_session_is_refused(port: int) -> None:
    p = await Polling.start(port)
    await p.post_ok("1")
    await ws_refused(port, EIO_PATH, sid=p.sid)
