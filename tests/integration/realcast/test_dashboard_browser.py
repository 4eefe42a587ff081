"""The dashboard in a real headless Chromium, against a real ``realcast serve``.

The page signs in over its own Socket.IO client, and its numbers follow python-socketio clients
as they join, chat, react and get moderated. It ends with a screenshot; with
REALCAST_UPDATE_SCREENSHOT=1 that becomes the README's ``docs/dashboard.png`` (otherwise it goes to
the test's temporary directory, so that a test run leaves the checkout as it was).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from pathlib import Path
from typing import Any

from .cdp import Browser, chromium_path
from .harness import API_KEY_A, APP_A, SECRET_A, STREAM, Peer, token
from .process import ROOT, ServerProcess, realcast_env

ENV_APP = {"REALCAST_APP_ID": APP_A.app_id, "REALCAST_JWT_SECRET": SECRET_A, "REALCAST_API_KEY": API_KEY_A}
README_SCREENSHOT = ROOT / "docs" / "dashboard.png"


def text_of(element_id: str) -> str:
    return f"document.getElementById({json.dumps(element_id)}).textContent"


async def sign_in(browser: Browser, app_id: str, secret: str) -> None:
    await browser.evaluate(
        f"document.getElementById('app-id').value = {json.dumps(app_id)};"
        f"document.getElementById('secret').value = {json.dumps(secret)};"
        "document.getElementById('signin').requestSubmit();"
    )


async def viewer(url: str, user: str, transports: tuple[str, ...] = ("websocket",), **claims: Any) -> Peer:
    peer = Peer(url)
    await peer.connect({"token": token(APP_A, user, user.title(), **claims), "app_id": APP_A.app_id}, transports)
    await peer.next("authenticated")
    assert (await peer.call("chat:join", {"stream_id": STREAM}))["ok"]
    return peer


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_dashboard_in_headless_chromium(tmp_path: Path) -> None:
    executable = chromium_path()
    assert executable, "chromium is not installed: apt-get install chromium (.ci/run installs it)"
    server = await asyncio.to_thread(ServerProcess, env=realcast_env(**ENV_APP, REALCAST_DATA_DIR=str(tmp_path)))
    browser = Browser(executable)
    peers: list[Peer] = []
    try:
        await browser.start()
        await browser.goto(server.url + "/dashboard")
        assert await browser.evaluate(text_of("state")) == "signed out"

        await sign_in(browser, APP_A.app_id, "not-the-key-0123456789")
        error = await browser.wait_for(text_of("signin-error"))
        assert error == "Sign-in refused: invalid credentials"
        assert await browser.evaluate("document.getElementById('board').hidden") is True

        await sign_in(browser, APP_A.app_id, API_KEY_A)
        await browser.wait_for(text_of("state") + " === 'live'")
        assert await browser.evaluate(text_of("total-viewers")) == "0"
        assert await browser.evaluate("document.getElementById('no-streams').hidden") is False

        # Clients arrive: the numbers follow.
        for user in ("alice", "bob"):
            peers.append(await viewer(server.url, user))
        peers.append(await viewer(server.url, "carol", ("polling",)))
        mod = await viewer(server.url, "mod", moderator_of=[STREAM])
        peers.append(mod)
        await browser.wait_for(text_of("total-viewers") + " === '4'")
        assert await browser.evaluate(text_of("by-transport")) == "polling 1 · websocket 3"

        for i, peer in enumerate(peers[:3]):
            for n in range(2):
                assert (await peer.call("chat:message", {"stream_id": STREAM, "message": f"hi {i}.{n}"}))["ok"]
            assert (await peer.call("reaction:send", {"stream_id": STREAM, "emoji": "🔥"}))["ok"]
        await asyncio.to_thread(
            _post_live, f"{server.url}/api/v1/apps/{APP_A.app_id}/streams/{STREAM}/live", "Launch day"
        )
        assert (await mod.call("moderation:slow-mode", {"stream_id": STREAM, "enabled": True, "interval": 10}))["ok"]
        ban = {"stream_id": STREAM, "target_user_id": "carol", "reason": "spam", "duration": 600}
        assert (await mod.call("moderation:ban", ban))["ok"]

        await browser.wait_for(text_of("total-messages") + " === '6'")
        await browser.wait_for(text_of("total-viewers") + " === '3'")  # carol was banned out of the stream
        assert await browser.evaluate(text_of("total-reactions")) == "3"
        row = await browser.wait_for(
            "[...document.querySelectorAll('#streams tr')].map(r => [...r.cells].map(c => c.textContent))"
        )
        assert row == [[f"{STREAM} — Launch day", "live", "3", "4", "6", "3", "every 10 s"]]
        actions = await browser.evaluate(
            "[...document.querySelectorAll('#moderation tr')].map(r => [...r.cells].slice(1).map(c => c.textContent))"
        )
        assert actions == [
            ["ban", STREAM, "mod", "carol", "600 s, spam"],
            ["slow-mode", STREAM, "mod", "", "on, every 10 s"],
        ]
        # A few more seconds of activity (the moderator is exempt from slow mode), for the chart.
        for n in range(6):
            assert (await mod.call("chat:message", {"stream_id": STREAM, "message": f"welcome {n}"}))["ok"]
            if n == 2:
                peers.append(await viewer(server.url, "dave"))
            await asyncio.sleep(0.8)
        await browser.wait_for(text_of("total-messages") + " === '12'")
        # The chart draws one point per snapshot (one a second).
        points = await browser.evaluate("document.querySelector('#chart polyline.messages').getAttribute('points')")
        assert len(points.split()) >= 5

        shot = README_SCREENSHOT if os.environ.get("REALCAST_UPDATE_SCREENSHOT") else tmp_path / "dashboard.png"
        await browser.screenshot(shot)
        assert png_size(shot) == (browser.width, browser.height)
    finally:
        for peer in peers:
            await peer.close()
        await browser.close()
        status, stderr = await asyncio.to_thread(server.stop)
    assert status == 0, stderr


def _post_live(url: str, title: str) -> None:
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps({"title": title}).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {API_KEY_A}")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
