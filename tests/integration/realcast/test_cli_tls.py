"""`realcast serve --ssl-certfile/--ssl-keyfile`: the stock Python and JS clients over https and wss.

The certificate is self-signed, made here with ``cryptography``; each client trusts exactly it
(verification stays on: a client that skipped it would prove nothing about the certificate).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import socketio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .harness import API_KEY_A, APP_A, SECRET_A, STREAM, token
from .process import ROOT, ServerProcess, realcast_env, run_cli

ENV_APP = {"REALCAST_APP_ID": APP_A.app_id, "REALCAST_JWT_SECRET": SECRET_A, "REALCAST_API_KEY": API_KEY_A}
JS_DIR = ROOT / "tests" / "js"


def write_self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "realcast test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tls_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cert, key = tls_files
    env = realcast_env(**ENV_APP, REALCAST_DATA_DIR=str(tmp_path_factory.mktemp("data")))
    server = ServerProcess("--ssl-certfile", str(cert), "--ssl-keyfile", str(key), env=env)
    yield server
    status, err = server.stop()
    assert status == 0, err


@pytest.fixture
async def trusting_session(tls_files: tuple[Path, Path]) -> AsyncIterator[aiohttp.ClientSession]:
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield session


def test_serve_announces_https(tls_server: ServerProcess) -> None:
    assert tls_server.scheme == "https"


@pytest.mark.parametrize("transports", [["polling", "websocket"], ["websocket"], ["polling"]])
async def test_python_client_over_https_and_wss(
    tls_server: ServerProcess, trusting_session: aiohttp.ClientSession, transports: list[str]
) -> None:
    client = socketio.AsyncClient(http_session=trusting_session, reconnection=False)
    authenticated: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    client.on("authenticated", lambda data: authenticated.set_result(data))
    auth = {"token": token(APP_A, "tls_user", "Tls"), "app_id": APP_A.app_id}
    await client.connect(tls_server.url, auth=auth, transports=transports, wait_timeout=5)
    try:
        assert await asyncio.wait_for(authenticated, 5) == {
            "user_id": "tls_user", "username": "Tls", "app_id": APP_A.app_id
        }
        ack = await client.call("chat:join", {"stream_id": STREAM}, timeout=5)
        assert ack["ok"] is True
        if transports[0] == "polling" and "websocket" in transports:
            for _ in range(50):  # the upgrade to wss:// completes shortly after the connect
                if client.transport() == "websocket":
                    break
                await asyncio.sleep(0.05)
        assert client.transport() == transports[-1]
    finally:
        await client.disconnect()


def test_plain_http_client_is_not_served_on_the_tls_port(tls_server: ServerProcess) -> None:
    import urllib.request

    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{tls_server.port}/healthz", timeout=5)


NODE_CLIENT = """
const fs = require('fs');
const { io } = require('socket.io-client');
const [url, ca, tokenValue, appId] = process.argv.slice(1);
const socket = io(url, { ca: fs.readFileSync(ca), auth: { token: tokenValue, app_id: appId }, reconnection: false });
const fail = (e) => { console.log(JSON.stringify({ ok: false, error: String(e) })); process.exit(1); };
setTimeout(() => fail('timeout'), 10000);
socket.on('connect_error', fail);
socket.on('authenticated', (identity) => {
  socket.emit('chat:join', { stream_id: 'tls_stream' }, (ack) => {
    const report = () => {
      console.log(JSON.stringify({ ok: true, identity, ack, transport: socket.io.engine.transport.name }));
      socket.disconnect();
      process.exit(0);
    };
    if (socket.io.engine.transport.name === 'websocket') report();
    else socket.io.engine.once('upgrade', report);
  });
});
"""


async def test_node_client_over_https_then_wss(tls_server: ServerProcess, tls_files: tuple[Path, Path]) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        ["node", "-e", NODE_CLIENT, tls_server.url, str(tls_files[0]), token(APP_A, "js_user", "Js"), APP_A.app_id],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["identity"] == {"user_id": "js_user", "username": "Js", "app_id": APP_A.app_id}
    assert report["ack"]["ok"] is True
    assert report["transport"] == "websocket"  # upgraded from https polling to wss


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (lambda cert, key, tmp: ["--ssl-certfile", str(tmp / "absent.pem")], "no such file"),
        (lambda cert, key, tmp: ["--ssl-certfile", str(key), "--ssl-keyfile", str(cert)], "not a PEM certificate"),
        (lambda cert, key, tmp: ["--ssl-keyfile", str(key)], "--ssl-keyfile needs ssl_certfile"),
    ],
)
def test_bad_tls_files_exit_2_with_one_line(
    tls_files: tuple[Path, Path], tmp_path: Path, files: object, message: str
) -> None:
    cert, key = tls_files
    assert callable(files)
    result = run_cli("serve", "--port", "0", "--data-dir", str(tmp_path), *files(cert, key, tmp_path),
                     env=realcast_env(**ENV_APP))
    assert result.returncode == 2
    assert result.stderr.count("realcast: error:") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
