"""The seed's client code, changed only in URL and token, against `realcast serve`.

* The JavaScript "Complete Chat Example" class, run by node with the stock socket.io-client
  (tests/js/node_modules): messages, typing, a reaction, viewer counts and a ban.
* The Python connection sample (python-socketio's synchronous ``Client``), with a driver appended
  that uses its ``sio``: authenticate-after-connect, messages, typing, a reaction, viewer counts
  and a ban, with a moderator in this process.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import API_KEY_A, APP_A, SECRET_A, STREAM, Peer, token
from .process import ROOT, ServerProcess, realcast_env

HERE = Path(__file__).parent
NODE_MODULES = ROOT / "tests" / "js" / "node_modules"
SEED_URL = "wss://realtime.realcast.io"
SEED_TOKEN = "your_jwt_token"
TIMEOUT = 30.0
# The seed document, where the steering repository lays shared/ out beside this checkout.
SEED = ROOT.parent / "shared" / "seed" / "realcast-websocket-api.md"


def substitute(source: str, url: str, jwt: str) -> str:
    """Replace the seed's URL and token, each exactly once (the only changes allowed)."""
    assert source.count(SEED_URL) == 1 and source.count(SEED_TOKEN) == 1
    return source.replace(SEED_URL, url).replace(SEED_TOKEN, jwt)


def _seed_block(document: str, heading: str, language: str) -> str:
    text = document[document.index(heading) :]
    text = text[text.index(f"```{language}\n") + len(language) + 4 :]
    return text[: text.index("```")]


@pytest.mark.skipif(not SEED.exists(), reason="the seed document is not beside this checkout")
def test_stored_samples_are_the_seeds_verbatim() -> None:
    document = SEED.read_text(encoding="utf-8")
    js = _seed_block(document, "## Complete Chat Example", "javascript")
    # The seed's emoji are UTF-8 read as Windows-1252 (mojibake); the stored copy has them back.
    js = js.replace("\u00f0\u0178\u2018\u2039", "👋").replace("\u00f0\u0178\u2018\u008d", "👍")
    js = js.replace("\u00f0\u0178\u2018", "👍")
    stored_js = (HERE / "js" / "complete_chat_example.mjs").read_text(encoding="utf-8")
    assert stored_js.endswith(js)
    assert (HERE / "samples" / "seed_python_sample.py.txt").read_text(encoding="utf-8") == _seed_block(
        document, "### Python", "python"
    )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = realcast_env(
        REALCAST_APP_ID=APP_A.app_id,
        REALCAST_JWT_SECRET=SECRET_A,
        REALCAST_API_KEY=API_KEY_A,
        REALCAST_DATA_DIR=str(tmp_path / "data"),
    )
    proc = await asyncio.to_thread(ServerProcess, env=env)
    try:
        yield proc
    finally:
        status, err = await asyncio.to_thread(proc.stop)
        assert status == 0, err


