"""Server-initiated disconnects on the wire (SPEC.md §3.6, §2.5 "Server close over polling").

Uses tests/apps/interop.py: ``drop_me`` = ``sock.disconnect(close_engine=True)`` (``41``, then
the engine connection closes), ``kick_me`` = ``sock.disconnect()`` (``41``, the engine stays).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from .eio_testkit import SIO_PATH, AppProcess, EioWs, Polling, ensure_alive, split_payload


@pytest.fixture
def port(interop_app: AppProcess) -> Iterator[int]:
    yield interop_app.port
    ensure_alive(interop_app)


async def joined_polling(port: int) -> Polling:
    p = await Polling.start(port, SIO_PATH)
    await p.post_ok("40")
    (reply,) = await p.read_records(1)
    assert reply.startswith('40{"sid":'), reply
    return p


async def responses_until_gone(p: Polling, first_body: bytes) -> list[list[str]]:
    """Records of ``first_body`` and of each later GET (one list per response, pings and noops
    left out) until the session is gone, which must be by the next request after a ``1``."""
    responses = [split_payload(first_body)]
    async with asyncio.timeout(3):
        while "1" not in responses[-1]:
            resp = await p.get(timeout=2)
            if resp.status == 400:
                break
            assert resp.status == 200, resp
            responses.append(split_payload(resp.body))
    resp = await p.get(timeout=1)
    assert resp.status == 400, f"session still open after {responses!r}: {resp!r}"
    return [kept for kept in ([r for r in rs if r not in ("2", "6")] for rs in responses) if kept]


# socket.io-client handles the close packet of a polling payload at once but Socket.IO packets
# on the next tick, so a "41" sharing a response with the "1" is seen as "transport close" (and
# the client reconnects). The "41" has to go out in an earlier response than the "1", as the
# reference server does (close() waits for the write buffer to drain; SPEC.md §2.5).


async def test_drop_over_polling_with_pending_get(port: int) -> None:
    p = await joined_polling(port)
    held = await p.start_get()
    try:
        await asyncio.sleep(0.05)
        await p.post_ok('42["drop_me"]')
        first = await held.read_response(timeout=2)
        assert first.status == 200, first
    finally:
        await held.close()
    assert await responses_until_gone(p, first.body) == [["41"], ["1"]], first


async def test_drop_over_polling_without_pending_get(port: int) -> None:
    p = await joined_polling(port)
    await p.post_ok('42["drop_me"]')
    await asyncio.sleep(0.05)
    first = await p.get(timeout=2)
    assert first.status == 200, first
    assert await responses_until_gone(p, first.body) == [["41"], ["1"]], first


async def test_drop_over_websocket(port: int) -> None:
    c, _ = await EioWs.open_session(port, SIO_PATH)
    try:
        await c.send("40")
        assert (await c.recv_msg()).startswith('40{"sid":')
        await c.send('42["drop_me"]')
        frames = [f for f in await c.wait_closed(1.0) if f != "2"]
        assert frames in (["41"], ["41", "1"]), frames
    finally:
        await c.close()


async def test_kick_over_polling_keeps_engine(port: int) -> None:
    p = await joined_polling(port)
    held = await p.start_get()
    try:
        await asyncio.sleep(0.05)
        await p.post_ok('42["kick_me"]')
        resp = await held.read_response(timeout=2)
        assert resp.status == 200 and resp.body == b"41", resp
    finally:
        await held.close()
    # the engine session lives on: join again over it
    await p.post_ok("40")
    (reply,) = await p.read_records(1)
    assert reply.startswith('40{"sid":'), reply
