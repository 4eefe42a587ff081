"""Wire-level test kit for the engineio_min integration tests.

Everything here talks to a real server over 127.0.0.1:

* ``AppProcess``: runs a test app (``tests/apps/*.py --port 0``) as a subprocess and
  parses the port from its ``listening on 127.0.0.1:PORT`` line.
* ``HttpConn`` / ``http_request``: a deliberately small HTTP/1.1 client over asyncio
  streams, so tests can send malformed requests, hold a long-poll open or abort it.
* ``Polling``: an Engine.IO long-polling session driven by hand.
* ``EioWs``: an Engine.IO WebSocket (``websockets`` asyncio client) with helpers that
  answer heartbeats and wait for the server to close.
* ``RawWs``: a hand-rolled RFC 6455 client for sending broken frames.

Every network wait has a timeout; nothing here waits forever.

The module name is deliberately unusual: test folders without ``__init__.py`` share
``sys.modules``, so a generic name such as ``helpers`` could clash with another folder's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

REPO_ROOT = Path(__file__).resolve().parents[3]
# REALCAST_TEST_APPS_DIR points the suite at other apps (e.g. a reference server) for comparison.
APPS_DIR = Path(os.environ.get("REALCAST_TEST_APPS_DIR") or REPO_ROOT / "tests" / "apps")
JS_DIR = REPO_ROOT / "tests" / "js"

RS = "\x1e"  # Engine.IO polling record separator
EIO_PATH = "/engine.io/"
SIO_PATH = "/socket.io/"

# Timeouts (seconds). The conformance app pings every 300 ms and gives up 200 ms later,
# so anything that should happen "at once" gets about a second.
T_SHORT = 1.0
T_DEFAULT = 3.0

_LISTEN_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


# --------------------------------------------------------------------------- process


class AppProcess:
    """A test app run as ``python <script> --port 0``; ``port`` is parsed from its stdout.

    ``port`` asks for a given port instead (to restart an app where its clients expect it).
    """

    def __init__(self, script: Path, *args: str, port: int = 0, ready_timeout: float = 15.0) -> None:
        self.script = script
        self.args = args
        self.ready_timeout = ready_timeout
        self.requested_port = port  # 0: the app picks a free port
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self._stdout_lines: list[str] = []
        # lives as long as this object (the app's whole run); closed in close()
        self._stderr_file = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._ready = threading.Event()

    def start(self) -> AppProcess:
        if not self.script.exists():
            raise RuntimeError(f"test app {self.script} does not exist (not written yet?)")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, str(self.script), "--port", str(self.requested_port), *self.args],
            cwd=str(REPO_ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        if not self._ready.wait(self.ready_timeout) or not self.port:
            self.stop()
            code = self.proc.poll() if self.proc else None
            why = f"exited with code {code}" if code is not None else f"not ready in {self.ready_timeout}s"
            raise RuntimeError(
                f"{self.script.name} did not print 'listening on 127.0.0.1:PORT' ({why})\n"
                f"--- stdout\n{''.join(self._stdout_lines)}\n--- stderr\n{self.log()}"
            )
        return self

    def _pump_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:  # keeps draining so the pipe never fills up
            self._stdout_lines.append(line)
            if not self.port:
                m = _LISTEN_RE.search(line)
                if m:
                    self.port = int(m.group(1))
                    self._ready.set()
        self._ready.set()  # EOF: the process died (start() reports it)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """Everything the app wrote to stderr so far."""
        self._stderr_file.flush()
        self._stderr_file.seek(0)
        text = self._stderr_file.read()
        self._stderr_file.seek(0, os.SEEK_END)
        return text

    def kill(self) -> None:
        """SIGKILL: the process dies without closing anything (its sockets are reset by the OS)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def close(self) -> None:
        self.stop()
        self._stderr_file.close()


def ensure_alive(app: AppProcess) -> None:
    """Fail with the app's stderr if the server process has exited."""
    if not app.alive():
        code = app.proc.returncode if app.proc else None
        raise AssertionError(f"server process exited (code {code})\n--- stderr\n{app.log()[-5000:]}")


# --------------------------------------------------------------------------- HTTP


@dataclass
class HttpResp:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    raw_head: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:  # shows up in assertion messages
        return f"HttpResp({self.status} {self.reason!r}, headers={self.headers!r}, body={self.body[:300]!r})"


