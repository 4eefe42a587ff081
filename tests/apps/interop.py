"""Interop test app: an engineio_min Socket.IO server for stock clients to talk to.

Run ``python tests/apps/interop.py --port PORT`` (``--port 0`` picks a free port); it prints
``listening on 127.0.0.1:PORT`` once it accepts connections, and runs until SIGTERM/SIGINT.

Namespaces ``/`` and ``/second`` behave the same:

* CONNECT with ``auth.token == "bad"`` is refused:
  ``CONNECT_ERROR {"message": "not authorized", "data": {"reason": "bad token"}}``.
  Otherwise the auth payload is recorded on the socket.
* ``whoami`` acks with the recorded auth dict.
* ``echo`` acks with its arguments and also emits ``echo`` back with them (binary included).
* ``ask`` makes the server call the client: ``question(42)`` with an ack, then emit ``answer``
  with the arguments the client acked.
* ``join {room}`` joins a room (acks ``True``); ``to_room {room, msg}`` broadcasts
  ``room_msg msg`` to that room (acks the number of recipients).
* ``drop_me`` closes the whole engine connection (the client should reconnect by itself).
* ``kick_me`` disconnects the socket from the namespace (``41``; the engine stays open).

Used by tests/integration/engineio/test_interop_*.py and tests/js/interop.js.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from engineio_min import ConnectRefused, Server, Socket

NAMESPACES = ("/", "/second")


def register(server: Server, name: str) -> None:
    nsp = server.of(name)

    @nsp.on_connect
    def connect(sock: Socket, auth: dict[str, Any]) -> None:
        if auth.get("token") == "bad":
            raise ConnectRefused("not authorized", {"reason": "bad token"})
        sock.data["auth"] = auth

    @nsp.on("whoami")
    def whoami(sock: Socket, *args: Any) -> Any:
        return sock.data.get("auth", {})

    @nsp.on("echo")
    def echo(sock: Socket, *args: Any) -> tuple[Any, ...]:
        sock.emit("echo", *args)
        return args  # a tuple: the ack carries every argument

    @nsp.on("ask")
    async def ask(sock: Socket, *args: Any) -> None:
        answer = await sock.call("question", 42, timeout=5)
        sock.emit("answer", *answer)

    @nsp.on("join")
    def join(sock: Socket, data: dict[str, Any]) -> bool:
        sock.join(data["room"])
        return True

    @nsp.on("to_room")
    def to_room(sock: Socket, data: dict[str, Any]) -> int:
        return nsp.emit("room_msg", data["msg"], to=data["room"])

    @nsp.on("drop_me")
    def drop_me(sock: Socket, *args: Any) -> None:
        sock.disconnect(close_engine=True)

    @nsp.on("kick_me")
    def kick_me(sock: Socket, *args: Any) -> None:
        sock.disconnect()


def build_server() -> Server:
    server = Server(
        path="/socket.io/",
        ping_interval=0.5,  # short, so that heartbeats happen during the tests
        ping_timeout=1.0,
        allowed_origins="*",
        connect_timeout=5.0,
    )
    for name in NAMESPACES:
        register(server, name)
    return server


async def main(port: int) -> None:
    server = build_server()
    bound = await server.start("127.0.0.1", port)
    print(f"listening on 127.0.0.1:{bound}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
