"""The stock socket.io-client 4.8 (node) against tests/apps/interop.py.

Each case runs ``node tests/js/interop.js <url> <scenario> <mode>``; the script prints one
JSON line and exits non-zero on failure.
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import time

import pytest

from .eio_testkit import APPS_DIR, JS_DIR, AppProcess, ensure_alive

NODE = shutil.which("node")
MODES = ["default", "websocket", "polling"]  # default = polling, then upgrade to WebSocket
SCENARIOS = ["events", "auth", "refused", "binary", "namespace", "unknown_namespace", "rooms", "drop", "kick"]

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (JS_DIR / "node_modules" / "socket.io-client").is_dir(),
        reason="socket.io-client is not installed (cd tests/js && npm ci)",
    ),
]


def check_result(scenario: str, mode: str, returncode: int | None, stdout: str, stderr: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith('{"ok"')]
    result = json.loads(lines[-1]) if lines else {"ok": False, "error": "no JSON result"}
    if returncode != 0 or not result.get("ok"):
        raise AssertionError(
            f"node {scenario} {mode} failed (exit {returncode}): {result.get('error')}\n"
            f"details: {result.get('details')}\nstdout: {stdout[-1000:]}\nstderr: {stderr[-2000:]}"
        )
    return result


def check_transport(result: dict, mode: str) -> None:
    """The transport in use at the end; in default mode the engine went through an 'upgrade' event."""
    details = result["details"]
    if "transport" in details:
        assert details["transport"] == ("polling" if mode == "polling" else "websocket"), result
        if mode == "default":
            assert details.get("upgraded") is True, result


def run_node(port: int, scenario: str, mode: str) -> dict:
    assert NODE is not None
    try:
        proc = subprocess.run(
            [NODE, "interop.js", f"http://127.0.0.1:{port}", scenario, mode],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"node {scenario} {mode} hung\nstdout: {exc.stdout!r}\nstderr: {exc.stderr!r}") from None
    return check_result(scenario, mode, proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_js_client(interop_app: AppProcess, scenario: str, mode: str) -> None:
    result = run_node(interop_app.port, scenario, mode)
    check_transport(result, mode)
    ensure_alive(interop_app)


@pytest.mark.parametrize("mode", MODES)
def test_js_client_reconnects_after_server_restart(mode: str) -> None:
    """The server goes away (SIGTERM, graceful shutdown) and comes back on the same port."""
    assert NODE is not None
    app = AppProcess(APPS_DIR / "interop.py").start()
    port = app.port
    node = subprocess.Popen(
        [NODE, "interop.js", f"http://127.0.0.1:{port}", "reconnect", mode],
        cwd=JS_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert node.stdout is not None
    restarted = None
    try:
        # wait for {"event":"ready"}
        deadline = time.monotonic() + 10
        line = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([node.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            line = node.stdout.readline()
            if not line or '"ready"' in line or line.startswith('{"ok"'):
                break
        assert '"ready"' in line, f"node did not get ready: {line!r}"
        app.close()  # SIGTERM: the server shuts down and closes every session
        restarted = AppProcess(APPS_DIR / "interop.py", port=port).start()
        try:
            out, err = node.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            node.kill()
            out, err = node.communicate()
        result = check_result("reconnect", mode, node.returncode, line + out, err)
        check_transport(result, mode)
        ensure_alive(restarted)
    finally:
        if node.poll() is None:
            node.kill()
            node.communicate()
        app.close()
        if restarted is not None:
            restarted.close()