class HttpClosed(Exception):
    """The server closed (or reset) the connection before a full response arrived."""


class HttpConn:
    """One TCP connection to the server, speaking HTTP/1.1 by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        self.reader = reader
        self.writer = writer
        self.port = port

    @classmethod
    async def open(cls, port: int, timeout: float = T_DEFAULT) -> HttpConn:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, limit=1 << 20), timeout)
        return cls(reader, writer, port)

    def build_request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        keep_alive: bool = True,
        content_length: int | None = None,
    ) -> bytes:
        """Request bytes; ``content_length`` announces a body that the caller sends later."""
        hdrs = {"Host": f"127.0.0.1:{self.port}"}
        if content_length is not None:
            hdrs["Content-Length"] = str(content_length)
        elif body or method in ("POST", "PUT"):
            hdrs["Content-Length"] = str(len(body))
        if not keep_alive:
            hdrs["Connection"] = "close"
        hdrs.update(headers or {})
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items() if v is not None)
        return head.encode("latin-1") + b"\r\n" + body

    async def send_raw(self, data: bytes, timeout: float = T_DEFAULT) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), timeout)

    async def send_request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        keep_alive: bool = True,
        timeout: float = T_DEFAULT,
    ) -> None:
        await self.send_raw(self.build_request(method, target, body, headers, keep_alive=keep_alive), timeout)

    async def read_response(self, timeout: float = T_DEFAULT, *, method: str = "GET") -> HttpResp:
        return await asyncio.wait_for(self._read_response(method), timeout)

    async def _read_response(self, method: str) -> HttpResp:
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise HttpClosed(f"connection closed before a response head; got {exc.partial[:300]!r}") from exc
        except (ConnectionError, OSError) as exc:
            raise HttpClosed(f"connection error before a response head: {exc!r}") from exc
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise AssertionError(f"malformed status line: {lines[0]!r}")
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        try:
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                body = b""
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                body = await self._read_chunked()
            elif "content-length" in headers:
                body = await self.reader.readexactly(int(headers["content-length"]))
            else:
                body = await self.reader.read()
        except asyncio.IncompleteReadError as exc:
            raise HttpClosed(f"connection closed mid-body after {lines[0]!r}") from exc
        except (ConnectionError, OSError) as exc:
            raise HttpClosed(f"connection error mid-body after {lines[0]!r}: {exc!r}") from exc
        return HttpResp(status, reason, headers, body, head)

    async def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return bytes(out)
            out += await self.reader.readexactly(size)
            await self.reader.readexactly(2)

    async def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        keep_alive: bool = True,
        timeout: float = T_DEFAULT,
    ) -> HttpResp:
        await self.send_request(method, target, body, headers, keep_alive=keep_alive, timeout=timeout)
        return await self.read_response(timeout, method=method)

    async def closed_by_peer(self, timeout: float = T_DEFAULT) -> bool:
        """True if the server closes the connection within ``timeout`` (data before EOF is read and dropped)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    chunk = await self.reader.read(65536)
                    if not chunk:
                        return True
        except TimeoutError:
            return False
        except (ConnectionError, OSError):
            return True

    def abort(self) -> None:
        """Drop the TCP connection at once (RST where possible)."""
        transport = self.writer.transport
        with contextlib.suppress(Exception):
            transport.abort()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


async def http_request(
    port: int,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float = T_DEFAULT,
) -> HttpResp:
    """One request on a fresh connection (closed afterwards)."""
    conn = await HttpConn.open(port, timeout)
    try:
        return await conn.request(method, target, body, headers, timeout=timeout)
    finally:
        await conn.close()


