"""Engine.IO handshake and request validation (SPEC.md §2.2, §2.3; §5 "Handshake")."""

from __future__ import annotations

import re

import pytest

from .eio_testkit import (
    EIO_PATH,
    SIO_PATH,
    EioWs,
    Polling,
    eio_url,
    http_request,
    parse_open_packet,
    ws_refused,
)

OPEN_KEYS = ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
SID_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")


def check_open(open_pkt: dict, upgrades: list[str]) -> None:
    # exactly these five keys, no extras (§2.3; the order is not significant JSON)
    assert sorted(open_pkt) == sorted(OPEN_KEYS), open_pkt
    sid = open_pkt["sid"]
    assert isinstance(sid, str) and sid, open_pkt
    assert SID_CHARS.match(sid), f"sid must be URL-safe: {sid!r}"
    assert open_pkt["upgrades"] == upgrades
    assert open_pkt["pingInterval"] == 300 and type(open_pkt["pingInterval"]) is int
    assert open_pkt["pingTimeout"] == 200 and type(open_pkt["pingTimeout"]) is int
    assert open_pkt["maxPayload"] == 1_000_000 and type(open_pkt["maxPayload"]) is int


def check_error(resp, code: int, message: str) -> None:
    assert resp.status == 400, resp
    assert resp.headers.get("content-type", "").startswith("application/json"), resp
    assert resp.json() == {"code": code, "message": message}, resp


@pytest.mark.parametrize("path", [EIO_PATH, SIO_PATH])
async def test_polling_handshake_open_packet(port: int, path: str) -> None:
    resp = await http_request(port, "GET", eio_url(path))
    assert resp.status == 200, resp
    assert resp.headers.get("content-type", "").lower().replace(" ", "") == "text/plain;charset=utf-8", resp
    # the body is exactly one open packet, nothing batched after it
    assert "\x1e" not in resp.text, resp
    check_open(parse_open_packet(resp.text), ["websocket"])


@pytest.mark.parametrize("path", [EIO_PATH, SIO_PATH])
async def test_websocket_handshake_open_packet(port: int, path: str) -> None:
    c, open_pkt = await EioWs.open_session(port, path)
    try:
        check_open(open_pkt, [])
    finally:
        await c.close()


async def test_sids_are_distinct(port: int) -> None:
    sids = {(await Polling.start(port)).sid for _ in range(5)}
    assert len(sids) == 5


async def test_handshake_with_cache_buster_and_legacy_params(port: int) -> None:
    # t (cache buster) and b64 are ignored in v4
    resp = await http_request(port, "GET", eio_url(EIO_PATH, t="PZ3d_7x", b64="1"))
    assert resp.status == 200, resp
    check_open(parse_open_packet(resp.text), ["websocket"])


async def test_first_poll_after_handshake_is_exactly_a_ping(port: int) -> None:
    # after open, the server sends nothing on its own but pings (§2.3)
    p = await Polling.start(port)
    resp = await p.get(timeout=2)
    assert resp.status == 200 and resp.body == b"2", resp


@pytest.mark.parametrize(
    "query",
    [
        {"EIO": None},  # missing
        {"EIO": "3"},
        {"EIO": "5"},
        {"EIO": "abc"},
        {"EIO": ""},
    ],
    ids=["missing", "3", "5", "abc", "empty"],
)
async def test_bad_eio_version(port: int, query: dict) -> None:
    resp = await http_request(port, "GET", eio_url(EIO_PATH, **query))
    check_error(resp, 5, "Unsupported protocol version")


@pytest.mark.parametrize(
    "query",
    [{"transport": None}, {"transport": "foo"}, {"transport": ""}, {"transport": "POLLING"}],
    ids=["missing", "foo", "empty", "uppercase"],
)
async def test_bad_transport(port: int, query: dict) -> None:
    resp = await http_request(port, "GET", eio_url(EIO_PATH, **query))
    check_error(resp, 0, "Transport unknown")


async def test_transport_is_checked_before_eio(port: int) -> None:
    # §2.2 order: transport (code 0) wins over the version (code 5)
    resp = await http_request(port, "GET", eio_url(EIO_PATH, EIO="3", transport="foo"))
    check_error(resp, 0, "Transport unknown")


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_non_get_handshake(port: int, method: str) -> None:
    resp = await http_request(port, method, eio_url(EIO_PATH), b"4hello", {"Content-Type": "text/plain;charset=UTF-8"})
    check_error(resp, 2, "Bad handshake method")


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_unknown_sid(port: int, method: str) -> None:
    body = b"4hello" if method == "POST" else b""
    resp = await http_request(port, method, eio_url(EIO_PATH, sid="doesnotexist0000000"), body)
    check_error(resp, 1, "Session ID unknown")


async def test_websocket_transport_without_upgrade_header(port: int) -> None:
    # §2.2: transport=websocket on a plain GET (no Upgrade) is a bad request
    resp = await http_request(port, "GET", eio_url(EIO_PATH, transport="websocket"))
    check_error(resp, 3, "Bad request")


@pytest.mark.parametrize(
    "query",
    [
        {"EIO": None},
        {"EIO": "3"},
        {"transport": "foo"},
        {"sid": "doesnotexist0000000"},
    ],
    ids=["no-eio", "eio3", "bad-transport", "unknown-sid"],
)
async def test_websocket_refused_on_bad_query(port: int, query: dict) -> None:
    await ws_refused(port, EIO_PATH, **query)


async def test_other_sessions_survive_errors(port: int) -> None:
    p = await Polling.start(port)
    await http_request(port, "GET", eio_url(EIO_PATH, EIO="3"))
    await http_request(port, "GET", eio_url(EIO_PATH, sid="nope"))
    await p.post_ok("4still")
    assert await p.read_records(1) == ["4still"]
