"""Edges of the backend HTTP API over raw sockets: JSON error bodies, Allow, unknown fields, stale status."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest

from engineio_min.server import ROUTE_BODY_LIMIT

from .harness import API_KEY_A, STREAM, Harness

BASE = f"/api/v1/apps/app_xyz789/streams/{STREAM}"
AUTH = f"Authorization: Bearer {API_KEY_A}\r\n"


async def raw(rc: Harness, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send one request as written (``Connection: close``); (status, headers, body) of the answer."""
    url = urlsplit(rc.url)
    assert url.hostname is not None and url.port is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(head.encode("latin-1") + b"Connection: close\r\n\r\n" + body)
        with_body = await asyncio.wait_for(reader.read(-1), 5)
    finally:
        writer.close()
    head_bytes, _, payload = with_body.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, payload


def error_of(payload: bytes) -> str:
    """The message of a JSON error body (fails the test if the body is anything else)."""
    body = json.loads(payload)
    assert isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], str), body
    return body["error"]


async def test_too_large_body_is_a_json_413(rc: Harness) -> None:
    head = f"POST {BASE}/live HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: {ROUTE_BODY_LIMIT + 1}\r\n"
    status, headers, payload = await raw(rc, head)
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    assert error_of(payload)


async def test_too_many_header_bytes_is_a_json_431(rc: Harness) -> None:
    head = f"GET {BASE} HTTP/1.1\r\nHost: x\r\n{AUTH}X-Filler: {'a' * 20_000}\r\n"
    status, headers, payload = await raw(rc, head)
    assert status == 431
    assert headers["content-type"].startswith("application/json")
    assert error_of(payload)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", f"{BASE}/live", "POST"),
        ("PUT", f"{BASE}/offline", "POST"),
        ("POST", BASE, "GET"),
        ("DELETE", BASE, "GET"),
        ("POST", "/healthz", "GET"),
    ],
)
async def test_405_names_the_allowed_method(rc: Harness, method: str, path: str, allow: str) -> None:
    status, headers, payload = await raw(rc, f"{method} {path} HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 0\r\n")
    assert status == 405
    assert headers["allow"] == allow
    assert error_of(payload) == "method not allowed"


@pytest.mark.parametrize(
    ("action", "body", "unknown"),
    [
        ("live", {"titel": "x"}, "titel"),
        ("live", {"title": "x", "extra": 1}, "extra"),
        ("offline", {"reason": "done"}, "reason"),
        ("error", {"error": "x", "code": 3}, "code"),
    ],
)
async def test_unknown_body_fields_are_refused(rc: Harness, action: str, body: dict[str, object], unknown: str) -> None:
    status, answer = await rc.http("POST", f"{BASE}/{action}", body)
    assert status == 400
    assert unknown in answer["error"] and "unknown field" in answer["error"]
    # Nothing happened: the stream is still offline with no title.
    status, now = await rc.http("GET", BASE)
    assert (now["status"], now["title"], now["error"]) == ("offline", "", None)


async def test_error_is_cleared_once_the_stream_moves_on(rc: Harness) -> None:
    await rc.http("POST", f"{BASE}/live", {"title": "t"})
    status, body = await rc.http("POST", f"{BASE}/error", {"error": "encoder lost"})
    assert (body["status"], body["error"]) == ("error", "encoder lost")
    status, body = await rc.http("POST", f"{BASE}/offline", {})
    assert status == 200 and (body["status"], body["error"]) == ("offline", None)
    assert (await rc.http("GET", BASE))[1]["error"] is None
    await rc.http("POST", f"{BASE}/error", {"error": "again"})
    status, body = await rc.http("POST", f"{BASE}/live", {"title": "back"})
    assert (body["status"], body["error"]) == ("live", None)
