"""Issue 12, item 4: a client that ignores the server's `41` still loses its connection.

After the auth timeout, or the fifth failed `authenticate`, realcast disconnects the
namespace; the raw client here keeps the Engine.IO session open and would answer pings,
so only the server's grace close can end it.
"""

from __future__ import annotations

import time
from pathlib import Path

from realcast.handlers import MAX_AUTH_FAILURES, SESSION_END_GRACE
from tests.integration.engineio.eio_testkit import EioWs
from tests.integration.realcast.harness import APP_A, Harness

AUTH_TIMEOUT = 0.3


async def open_unauthenticated(rc: Harness) -> EioWs:
    assert rc.app is not None
    ws, _ = await EioWs.open_session(rc.app.server.port, path="/socket.io/")
    await ws.send("40")
    assert str(await ws.recv_msg()).startswith("40")
    return ws


async def test_auth_timeout_closes_the_connection_after_the_grace(tmp_path: Path) -> None:
    rc = Harness(tmp_path / "data", auth_timeout=AUTH_TIMEOUT)
    await rc.start()
    try:
        ws = await open_unauthenticated(rc)
        assert "authentication timeout" in str(await ws.recv_msg(AUTH_TIMEOUT + 2))
        assert await ws.recv_msg() == "41"
        seen_41 = time.monotonic()
        await ws.wait_closed(SESSION_END_GRACE + 2)
        assert time.monotonic() - seen_41 >= SESSION_END_GRACE - 0.1
        assert rc.app is not None and rc.app.server.session_count() == 0
    finally:
        await rc.stop()


async def test_too_many_failed_authentications_close_the_connection(tmp_path: Path) -> None:
    rc = Harness(tmp_path / "data")
    await rc.start()
    try:
        ws = await open_unauthenticated(rc)
        for attempt in range(MAX_AUTH_FAILURES):
            await ws.send(f'42{attempt}["authenticate",{{"token":"bad","app_id":"{APP_A.app_id}"}}]')
        frames = await ws.wait_closed(SESSION_END_GRACE + 2)
        assert "41" in frames, frames
        assert rc.app is not None and rc.app.server.session_count() == 0
    finally:
        await rc.stop()