async def run_complete_chat_example(url: str, tmp_path: Path, wrapper: Path | None = None) -> list[str]:
    """Run the seed's JS example (URL and token substituted) under js/drive_complete_chat.mjs,
    whose moderator connects to ``url`` too; returns node's output lines once it exited 0.

    ``wrapper``: a module to run instead, which imports ``./drive.mjs`` itself.
    """
    work = tmp_path / "js"
    work.mkdir()
    # ES modules resolve packages from the importing file's directory, so the scripts run from a
    # folder whose node_modules is the test client package's.
    (work / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    example = (HERE / "js" / "complete_chat_example.mjs").read_text(encoding="utf-8")
    viewer_token = token(APP_A, "user_abc123", "GamerPro")
    (work / "example.mjs").write_text(substitute(example, url, viewer_token), encoding="utf-8")
    shutil.copy(HERE / "js" / "drive_complete_chat.mjs", work / "drive.mjs")
    entry = "drive.mjs"
    if wrapper is not None:
        shutil.copy(wrapper, work / "main.mjs")
        entry = "main.mjs"
    mod_token = token(APP_A, "mod", "Mod", moderator_of=[STREAM])
    node = await asyncio.create_subprocess_exec(
        "node",
        entry,
        cwd=work,
        env={"PATH": realcast_env()["PATH"], "REALCAST_URL": url, "MOD_TOKEN": mod_token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(node.communicate(), TIMEOUT)
    finally:
        if node.returncode is None:
            node.kill()
    output = out.decode()
    assert node.returncode == 0, output
    return output.splitlines()


def assert_complete_chat_output(lines: list[str]) -> None:
    """What the example prints when messages, typing, the viewer count and the ban all reached it."""
    assert "Connected!" in lines
    assert "GamerPro: Hello everyone!" in lines
    assert "Mod is typing..." in lines and "Mod: Welcome!" in lines
    assert "Viewers: 2" in lines
    assert "ALERT: You have been banned from this chat" in lines
    assert lines[-1] == "DRIVER OK"


class PythonSample:
    """The seed's Python sample (URL and token substituted) with samples/python_driver.py appended,
    run as a child process; ``extra`` is inserted between the two."""

    def __init__(self, url: str, tmp_path: Path, extra: str = "") -> None:
        sample = (HERE / "samples" / "seed_python_sample.py.txt").read_text(encoding="utf-8")
        driver = (HERE / "samples" / "python_driver.py").read_text(encoding="utf-8")
        self.script = tmp_path / "sample.py"
        self.script.write_text(substitute(sample, url, token(APP_A, "py_user", "PyUser")) + "\n" + extra + driver)
        self.output: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(self.script),
            env=realcast_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def read_until(self, marker: str) -> None:
        """Read output lines up to one that starts with ``marker`` (a FAILED line fails the test)."""
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(self.proc.stdout.readline(), TIMEOUT)).decode()
            if not line:
                raise AssertionError("sample exited early:\n" + "".join(self.output))
            self.output.append(line)
            if line.startswith(("FAILED", marker)):
                assert line.startswith(marker), "".join(self.output)
                return

    async def wait(self) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), TIMEOUT)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.mark.skipif(shutil.which("node") is None or not NODE_MODULES.is_dir(), reason="needs node + tests/js")
async def test_js_complete_chat_example(server: ServerProcess, tmp_path: Path) -> None:
    assert_complete_chat_output(await run_complete_chat_example(server.url, tmp_path))


async def test_python_sample(server: ServerProcess, tmp_path: Path) -> None:
    sample = PythonSample(server.url, tmp_path)
    mod = Peer(server.url)
    await mod.connect({"token": token(APP_A, "mod", "Mod", moderator_of=[STREAM]), "app_id": APP_A.app_id})
    await sample.start()
    try:
        assert (await mod.call("chat:join", {"stream_id": STREAM}))["ok"] is True
        await sample.read_until("READY")
        assert sample.output[0].strip() == "Connected to RealCast"  # the sample's own print
        seen = {e for e, _ in mod.received}
        assert {"chat:message", "reaction.sent", "chat:typing", "viewer.joined"} <= seen, mod.received
        await moderate_the_sample(mod, sample)
    finally:
        await sample.stop()
        await mod.close()


async def moderate_the_sample(mod: Peer, sample: PythonSample) -> None:
    """The moderator's side after READY (the sample's message was heard, as the sample sent it):
    typing, a message, the ban; the sample then ends cleanly."""
    message = next(d for e, d in mod.received if e == "chat:message")
    assert (message["user_id"], message["username"], message["message"]) == ("py_user", "PyUser", "hello from python")
    await mod.emit("chat:typing", {"stream_id": STREAM})
    await mod.call("chat:message", {"stream_id": STREAM, "message": "Welcome, Python!"})
    ack = await mod.call("moderation:ban", {"stream_id": STREAM, "target_user_id": "py_user", "reason": "test"})
    assert ack["ok"] is True
    await sample.read_until("DONE")
    assert await sample.wait() == 0
