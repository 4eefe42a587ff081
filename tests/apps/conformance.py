"""The conformance app the official Engine.IO v4 / Socket.IO v5 test suites point at.

    python tests/apps/conformance.py --port PORT     (127.0.0.1; --port 0 picks one)

* ``/engine.io/``: a bare Engine.IO server that echoes every message in kind.
* ``/socket.io/``: namespaces ``/`` and ``/custom``; on connect, the event ``auth``
  carries the CONNECT payload; on ``/``, ``message`` is answered with ``message-back``
  and ``message-with-ack`` is acked with its arguments.
* pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000, connect timeout 1 s,
  any origin.

Prints ``listening on 127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engineio_min import Server, Socket
from engineio_min.engine import EngineSession


class EchoHandler:
    """Bare Engine.IO: every message goes back as it came (text as text, binary as binary)."""

    def __init__(self, session: EngineSession) -> None:
        self.session = session

    def on_message(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            self.session.send_binary(data)
        else:
            self.session.send_text("4" + data)

    def on_close(self, reason: str) -> None:
        pass


def build_server() -> Server:
    server = Server(ping_interval=0.3, ping_timeout=0.2, max_payload=1_000_000, allowed_origins="*",
                    connect_timeout=1.0)
    server.mount_engine("/engine.io/", EchoHandler)
    main = server.of("/")
    custom = server.of("/custom")

    def send_auth(sock: Socket, auth: dict[str, Any]) -> None:
        sock.emit("auth", auth)

    main.on_connect(send_auth)
    custom.on_connect(send_auth)

    @main.on("message")
    def message(sock: Socket, *args: Any) -> None:
        sock.emit("message-back", *args)

    @main.on("message-with-ack")
    def message_with_ack(sock: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    return server


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    options = parser.parse_args()
    server = build_server()
    port = await server.start(options.host, options.port)
    print(f"listening on {options.host}:{port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
