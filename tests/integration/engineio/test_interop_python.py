"""python-socketio's ``AsyncClient`` (5.x) against tests/apps/interop.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import socketio

from .eio_testkit import APPS_DIR, AppProcess, ensure_alive

T = 5.0  # per step
MODES = {"default": None, "websocket": ["websocket"], "polling": ["polling"]}


def expected_transport(mode: str) -> str:
    return "polling" if mode == "polling" else "websocket"


class Recorder:
    """Collects events a client receives, by name."""

    def __init__(self, client: socketio.AsyncClient, namespace: str = "/") -> None:
        self.queues: dict[str, asyncio.Queue[tuple[Any, ...]]] = {}
        self.client = client
        self.namespace = namespace

    def watch(self, event: str) -> None:
        queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.queues[event] = queue

        async def handler(*args: Any) -> None:
            queue.put_nowait(args)

        self.client.on(event, handler, namespace=self.namespace)

    async def next(self, event: str, timeout: float = T) -> tuple[Any, ...]:
        return await asyncio.wait_for(self.queues[event].get(), timeout)


@contextlib.asynccontextmanager
async def client_for(port: int, mode: str, **options: Any) -> AsyncIterator[socketio.AsyncClient]:
    """An AsyncClient (no reconnection unless asked) that is shut down afterwards."""
    client = socketio.AsyncClient(**{"reconnection": False, **options})
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown(), T)


async def connect(
    client: socketio.AsyncClient, port: int, mode: str, *, namespaces: list[str] | None = None, auth: Any = None
) -> None:
    await asyncio.wait_for(
        client.connect(
            f"http://127.0.0.1:{port}",
            transports=MODES[mode],
            namespaces=namespaces or ["/"],
            auth=auth,
            wait_timeout=T,
        ),
        2 * T,
    )
    assert client.transport() == expected_transport(mode), client.transport()


async def emit(client: socketio.AsyncClient, event: str, *args: Any, **kwargs: Any) -> None:
    await asyncio.wait_for(client.emit(event, *args, **kwargs), T)


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def port(interop_app: AppProcess) -> Iterator[int]:
    yield interop_app.port
    ensure_alive(interop_app)


async def test_connect_transport(port: int, mode: str) -> None:
    async with client_for(port, mode) as client:
        await connect(client, port, mode)
        assert client.connected
        assert client.get_sid("/")
        # heartbeats keep the session up past pingInterval + pingTimeout (0.5 s + 1 s)
        await asyncio.sleep(1.8)
        assert client.connected
        assert await client.call("echo", "still here", timeout=T) == "still here"
        assert client.transport() == expected_transport(mode)


async def test_auth_payload_reaches_server(port: int, mode: str) -> None:
    auth = {"token": "good", "user": "carol", "n": [1, 2.5, None], "nested": {"ok": True}}
    async with client_for(port, mode) as client:
        await connect(client, port, mode, auth=auth)
        assert await client.call("whoami", timeout=T) == auth


async def test_refused_with_message_and_data(port: int, mode: str) -> None:
    async with client_for(port, mode) as client:
        errors: list[Any] = []
        client.on("connect_error", lambda *data: errors.append(data))
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect(client, port, mode, auth={"token": "bad"})
        assert errors == [({"message": "not authorized", "data": {"reason": "bad token"}},)], errors
        assert not client.connected


async def test_events_and_acks_both_ways(port: int, mode: str) -> None:
    async with client_for(port, mode) as client:
        rec = Recorder(client)
        rec.watch("echo")
        rec.watch("answer")
        client.on("question", lambda n: (n + 1, "from-python"))
        await connect(client, port, mode)
        # client -> server with an ack (several arguments)
        ack = await client.call("echo", ("a", 1, {"b": [True, None]}, "ü✓"), timeout=T)
        assert ack == ("a", 1, {"b": [True, None]}, "ü✓")
        assert await rec.next("echo") == ("a", 1, {"b": [True, None]}, "ü✓")
        # callback form
        got: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        await emit(client, "echo", "cb", callback=lambda *a: got.set_result(a))
        assert await asyncio.wait_for(got, T) == ("cb",)
        assert await rec.next("echo") == ("cb",)
        # server -> client call with an ack
        await emit(client, "ask")
        assert await rec.next("answer") == (43, "from-python")


async def test_binary_both_ways(port: int, mode: str) -> None:
    async with client_for(port, mode) as client:
        rec = Recorder(client)
        rec.watch("echo")
        rec.watch("answer")
        client.on("question", lambda n: bytes([n, 0, 255]))
        await connect(client, port, mode)
        payload = (b"\x00\x01\xfe\xff", {"nested": {"data": "héllo".encode()}, "list": ["t", b""]})
        ack = await client.call("echo", payload, timeout=T)
        assert ack == payload
        assert await rec.next("echo") == payload
        await emit(client, "ask")
        assert await rec.next("answer") == (b"\x2a\x00\xff",)


async def test_second_namespace(port: int, mode: str) -> None:
    async with client_for(port, mode) as client:
        rec = Recorder(client, "/second")
        rec.watch("echo")
        main_echoes: list[Any] = []
        client.on("echo", lambda *a: main_echoes.append(a), namespace="/")
        await connect(client, port, mode, namespaces=["/", "/second"], auth={"who": "both"})
        assert await client.call("whoami", namespace="/second", timeout=T) == {"who": "both"}
        assert await client.call("echo", "in-second", namespace="/second", timeout=T) == "in-second"
        assert await rec.next("echo") == ("in-second",)
        assert main_echoes == []
        assert await client.call("echo", "in-main", timeout=T) == "in-main"
        assert client.get_sid("/") != client.get_sid("/second")


async def test_rooms(port: int, mode: str) -> None:
    async with (
        client_for(port, mode) as a,
        client_for(port, mode) as b,
        client_for(port, mode) as c,
    ):
        recs = []
        for cl in (a, b, c):
            r = Recorder(cl)
            r.watch("room_msg")
            recs.append(r)
            await connect(cl, port, mode)
        assert await a.call("join", {"room": "py-room"}, timeout=T) is True
        assert await b.call("join", {"room": "py-room"}, timeout=T) is True
        assert await a.call("to_room", {"room": "py-room", "msg": "hi room"}, timeout=T) == 2
        assert await recs[0].next("room_msg") == ("hi room",)
        assert await recs[1].next("room_msg") == ("hi room",)
        with pytest.raises(TimeoutError):
            await recs[2].next("room_msg", timeout=0.2)


async def test_server_disconnect_is_final(port: int, mode: str) -> None:
    # drop_me: the server disconnects the socket and closes the engine connection ("41" first),
    # which a client must take as final: no automatic reconnection.
    async with client_for(port, mode, reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.2) as client:
        reasons: list[Any] = []
        client.on("disconnect", lambda *r: reasons.append(r))
        await connect(client, port, mode)
        await emit(client, "drop_me")
        async with asyncio.timeout(T):
            while not reasons:
                await asyncio.sleep(0.02)
        assert reasons == [(client.reason.SERVER_DISCONNECT,)], reasons
        await asyncio.sleep(0.5)
        assert not client.connected


async def test_kick_keeps_other_namespace(port: int, mode: str) -> None:
    async with client_for(port, mode) as client:
        reasons: list[Any] = []
        client.on("disconnect", lambda *r: reasons.append(r), namespace="/")
        await connect(client, port, mode, namespaces=["/", "/second"])
        await emit(client, "kick_me")
        async with asyncio.timeout(T):
            while not reasons:
                await asyncio.sleep(0.02)
        assert reasons == [(client.reason.SERVER_DISCONNECT,)], reasons
        assert await client.call("echo", "second alive", namespace="/second", timeout=T) == "second alive"


@pytest.mark.parametrize(
    ("how", "mode"),
    [
        ("sigterm", "default"),
        ("sigterm", "websocket"),
        # Not ("sigterm", "polling"): a graceful shutdown answers the pending GET with "1"
        # (SPEC.md §2.5), and python-engineio's client takes a server "1" as a final
        # disconnect and does not reconnect (the JS client does; see test_interop_js.py).
        ("sigkill", "default"),
        ("sigkill", "websocket"),
        ("sigkill", "polling"),
    ],
)
async def test_reconnects_after_server_restart(how: str, mode: str) -> None:
    """The server goes away and comes back on the same port; the client reconnects by itself."""
    app = AppProcess(APPS_DIR / "interop.py").start()
    restarted = None
    try:
        port = app.port
        async with client_for(
            port, mode, reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.2, randomization_factor=0
        ) as client:
            connects: asyncio.Queue[None] = asyncio.Queue()
            reasons: list[Any] = []
            client.on("connect", lambda: connects.put_nowait(None))
            client.on("disconnect", lambda *r: reasons.append(r))
            await connect(client, port, mode, auth={"token": "good", "user": "dave"})
            await asyncio.wait_for(connects.get(), T)
            first_sid = client.get_sid("/")
            if how == "sigkill":
                app.kill()
            else:
                app.close()  # SIGTERM: graceful shutdown closes every session
            restarted = AppProcess(APPS_DIR / "interop.py", port=port).start()
            await asyncio.wait_for(connects.get(), 3 * T)
            assert reasons, "no disconnect event before the reconnection"
            assert client.get_sid("/") != first_sid
            assert client.transport() == expected_transport(mode)
            assert await client.call("whoami", timeout=T) == {"token": "good", "user": "dave"}
            assert await client.call("echo", "after restart", timeout=T) == "after restart"
    finally:
        app.close()
        if restarted is not None:
            ensure_alive(restarted)
            restarted.close()
