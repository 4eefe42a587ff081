"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol with ``websockets``.

Just what the dashboard test needs: open a page, evaluate JavaScript in it, take a screenshot.
Every wait has a timeout; the browser process is always killed at the end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

TIMEOUT = 10.0
DEVTOOLS_URL = re.compile(r"DevTools listening on (ws://\S+)")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page (a DevTools session attached to it)."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="realcast-chromium-", ignore_cleanup_errors=True)
        # stderr goes to a file: a pipe nobody reads after start-up could fill up and stall chromium.
        self._stderr_path = Path(self._profile.name) / "stderr.log"
        self._stderr = self._stderr_path.open("w")
        self.proc = subprocess.Popen(
            [
                executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}",
                f"--window-size={width},{height}", "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,  # its own process group: closing kills its helpers too
        )
        self.width, self.height = width, height
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._session = ""

    async def _devtools_url(self) -> str:
        deadline = time.monotonic() + TIMEOUT
        text = ""
        while time.monotonic() < deadline and self.proc.poll() is None:
            text = self._stderr_path.read_text(errors="replace")
            match = DEVTOOLS_URL.search(text)
            if match:
                return match.group(1)
            await asyncio.sleep(0.05)
        raise RuntimeError("chromium did not start: " + text)

    async def start(self) -> None:
        url = await self._devtools_url()
        self._ws = await connect(url, max_size=None, open_timeout=TIMEOUT)
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        self._session = attached["sessionId"]
        await self.send("Page.enable", session=True)
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )

    async def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = False) -> Any:
        """One DevTools command; its result (events that arrive meanwhile are skipped)."""
        assert self._ws is not None
        call_id = next(self._ids)
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        await self._ws.send(json.dumps(message))
        async with asyncio.timeout(TIMEOUT):
            while True:
                reply = json.loads(await self._ws.recv())
                if reply.get("id") == call_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url}, session=True)
        await self.wait_for("document.readyState === 'complete' && location.href === " + json.dumps(url))

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = TIMEOUT) -> Any:
        """Poll ``expression`` in the page until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"still falsy after {timeout} s: {expression} (last: {value!r})")

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png"}, session=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 5)
        self._stderr.close()
        self._profile.cleanup()
