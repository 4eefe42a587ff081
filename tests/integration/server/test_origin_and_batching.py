"""Allowed origins (same-origin by default) and the 16-packet cap of a polling response."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from engineio_min import Server
from engineio_min.engine import EngineSession
from tests.integration.engineio.eio_testkit import Polling, eio_url, http_request, split_payload


class Echo:
    def __init__(self, session: EngineSession) -> None:
        self.session = session

    def on_message(self, data: str | bytes) -> None:
        self.session.send_text("4" + str(data))

    def on_close(self, reason: str) -> None:
        pass


async def started(allowed_origins: str | Sequence[str] | None = None) -> Server:
    server = Server(allowed_origins=allowed_origins)
    server.mount_engine("/engine.io/", Echo)
    await server.start("127.0.0.1", 0)
    return server


@pytest.fixture
async def same_origin() -> AsyncIterator[Server]:
    server = await started()
    yield server
    await server.shutdown()


async def test_default_refuses_a_foreign_origin(same_origin: Server) -> None:
    port = same_origin.port
    foreign = await http_request(port, "GET", eio_url(), headers={"Origin": "http://evil.example"})
    assert foreign.status == 403
    assert foreign.json() == {"code": 4, "message": "Origin not allowed"}
    same = await http_request(port, "GET", eio_url(),
                              headers={"Origin": f"http://127.0.0.1:{port}", "Host": f"127.0.0.1:{port}"})
    assert same.status == 200 and same.text.startswith("0{")
    assert same.headers["access-control-allow-origin"] == f"http://127.0.0.1:{port}"
    no_origin = await http_request(port, "GET", eio_url())  # non-browser clients send none
    assert no_origin.status == 200


async def test_default_refuses_a_foreign_origin_websocket(same_origin: Server) -> None:
    url = f"ws://127.0.0.1:{same_origin.port}/engine.io/?EIO=4&transport=websocket"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


async def test_an_origin_list_allows_only_its_members() -> None:
    server = await started(["https://app.example"])
    try:
        ok = await http_request(server.port, "GET", eio_url(), headers={"Origin": "https://app.example"})
        assert ok.status == 200
        preflight = await http_request(server.port, "OPTIONS", eio_url(), headers={"Origin": "https://app.example"})
        assert preflight.status == 204
        assert "POST" in preflight.headers["access-control-allow-methods"]
        other = await http_request(server.port, "GET", eio_url(), headers={"Origin": "https://other.example"})
        assert other.status == 403
    finally:
        await server.shutdown()


async def test_a_polling_response_carries_at_most_16_packets(same_origin: Server) -> None:
    poll = await Polling.start(same_origin.port)
    await poll.post_ok("\x1e".join(f"4m{i}" for i in range(40)))
    sizes = []
    received: list[str] = []
    while len(received) < 40:
        records = [r for r in split_payload((await poll.get()).body) if r != "2"]
        sizes.append(len(records))
        received += records
    assert received == [f"4m{i}" for i in range(40)]
    assert sizes == [16, 16, 8]


async def test_websocket_handshake_refusals(same_origin: Server) -> None:
    base = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    url = eio_url(transport="websocket")
    bad_version = await http_request(same_origin.port, "GET", url, headers={**base, "Sec-WebSocket-Version": "8"})
    assert bad_version.status == 426 and bad_version.headers["sec-websocket-version"] == "13"
    bad_key = await http_request(same_origin.port, "GET", url, headers={**base, "Sec-WebSocket-Key": "c2hvcnQ="})
    assert bad_key.status == 400
    async with connect(f"ws://127.0.0.1:{same_origin.port}{url}") as ws:  # and a good one still works
        assert str(await ws.recv()).startswith("0{")
