"""The `realcast` command line as a user meets it: exit codes and the exact lines it prints."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio

import realcast

from .harness import API_KEY_A, APP_A, SECRET_A
from .process import ROOT, ServerProcess, realcast_env, run_cli

ENV_APP = {"REALCAST_APP_ID": APP_A.app_id, "REALCAST_JWT_SECRET": SECRET_A, "REALCAST_API_KEY": API_KEY_A}


def one_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    """Exit status 2 and exactly one `realcast: error:` line (containing ``expected``), no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("realcast: error:")]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield listener.getsockname()[1]
    listener.close()


def test_version() -> None:
    result = run_cli("--version", env=realcast_env())
    assert result.returncode == 0
    assert result.stdout.strip() == f"realcast {realcast.__version__}"


def test_check_config_prints_settings_without_secrets(tmp_path: Path) -> None:
    env = realcast_env(**ENV_APP, REALCAST_DATABASE_URL="postgresql://rc:hunter2-secret@db.example/rc")
    result = run_cli("check-config", "--port", "9100", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    assert "port = 9100" in result.stdout.splitlines()
    assert f"data_dir = \"{tmp_path}\"" in result.stdout.splitlines()
    assert 'database_url = "postgresql://rc:***@db.example/rc"' in result.stdout.splitlines()
    assert f"app {APP_A.app_id}: jwt_algorithm = HS256" in result.stdout
    for secret in (SECRET_A, API_KEY_A, "hunter2-secret"):
        assert secret not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []  # checked, nothing created


def test_check_config_refuses_a_bad_configuration(tmp_path: Path) -> None:
    one_error(run_cli("check-config", env=realcast_env(**ENV_APP, REALCAST_PORT="70000")), "REALCAST_PORT must be in")


def test_check_config_in_dev_mode_says_what_serve_will_create(tmp_path: Path) -> None:
    result = run_cli("check-config", "--data-dir", str(tmp_path / "d"), env=realcast_env())
    assert result.returncode == 0, result.stderr
    assert f"dev app app_dev: will be created in {tmp_path / 'd' / 'dev-app.json'}" in result.stdout
    assert not (tmp_path / "d").exists()


def test_environment_variables_are_named_in_their_errors(tmp_path: Path) -> None:
    env = realcast_env(REALCAST_APP_ID="app_a", REALCAST_JWT_SECRET=SECRET_A)
    one_error(run_cli("serve", "--data-dir", str(tmp_path), env=env), "REALCAST_API_KEY is required")
    env = realcast_env(**{**ENV_APP, "REALCAST_API_KEY": "short"})
    one_error(run_cli("check-config", env=env), "REALCAST_API_KEY must be at least 16 characters")


def test_unknown_realcast_variables_are_warned_about(tmp_path: Path) -> None:
    result = run_cli("check-config", env=realcast_env(**ENV_APP, REALCAST_PROT="9000"))
    assert result.returncode == 0
    assert (
        "realcast: warning: unknown environment variable REALCAST_PROT is ignored; did you mean REALCAST_PORT?"
        in result.stderr.splitlines()
    )
    quiet = run_cli("check-config", env=realcast_env(**ENV_APP, REALCAST_HISTORY_SIZE="20"))
    assert "warning" not in quiet.stderr and "history_size = 20" in quiet.stdout.splitlines()


def test_every_flag_has_help() -> None:
    from realcast.__main__ import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.option_strings)
    token_help = run_cli("token", "--help", env=realcast_env()).stdout
    assert "repeat for several" in token_help and "repeatable" in token_help


# --- start-up failures: exit 2, one line -------------------------------------------------------


def test_port_in_use(tmp_path: Path, busy_port: int) -> None:
    result = run_cli("serve", "--port", str(busy_port), "--data-dir", str(tmp_path), env=realcast_env(**ENV_APP))
    one_error(result, f"cannot listen on 127.0.0.1:{busy_port}: the address is already in use")


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "state"
    a_file.write_text("not a directory")
    env = realcast_env(**ENV_APP)
    one_error(run_cli("serve", "--port", "0", "--data-dir", str(a_file), env=env), "is not a directory")
    one_error(run_cli("serve", "--port", "0", "--data-dir", str(a_file / "sub"), env=env), "Not a directory")


def test_read_only_data_dir(tmp_path: Path) -> None:
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    command = [sys.executable, "-m", "realcast", "serve", "--port", "0", "--data-dir", str(read_only)]
    if os.geteuid() == 0:
        # root writes through permission bits; drop that capability so the directory is read-only to it.
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "util-linux setpriv is needed to test this as root"
        drop = "-dac_override,-dac_read_search"
        command = [setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}", *command]
    result = subprocess.run(
        command, env=realcast_env(**ENV_APP), cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    one_error(result, f"data directory {read_only} is not writable")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("no-such-host.invalid", "host 'no-such-host.invalid' is not an address or known host name"),
        ("203.0.113.7", "cannot listen on 203.0.113.7:0: 203.0.113.7 is not an address of this machine"),
        ("", "host must be a host name or address"),
    ],
)
def test_bad_host(tmp_path: Path, host: str, expected: str) -> None:
    result = run_cli("serve", "--host", host, "--port", "0", "--data-dir", str(tmp_path), env=realcast_env(**ENV_APP))
    one_error(result, expected)


def test_unreachable_redis_and_database(tmp_path: Path) -> None:
    env = realcast_env(**ENV_APP)
    redis = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    result = run_cli("serve", "--port", "0", "--data-dir", str(tmp_path), "--redis-url", redis, env=env)
    one_error(result, "cannot reach Redis at redis_url")
    result = run_cli(
        "serve", "--port", "0", "--database-url", "postgresql://rc:pw@127.0.0.1:1/rc", "--data-dir", str(tmp_path),
        env=env,
    )
    one_error(result, "database_url: cannot open the moderation database")
    assert "pw@" not in result.stderr


