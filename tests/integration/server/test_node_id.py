"""``Server(node_id=...)``: every Engine.IO sid names its node, for routing behind a balancer."""

from __future__ import annotations

import re

import pytest

from engineio_min import Server
from tests.integration.engineio.eio_testkit import EioWs, IdleHandler, eio_url, http_request, parse_open_packet

RANDOM_PART = r"[A-Za-z0-9_-]{20}"  # token_urlsafe(15): never a "."



async def open_sids(node_id: str | None) -> list[str]:
    """The sid of a polling handshake and of a WebSocket-only handshake."""
    server = Server(node_id=node_id)
    server.mount_engine("/engine.io/", IdleHandler)
    port = await server.start("127.0.0.1", 0)
    try:
        response = await http_request(port, "GET", eio_url())
        assert response.status == 200
        polling_sid = parse_open_packet(response.body.decode())["sid"]
        ws, opened = await EioWs.open_session(port)
        await ws.ws.close()
        return [polling_sid, opened["sid"]]
    finally:
        await server.shutdown()


async def test_sids_start_with_the_node_id_and_a_dot() -> None:
    for sid in await open_sids("eu-1_b"):
        assert re.fullmatch(r"eu-1_b\." + RANDOM_PART, sid), sid


async def test_without_a_node_id_sids_are_random_only() -> None:
    for sid in await open_sids(None):
        assert re.fullmatch(RANDOM_PART, sid), sid


@pytest.mark.parametrize("node_id", ["", "n.1", "n 1", "n/1", "é", "n" * 65])
def test_a_node_id_that_cannot_prefix_a_sid_is_refused(node_id: str) -> None:
    with pytest.raises(ValueError, match="node_id must be 1-64 characters"):
        Server(node_id=node_id)