class IdleHandler:
    """A bare Engine.IO session handler that does nothing: tests that only look at the sessions
    (through the endpoint) mount it with ``server.mount_engine(path, IdleHandler)``."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def on_message(self, data: str | bytes) -> None:
        pass

    def on_close(self, reason: str) -> None:
        pass


def eio_url(path: str = EIO_PATH, **query: str) -> str:
    """``/engine.io/?EIO=4&transport=polling&...``; pass ``EIO=None`` to leave a key out."""
    q = {"EIO": "4", "transport": "polling"}
    q.update(query)
    return f"{path}?{urlencode({k: v for k, v in q.items() if v is not None})}"


def parse_open_packet(text: str) -> dict[str, Any]:
    """Parse ``0{...}`` keeping key order; asserts the packet type."""
    assert text.startswith("0"), f"expected an open packet, got {text[:200]!r}"
    return json.loads(text[1:], object_pairs_hook=dict)


def b64(data: bytes) -> str:
    return "b" + base64.b64encode(data).decode("ascii")


def split_payload(body: bytes | str) -> list[str]:
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return text.split(RS)


# --------------------------------------------------------------------------- polling


@dataclass
class Polling:
    """An Engine.IO long-polling session, one fresh TCP connection per request."""

    port: int
    path: str = EIO_PATH
    sid: str = ""
    open_packet: dict[str, Any] = field(default_factory=dict)
    handshake_at: float = 0.0

    @classmethod
    async def start(cls, port: int, path: str = EIO_PATH) -> Polling:
        p = cls(port, path)
        resp = await http_request(port, "GET", eio_url(path))
        p.handshake_at = time.monotonic()
        assert resp.status == 200, resp
        p.open_packet = parse_open_packet(resp.text)
        p.sid = p.open_packet["sid"]
        return p

    @property
    def url(self) -> str:
        return eio_url(self.path, sid=self.sid)

    async def get(self, timeout: float = T_DEFAULT) -> HttpResp:
        return await http_request(self.port, "GET", self.url, timeout=timeout)

    async def post(
        self,
        body: bytes | str,
        timeout: float = T_DEFAULT,
        content_type: str | None = "text/plain;charset=UTF-8",
    ) -> HttpResp:
        data = body.encode("utf-8") if isinstance(body, str) else body
        headers = {"Content-Type": content_type} if content_type else {}
        return await http_request(self.port, "POST", self.url, data, headers, timeout=timeout)

    async def post_ok(self, body: bytes | str) -> None:
        resp = await self.post(body)
        assert resp.status == 200 and resp.body == b"ok", resp

    async def start_get(self) -> HttpConn:
        """Send a GET and return the connection without reading the answer (a held long-poll)."""
        conn = await HttpConn.open(self.port)
        await conn.send_request("GET", self.url)
        return conn

    async def read_records(self, count: int, timeout: float = T_DEFAULT) -> list[str]:
        """GET until ``count`` non-ping records arrived, ponging every ping on the way."""
        out: list[str] = []
        async with asyncio.timeout(timeout):
            while len(out) < count:
                resp = await self.get(timeout)
                assert resp.status == 200, (resp, out)
                for rec in split_payload(resp.body):
                    if rec == "2":
                        await self.post_ok("3")
                    else:
                        out.append(rec)
        return out


# --------------------------------------------------------------------------- WebSocket


def ws_url(port: int, path: str = EIO_PATH, **query: str) -> str:
    return f"ws://127.0.0.1:{port}" + eio_url(path, **{"transport": "websocket", **query})


class EioWs:
    """An Engine.IO WebSocket connection (one packet per frame)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[str | bytes] = []  # every frame received, for diagnostics

    @classmethod
    async def connect(cls, port: int, path: str = EIO_PATH, timeout: float = T_DEFAULT, **query: str) -> EioWs:
        ws = await ws_connect(
            ws_url(port, path, **query),
            open_timeout=timeout,
            close_timeout=1,
            ping_interval=None,  # Engine.IO heartbeats only; no WebSocket-level pings of our own
            max_size=None,
            compression=None,
        )
        return cls(ws)

    @classmethod
    async def open_session(cls, port: int, path: str = EIO_PATH) -> tuple[EioWs, dict[str, Any]]:
        """A WebSocket-only session: connect and read the open packet (first frame)."""
        c = await cls.connect(port, path)
        first = await c.recv()
        assert isinstance(first, str), f"first frame must be text, got {first!r}"
        return c, parse_open_packet(first)

    async def send(self, data: str | bytes) -> None:
        await asyncio.wait_for(self.ws.send(data), T_DEFAULT)

    async def recv(self, timeout: float = T_DEFAULT) -> str | bytes:
        msg = await asyncio.wait_for(self.ws.recv(), timeout)
        self.seen.append(msg)
        return msg

    async def recv_msg(self, timeout: float = T_DEFAULT) -> str | bytes:
        """Next frame that is not a ping; pings are answered with ``3`` on the way."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv(timeout)
                if msg == "2":
                    await self.send("3")
                    continue
                return msg

    async def expect_no_msg(self, duration: float) -> None:
        """Nothing but pings (answered) for ``duration`` seconds, and the socket stays open."""
        try:
            msg = await self.recv_msg(duration)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {msg!r}")

    async def wait_closed(self, timeout: float = T_SHORT, *, pong: bool = True) -> list[str | bytes]:
        """Assert that the server closes the socket within ``timeout``.

        Frames that arrive first are collected and returned. Pings are answered when
        ``pong`` is set, so that a heartbeat timeout cannot be what closes the socket.
        """
        got: list[str | bytes] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    msg = await self.ws.recv()
                    self.seen.append(msg)
                    if msg == "2" and pong:
                        with contextlib.suppress(ConnectionClosed):
                            await self.ws.send("3")
                    got.append(msg)
        except ConnectionClosed:
            return got
        except TimeoutError:
            raise AssertionError(
                f"server did not close the WebSocket within {timeout}s; frames meanwhile: {got!r}"
            ) from None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2)


def assert_only_heartbeats(frames: Sequence[str | bytes]) -> None:
    """Before a server-side close only pings may arrive (and, tolerated, an Engine.IO ``1``)."""
    assert all(f in ("2", "1") for f in frames), f"unexpected frames before the close: {frames!r}"


async def ws_refused(port: int, path: str = EIO_PATH, timeout: float = T_SHORT, **query: str) -> str:
    """Open a WebSocket that the server must refuse; return how it was refused.

    Accepted outcomes: no ``101`` (the status must then be 400), or a ``101`` followed by
    the server closing the socket within ``timeout`` without sending an open packet.
    """
    try:
        c = await EioWs.connect(port, path, timeout=timeout, **query)
    except InvalidStatus as exc:
        status = exc.response.status_code
        assert status == 400, f"expected HTTP 400 for a refused WebSocket, got {status}"
        return f"http {status}"
    except (InvalidHandshake, ConnectionError, OSError, EOFError) as exc:
        return f"closed during handshake ({type(exc).__name__})"
    frames = await c.wait_closed(timeout, pong=False)
    assert not any(isinstance(f, str) and f.startswith("0") for f in frames), (
        f"a refused WebSocket must not get an open packet: {frames!r}"
    )
    return "closed after 101"


# --------------------------------------------------------------------------- raw WebSocket


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    """Encode one client frame (always masked, as RFC 6455 requires of clients)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 1 << 16 else _mask_big(payload, mask)
    return head + mask + masked