# --- realcast token ----------------------------------------------------------------------------


def test_token_never_creates_the_dev_app(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    result = run_cli("token", "--data-dir", str(data_dir), "--app", "app_dev", "--user", "u", env=realcast_env())
    one_error(result, f"no dev app in {data_dir}: start the server once to create it")
    assert f"-m realcast serve --data-dir {data_dir}" in result.stderr
    assert not data_dir.exists()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--user", ""], "user id (sub) must be 1-128 characters"),
        (["--user", "u" * 129], "user id (sub) must be 1-128 characters"),
        (["--user", " alice"], "user id (sub) must be 1-128 characters"),
        (["--user", "alice", "--name", "n" * 65], "name must be 1-64 characters"),
        (["--user", "alice", "--name", ""], "name must be 1-64 characters"),
    ],
)
def test_token_refuses_claims_the_server_would_refuse(tmp_path: Path, flags: list[str], expected: str) -> None:
    result = run_cli("token", "--data-dir", str(tmp_path), "--app", APP_A.app_id, *flags, env=realcast_env(**ENV_APP))
    one_error(result, expected)
    assert result.stdout == ""


async def test_dev_hint_runs_as_printed(tmp_path: Path) -> None:
    data_dir = tmp_path / "dir with space"
    server = await asyncio.to_thread(ServerProcess, "--data-dir", str(data_dir), env=realcast_env())
    try:
        server.stderr.seek(0)  # the banner is written before the listening line
        err = server.stderr.read()
        hints = re.findall(r"^realcast:\s+(\S.* token --data-dir .*)$", err, re.MULTILINE)
        assert len(hints) == 1, err
        # Pasted into a shell, from another directory, it prints a token the server accepts.
        minted = await asyncio.to_thread(
            subprocess.run, ["bash", "-c", hints[0]], cwd=tmp_path, env=realcast_env(), capture_output=True,
            text=True, timeout=30, check=False,
        )
        assert minted.returncode == 0, minted.stderr
        client = socketio.AsyncClient(reconnection=False)
        got: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        client.on("authenticated", lambda data: got.set_result(data))
        await client.connect(
            server.url, auth={"token": minted.stdout.strip(), "app_id": "app_dev"}, transports=["websocket"]
        )
        try:
            assert await asyncio.wait_for(got, 5) == {"user_id": "alice", "username": "Alice", "app_id": "app_dev"}
        finally:
            await client.disconnect()
    finally:
        status, _ = await asyncio.to_thread(server.stop)
    assert status == 0


@pytest.mark.parametrize("damage", ["random", "truncated", "scrambled"])
def test_a_damaged_database_is_refused_and_kept(tmp_path: Path, damage: str) -> None:
    # A real database first (one clean start and stop), then damaged; it must never be replaced.
    env = realcast_env(**ENV_APP)
    server = ServerProcess("--data-dir", str(tmp_path), env=env)
    status, err = server.stop()
    assert status == 0, err
    db = tmp_path / "realcast.sqlite3"
    good = db.read_bytes()
    if damage == "random":
        damaged = bytes(range(256)) * 32
    elif damage == "truncated":
        damaged = good[: len(good) // 2 + 100]
    else:  # the header kept, every page after it reversed
        damaged = good[:100] + good[100:][::-1]
    db.write_bytes(damaged)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"realcast.sqlite3{suffix}").unlink(missing_ok=True)
    result = run_cli("serve", "--port", "0", "--data-dir", str(tmp_path), env=env)
    one_error(result, f"data directory {tmp_path}")
    assert db.read_bytes() == damaged


@pytest.mark.parametrize("mode", [0o444, 0o000], ids=["read-only", "no-access"])
def test_a_database_this_user_cannot_write_is_refused(tmp_path: Path, mode: int) -> None:
    env = realcast_env(**ENV_APP)
    server = ServerProcess("--data-dir", str(tmp_path), env=env)
    status, err = server.stop()
    assert status == 0, err
    db = tmp_path / "realcast.sqlite3"
    db.chmod(mode)
    command = [sys.executable, "-m", "realcast", "serve", "--port", "0", "--data-dir", str(tmp_path)]
    if os.geteuid() == 0:  # root reads and writes through permission bits: drop that capability
        drop = "-dac_override,-dac_read_search"
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "util-linux setpriv is needed to test this as root"
        command = [setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}", *command]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    one_error(result, f"cannot open the moderation database {db}")
    assert "never replaces it" in result.stderr


def test_http_deadlines_are_configurable(tmp_path: Path) -> None:
    env = realcast_env(**ENV_APP, REALCAST_HEADER_TIMEOUT="0.5")
    server = ServerProcess("--data-dir", str(tmp_path), env=env)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
            slow.sendall(b"GET /healthz HTT")  # and nothing more
            started = time.monotonic()
            answer = slow.recv(4096)
            while chunk := slow.recv(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408")
            assert 0.4 < time.monotonic() - started < 3.0
    finally:
        assert server.stop()[0] == 0


def test_buffer_limits_are_checked(tmp_path: Path) -> None:
    env = realcast_env(**ENV_APP, REALCAST_MAX_BUFFERED_BYTES="100")
    one_error(run_cli("serve", "--port", "0", "--data-dir", str(tmp_path), env=env), "REALCAST_MAX_BUFFERED_BYTES")
