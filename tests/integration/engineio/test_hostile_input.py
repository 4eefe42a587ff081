"""Hostile input: the server answers with an error or closes, never crashes, and keeps serving.

Each test runs its own conformance app. A bystander Socket.IO client is connected before the
attack and must still be served after it, and fresh clients must be served too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os

import pytest
from websockets.exceptions import ConnectionClosed

from .eio_testkit import (
    EIO_PATH,
    RS,
    AppProcess,
    Bystander,
    EioWs,
    HttpClosed,
    HttpConn,
    Polling,
    RawWs,
    assert_healthy,
    eio_url,
    ensure_alive,
    ws_frame,
)


@pytest.fixture
async def bystander(fresh_app: AppProcess):
    b = await Bystander.join(fresh_app.port)
    yield b
    try:
        ensure_alive(fresh_app)
        await b.check()
        await assert_healthy(fresh_app)
    finally:
        await b.close()


async def error_or_close(conn: HttpConn, timeout: float = 3.0) -> str:
    """The server answers with a 4xx/5xx status or closes the connection; returns which."""
    try:
        resp = await conn.read_response(timeout)
    except HttpClosed:
        return "closed"
    assert 400 <= resp.status < 600, f"expected an error status or a close, got {resp!r}"
    return str(resp.status)


# --------------------------------------------------------------------------- HTTP level


@pytest.mark.parametrize(
    "junk",
    [
        b"\x00\xff\x13\x37garbage\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200),  # a TLS ClientHello
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\r\n" * 10 + b"\xde\xad\xbe\xef" * 100,
        b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nbroken header line\r\n\r\n",
    ],
    ids=["binary", "tls-hello", "no-target", "http-9.9", "blank-lines-then-junk", "bad-header-line"],
)
async def test_garbage_instead_of_http(fresh_app: AppProcess, bystander: Bystander, junk: bytes) -> None:
    conn = await HttpConn.open(fresh_app.port)
    try:
        await conn.send_raw(junk)
        await error_or_close(conn)
    finally:
        conn.abort()


async def test_random_bytes_on_many_connections(fresh_app: AppProcess, bystander: Bystander) -> None:
    conns = [await HttpConn.open(fresh_app.port) for _ in range(20)]
    for c in conns:
        with contextlib.suppress(ConnectionError):
            await c.send_raw(os.urandom(4096))
    for c in conns:
        c.abort()
    await asyncio.sleep(0.1)


async def test_partial_request_then_disconnect(fresh_app: AppProcess, bystander: Bystander) -> None:
    for partial in (b"GET /engine.io/?EIO=4&transp", b"POST /engine.io/ HTTP/1.1\r\nContent-Length: 100\r\n\r\n4ab"):
        conn = await HttpConn.open(fresh_app.port)
        await conn.send_raw(partial)
        await asyncio.sleep(0.05)
        conn.abort()


async def test_ten_megabyte_post(fresh_app: AppProcess, bystander: Bystander) -> None:
    p = await Polling.start(fresh_app.port)
    body = b"4" + b"a" * 10_000_000
    conn = await HttpConn.open(fresh_app.port)
    writer = None
    try:
        await conn.send_raw(
            conn.build_request("POST", p.url, headers={"Content-Type": "text/plain"}, content_length=len(body))
        )
        writer = asyncio.ensure_future(conn.send_raw(body, timeout=10))
        outcome = await error_or_close(conn, timeout=10)
        assert outcome in ("413", "closed"), outcome
    finally:
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        conn.abort()


async def test_ten_megabyte_chunked_post(fresh_app: AppProcess, bystander: Bystander) -> None:
    # no Content-Length to check up front: the limit must hold while reading
    p = await Polling.start(fresh_app.port)
    conn = await HttpConn.open(fresh_app.port)

    async def send_chunks() -> None:
        await conn.send_raw(
            conn.build_request("POST", p.url, headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
        )
        chunk = b"a" * 65536
        await conn.send_raw(b"%x\r\n4" % 1 + b"\r\n")
        for _ in range(160):  # ~10 MB
            await conn.send_raw(b"%x\r\n" % len(chunk) + chunk + b"\r\n", timeout=10)
        await conn.send_raw(b"0\r\n\r\n")

    writer = asyncio.ensure_future(send_chunks())
    try:
        outcome = await error_or_close(conn, timeout=10)
        assert outcome in ("413", "400", "411", "closed"), outcome
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        conn.abort()


async def test_content_length_lies(fresh_app: AppProcess, bystander: Bystander) -> None:
    for value in ("-1", "abc", "99999999999999999999999", "1, 2"):
        conn = await HttpConn.open(fresh_app.port)
        try:
            await conn.send_raw(
                conn.build_request("POST", eio_url(EIO_PATH, sid="x"), headers={"Content-Length": value}) + b"4hello"
            )
            await error_or_close(conn)
        finally:
            conn.abort()


async def test_invalid_utf8_in_post_body(fresh_app: AppProcess, bystander: Bystander) -> None:
    p = await Polling.start(fresh_app.port)
    conn = await HttpConn.open(fresh_app.port)
    try:
        body = b"4ok\x1e4\xff\xfe\xc3\x28"
        await conn.send_request("POST", p.url, body, {"Content-Type": "text/plain;charset=UTF-8"})
        await error_or_close(conn)
    finally:
        conn.abort()
    # the session that sent it is closed, like for any undecodable payload
    resp = await p.get(timeout=1.0)
    assert resp.status == 400, resp


async def test_invalid_base64_in_post_body(fresh_app: AppProcess, bystander: Bystander) -> None:
    p = await Polling.start(fresh_app.port)
    conn = await HttpConn.open(fresh_app.port)
    try:
        await conn.send_request("POST", p.url, b"b!!!not*base64", {"Content-Type": "text/plain;charset=UTF-8"})
        try:
            resp = await conn.read_response()
            assert resp.status != 500, resp
        except HttpClosed:
            pass
    finally:
        conn.abort()


async def test_thousands_of_tiny_packets_in_one_post(fresh_app: AppProcess, bystander: Bystander) -> None:
    p = await Polling.start(fresh_app.port)
    n = 5000
    resp = await p.post(RS.join(["4"] * n), timeout=5)
    if resp.status == 200:
        assert resp.body == b"ok", resp
        # accepted: every packet is echoed, in one or more GETs
        assert await p.read_records(n, timeout=5) == ["4"] * n
    else:
        # refused (packet-count limit): an error status, and no crash
        assert 400 <= resp.status < 500, resp


async def test_thousands_of_frames_at_once(fresh_app: AppProcess, bystander: Bystander) -> None:
    c, _ = await EioWs.open_session(fresh_app.port)
    try:
        for i in range(3000):
            await c.send(f"4{i}")
        for i in range(3000):
            assert await c.recv_msg() == f"4{i}"
    finally:
        await c.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /engine.io/?EIO=4&transport=polling&pad=" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
        + b"\r\n",
        b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200_000 + b"\r\n\r\n",
    ],
    ids=["long-request-line", "too-many-headers", "huge-header"],
)
async def test_oversized_request_head(fresh_app: AppProcess, bystander: Bystander, request_bytes: bytes) -> None:
    conn = await HttpConn.open(fresh_app.port)
    try:
        with contextlib.suppress(ConnectionError):
            await conn.send_raw(request_bytes)
        outcome = await error_or_close(conn)
        assert outcome in ("400", "413", "414", "431", "closed"), outcome
    finally:
        conn.abort()


@pytest.mark.parametrize("method", ["FOO", "DELETE", "PATCH", "TRACE", "CONNECT"])
async def test_unknown_http_method(fresh_app: AppProcess, bystander: Bystander, method: str) -> None:
    p = await Polling.start(fresh_app.port)
    for target in (eio_url(EIO_PATH), p.url, "/elsewhere"):
        conn = await HttpConn.open(fresh_app.port)
        try:
            await conn.send_request(method, target, b"4x" if method != "CONNECT" else b"")
            await error_or_close(conn)
        finally:
            conn.abort()


# --------------------------------------------------------------------------- WebSocket level


async def open_raw(port: int) -> RawWs:
    raw = await RawWs.connect(port)
    op, data = await raw.recv_frame()
    assert op == 0x1 and data.startswith(b"0{"), (op, data)
    return raw


async def test_truncated_frame_then_close(fresh_app: AppProcess, bystander: Bystander) -> None:
    raw = await open_raw(fresh_app.port)
    frame = ws_frame(0x1, b"4" + b"x" * 1000)
    await raw.conn.send_raw(frame[:100])  # header says 1001 bytes, 96 arrive
    raw.conn.abort()
    await asyncio.sleep(0.1)


async def test_truncated_frame_then_silence(fresh_app: AppProcess, bystander: Bystander) -> None:
    # pongs can no longer be parsed, so the heartbeat must end the session
    raw = await open_raw(fresh_app.port)
    try:
        frame = ws_frame(0x1, b"4" + b"x" * 1000)
        await raw.conn.send_raw(frame[:100])
        assert await raw.conn.closed_by_peer(2.0), "server kept a stuck connection open"
    finally:
        raw.conn.abort()


async def test_invalid_utf8_in_text_frame(fresh_app: AppProcess, bystander: Bystander) -> None:
    raw = await open_raw(fresh_app.port)
    try:
        await raw.send_frame(0x1, b"4\xff\xfe\xc3\x28")
        frames = await raw.expect_closed(1.0)
        closes = [d for op, d in frames if op == 0x8]
        if closes and len(closes[0]) >= 2:
            assert int.from_bytes(closes[0][:2], "big") == 1007, closes  # RFC 6455 §8.1
    finally:
        raw.conn.abort()


async def test_unmasked_client_frame(fresh_app: AppProcess, bystander: Bystander) -> None:
    raw = await open_raw(fresh_app.port)
    try:
        await raw.conn.send_raw(bytes([0x81, 6]) + b"4hello")  # clients must mask (RFC 6455 §5.1)
        frames = await raw.expect_closed(1.0)
        assert not any(op == 0x1 and d == b"4hello" for op, d in frames), frames
    finally:
        raw.conn.abort()


async def test_reserved_opcode_and_rsv_bits(fresh_app: AppProcess, bystander: Bystander) -> None:
    for frame in (ws_frame(0x3, b"4x"), bytes([0xC1]) + ws_frame(0x1, b"4x")[1:]):
        raw = await open_raw(fresh_app.port)
        try:
            await raw.conn.send_raw(frame)
            await raw.expect_closed(1.0)
        finally:
            raw.conn.abort()


async def test_ten_megabyte_frame(fresh_app: AppProcess, bystander: Bystander) -> None:
    raw = await open_raw(fresh_app.port)
    try:
        frame = ws_frame(0x1, b"4" + b"a" * 10_000_000)
        with contextlib.suppress(ConnectionError, TimeoutError):
            await raw.conn.send_raw(frame, timeout=10)
        await raw.expect_closed(3.0)
    finally:
        raw.conn.abort()


async def test_fragmented_message_is_reassembled(fresh_app: AppProcess, bystander: Bystander) -> None:
    raw = await open_raw(fresh_app.port)
    try:
        await raw.send_frame(0x1, b"4frag", fin=False)
        await raw.send_frame(0x9, b"ping-between")  # control frames may interleave
        await raw.send_frame(0x0, b"mented", fin=False)
        await raw.send_frame(0x0, b"!", fin=True)
        got: list[tuple[int, bytes]] = []
        async with asyncio.timeout(2):
            while (0x1, b"4fragmented!") not in got or (0xA, b"ping-between") not in got:
                op, data = await raw.recv_frame()
                got.append((op, data))
                if (op, data) == (0x1, b"2"):
                    await raw.send_frame(0x1, b"3")
        assert (0xA, b"ping-between") in got, got
    finally:
        raw.conn.abort()


async def test_bad_websocket_upgrade_requests(fresh_app: AppProcess, bystander: Bystander) -> None:
    base = {"Upgrade": "websocket", "Connection": "Upgrade"}
    variants = [
        {**base, "Sec-WebSocket-Version": "13"},  # no key
        {**base, "Sec-WebSocket-Key": "short", "Sec-WebSocket-Version": "13"},
        {**base, "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), "Sec-WebSocket-Version": "8"},
    ]
    for headers in variants:
        conn = await HttpConn.open(fresh_app.port)
        try:
            await conn.send_request("GET", eio_url(EIO_PATH, transport="websocket"), headers=headers)
            await error_or_close(conn)
        finally:
            conn.abort()


async def test_websocket_aborted_mid_session(fresh_app: AppProcess, bystander: Bystander) -> None:
    for _ in range(10):
        c, _ = await EioWs.open_session(fresh_app.port)
        await c.send("4bye")
        c.ws.transport.abort()
    # a socket.io session too, with a join
    raw = await RawWs.connect(fresh_app.port, "/socket.io/")
    await raw.recv_frame()
    await raw.send_frame(0x1, b"40")
    raw.conn.abort()
    await asyncio.sleep(0.1)


async def test_socketio_flood_of_events(fresh_app: AppProcess, bystander: Bystander) -> None:
    c, _ = await EioWs.open_session(fresh_app.port, "/socket.io/")
    try:
        await c.send("40")
        assert (await c.recv_msg()).startswith("40")
        await c.recv_msg()
        for i in range(2000):
            await c.send(f'42["message",{i}]')
        for i in range(2000):
            assert await c.recv_msg() == f'42["message-back",{i}]'
    except ConnectionClosed:
        pytest.fail("server closed a well-formed (if busy) Socket.IO session")
    finally:
        await c.close()