def _mask_big(payload: bytes, mask: bytes) -> bytes:
    m = int.from_bytes((mask * (len(payload) // 4 + 1))[: len(payload)], "big")
    return (int.from_bytes(payload, "big") ^ m).to_bytes(len(payload), "big")


class RawWs:
    """A WebSocket done by hand over asyncio streams, to send frames no library would."""

    def __init__(self, conn: HttpConn) -> None:
        self.conn = conn
        self._buf = b""

    @classmethod
    async def connect(cls, port: int, path: str = EIO_PATH, **query: str) -> RawWs:
        conn = await HttpConn.open(port)
        key = base64.b64encode(os.urandom(16)).decode()
        target = eio_url(path, **{"transport": "websocket", **query})
        await conn.send_request(
            "GET",
            target,
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": key,
                "Sec-WebSocket-Version": "13",
            },
        )
        head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), T_DEFAULT)
        assert head.startswith(b"HTTP/1.1 101"), head
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        assert accept in head, head
        return cls(conn)

    async def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        await self.conn.send_raw(ws_frame(opcode, payload, fin=fin))

    async def recv_frame(self, timeout: float = T_DEFAULT) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame (servers never mask)."""

        async def read() -> tuple[int, bytes]:
            b0, b1 = await self.conn.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await self.conn.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.conn.reader.readexactly(8), "big")
            if b1 & 0x80:
                await self.conn.reader.readexactly(4)
            return b0 & 0x0F, await self.conn.reader.readexactly(n)

        return await asyncio.wait_for(read(), timeout)

    async def expect_closed(self, timeout: float = T_SHORT) -> list[tuple[int, bytes]]:
        """Frames until the server sends a close frame or drops TCP; pings (``2``) are answered."""
        got: list[tuple[int, bytes]] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    op, data = await self.recv_frame(timeout)
                    got.append((op, data))
                    if op == 0x8:
                        return got
                    if op == 0x1 and data == b"2":
                        with contextlib.suppress(Exception):
                            await self.send_frame(0x1, b"3")
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return got
        except TimeoutError:
            raise AssertionError(f"server did not close within {timeout}s; frames: {got!r}") from None

    async def close(self) -> None:
        await self.conn.close()


# --------------------------------------------------------------------------- Socket.IO over a raw WebSocket


SID_RE = re.compile(r'^40(/[^,]*,)?\{"sid":"([^"]+)"\}$')


async def sio_ws(port: int) -> tuple[EioWs, dict[str, Any]]:
    """A WebSocket-only Engine.IO session on the Socket.IO path."""
    return await EioWs.open_session(port, SIO_PATH)


async def sio_join(c: EioWs, nsp: str = "/", auth: Any = None, *, raw: str | None = None) -> tuple[str, str]:
    """Send CONNECT; return (socket sid, the auth event frame that must follow it)."""
    prefix = "" if nsp == "/" else f"{nsp},"
    pkt = raw if raw is not None else "40" + prefix + ("" if auth is None else json.dumps(auth, separators=(",", ":")))
    await c.send(pkt)
    reply = await c.recv_msg()
    assert isinstance(reply, str), reply
    m = SID_RE.match(reply)
    assert m, f'CONNECT reply must be exactly 40{prefix}{{"sid":...}}, got {reply!r}'
    assert (m.group(1) or "") == prefix, f"CONNECT reply for the wrong namespace: {reply!r}"
    auth_evt = await c.recv_msg()
    assert isinstance(auth_evt, str), auth_evt
    return m.group(2), auth_evt


def dumps(obj: Any) -> str:
    """Compact JSON as Socket.IO writes it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def placeholders(n: int) -> list[dict[str, Any]]:
    return [{"_placeholder": True, "num": i} for i in range(n)]


