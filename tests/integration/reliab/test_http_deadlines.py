"""Issue 12, item 2: HTTP deadlines over real sockets (short configured timeouts).

A request's line and headers must arrive within ``header_timeout`` of its first byte, its
body within ``body_timeout`` of the headers, and an idle keep-alive connection closes after
``keep_alive_timeout``. A long-poll GET that the server holds is not a slow request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from engineio_min import HttpRequest, HttpResponse, Server

HEADER = 0.6
BODY = 1.0
KEEP_ALIVE = 1.4
SLACK = 0.4


def echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, request.body)


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = Server(ping_interval=2.0, ping_timeout=2.0, header_timeout=HEADER, body_timeout=BODY,
                    keep_alive_timeout=KEEP_ALIVE)
    server.route("POST", "/echo", echo)
    yield await server.start()
    await server.shutdown()


async def read_until_closed(reader: asyncio.StreamReader, within: float) -> tuple[bytes, float]:
    """Everything the server wrote until it closed the connection, and when it closed."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), within)
    return data, time.monotonic() - started


async def test_half_a_request_line_gets_408_after_the_header_timeout(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /socket.io/?EIO=4&tra")
    data, elapsed = await read_until_closed(reader, HEADER + 5)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert HEADER - 0.05 <= elapsed <= HEADER + SLACK, elapsed
    writer.close()


async def test_slowloris_headers_are_cut_off_although_bytes_keep_coming(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()

    async def trickle() -> None:
        for _ in range(100):
            writer.write(b"X")  # one header byte every 50 ms, never finishing a header
            await asyncio.sleep(0.05)

    trickler = asyncio.create_task(trickle())
    try:
        data = await asyncio.wait_for(reader.read(), HEADER + 5)
    finally:
        trickler.cancel()
    elapsed = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert elapsed <= HEADER + SLACK, elapsed
    writer.close()


async def test_a_body_that_stops_arriving_gets_408_after_the_body_timeout(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    data, elapsed = await read_until_closed(reader, BODY + 5)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert BODY - 0.05 <= elapsed <= BODY + SLACK, elapsed
    writer.close()


async def test_a_slow_but_timely_body_is_served(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
    await asyncio.sleep(HEADER + 0.1)  # past the header deadline, within the body's
    writer.write(b"cd")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"abcd"
    writer.close()


async def test_idle_keep_alive_connection_is_closed_quietly(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert b"Connection: keep-alive" in head
    assert await asyncio.wait_for(reader.readexactly(2), 5) == b"hi"
    data, elapsed = await read_until_closed(reader, KEEP_ALIVE + 5)
    assert data == b""  # no 408 for a connection that owes us nothing
    assert KEEP_ALIVE - 0.05 <= elapsed <= KEEP_ALIVE + SLACK, elapsed
    writer.close()


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data, elapsed = await read_until_closed(reader, HEADER + 5)
    assert data == b""
    assert HEADER - 0.05 <= elapsed <= HEADER + SLACK, elapsed
    writer.close()


async def test_a_parked_long_poll_outlives_every_http_deadline(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    opening = (await reader.readexactly(length)).decode()
    sid = opening.split('"sid":"')[1].split('"')[0]
    # The GET is parked until the first ping (2 s), longer than every deadline above.
    started = time.monotonic()
    writer.write(f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert await asyncio.wait_for(reader.readexactly(1), 5) == b"2"  # the ping
    assert time.monotonic() - started >= KEEP_ALIVE
    writer.close()
