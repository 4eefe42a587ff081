"""Run ``python -m realcast serve`` as a subprocess (for restart and CLI tests)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[3]
LISTENING = re.compile(r"realcast listening on (https?)://[^:]+:(\d+)")


def realcast_env(**extra: str) -> dict[str, str]:
    """The environment for a realcast subprocess: the checkout importable, no stray REALCAST_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALCAST_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``python -m realcast ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "realcast", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ServerProcess:
    """``realcast serve --port 0`` in a child process."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        # stderr goes to a file: a pipe nobody reads could fill up and block the server.
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "realcast", "serve", "--host", "127.0.0.1", "--port", "0", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.scheme = "http"
        self.port = self._wait_for_port(self.proc.stdout, timeout=20)
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"

    def _wait_for_port(self, stream: IO[str] | None, timeout: float) -> int:
        assert stream is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = stream.readline()
            if not line:
                break
            match = LISTENING.search(line)
            if match:
                self.scheme = match.group(1)
                return int(match.group(2))
        self.proc.kill()
        self.proc.wait(timeout=5)
        raise RuntimeError(f"realcast did not start: {self._stderr()}")

    def _stderr(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self, timeout: float = 10) -> tuple[int, str]:
        """SIGTERM, wait; returns (exit status, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        err = self._stderr()
        self.stderr.close()
        return self.proc.returncode, err