# --------------------------------------------------------------------------- health check


async def assert_healthy(app: AppProcess) -> None:
    """A fresh, well-behaved client still gets served: polling, WebSocket and Socket.IO."""
    ensure_alive(app)
    async with asyncio.timeout(2 * T_DEFAULT):
        p = await Polling.start(app.port)
        await p.post_ok("4healthy\x1ebAQID")
        assert await p.read_records(2) == ["4healthy", "bAQID"]

        c, _ = await EioWs.open_session(app.port)
        try:
            await c.send("4ws-healthy")
            assert await c.recv_msg() == "4ws-healthy"
            await c.send(b"\x00\xff")
            assert await c.recv_msg() == b"\x00\xff"
        finally:
            await c.close()

        c, _ = await sio_ws(app.port)
        try:
            await sio_join(c)
            await c.send('42["message","still here"]')
            assert await c.recv_msg() == '42["message-back","still here"]'
        finally:
            await c.close()
    ensure_alive(app)


class Bystander:
    """A healthy Socket.IO client that stays connected while a test attacks the server.

    A background task answers pings, so the session survives attacks that last longer
    than the heartbeat; ``check()`` proves it is still served.
    """

    def __init__(self, ws: EioWs) -> None:
        self.ws = ws
        self.inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._pump())

    @classmethod
    async def join(cls, port: int) -> Bystander:
        c, _ = await sio_ws(port)
        await sio_join(c)
        return cls(c)

    async def _pump(self) -> None:
        try:
            while True:
                msg = await self.ws.ws.recv()
                if msg == "2":
                    await self.ws.ws.send("3")
                else:
                    self.inbox.put_nowait(msg)
        except ConnectionClosed:
            self.inbox.put_nowait(None)

    async def check(self) -> None:
        try:
            await self.ws.send('42["message","bystander"]')
        except ConnectionClosed:
            raise AssertionError("the bystander's connection was closed by the attack") from None
        got = await asyncio.wait_for(self.inbox.get(), T_DEFAULT)
        assert got == '42["message-back","bystander"]', f"bystander got {got!r}"

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.ws.close()
