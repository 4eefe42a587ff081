"""The upgrade and closing deadlines on real timers, in-process (short delays, so the test is quick).

The rules are tested without sockets in tests/unit/protocol; this checks that engine.py arms
the timers the machine asks for and that they fire.
"""

from __future__ import annotations

import asyncio

from engineio_min import Server
from engineio_min.engine import EngineEndpoint
from engineio_min.protocol.engine import EioTiming

from .eio_testkit import EIO_PATH, EioWs, IdleHandler, Polling

SHORT = EioTiming(ping_interval=25.0, ping_timeout=20.0, upgrade_timeout=0.3, closing_grace=0.3)



async def _serve() -> tuple[Server, EngineEndpoint, int]:
    server = Server(path=None)
    endpoint = server.mount_engine(EIO_PATH, IdleHandler)
    endpoint.timing = SHORT
    port = await server.start("127.0.0.1", 0)
    return server, endpoint, port


async def test_a_probe_that_never_finishes_is_closed_and_polling_goes_on() -> None:
    server, endpoint, port = await _serve()
    try:
        p = await Polling.start(port)
        ws = await EioWs.connect(port, EIO_PATH, sid=p.sid)
        await ws.send("2probe")
        assert await ws.recv(1.0) == "3probe"
        session = endpoint.sessions[p.sid]
        session.send_text("4waited")  # waits while the upgrade is under way
        resp = await p.get(timeout=1.0)
        assert resp.status == 200 and resp.body == b"6", resp
        await ws.wait_closed(2.0, pong=False)  # no "5": the probe is closed at the deadline
        resp = await p.get(timeout=1.0)
        assert resp.status == 200 and resp.body == b"4waited", resp
        assert session.transport_name == "polling" and not session.closed
    finally:
        await server.shutdown()


async def test_a_closing_polling_session_forgets_its_sid_after_the_grace() -> None:
    server, endpoint, port = await _serve()
    try:
        p = await Polling.start(port)
        session = endpoint.sessions[p.sid]
        session.send_text("4bye")
        await asyncio.sleep(0)  # the turn ends: the record waits in the outbox
        session.close()
        assert session.closed and p.sid in endpoint.sessions  # still answering GETs
        await asyncio.sleep(0.5)
        assert p.sid not in endpoint.sessions
        resp = await p.get(timeout=1.0)
        assert resp.status == 400 and resp.json()["code"] == 1, resp
    finally:
        await server.shutdown()
