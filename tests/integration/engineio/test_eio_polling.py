"""Engine.IO long-polling transport (SPEC.md §2.4, §2.5, §2.9; §5 "Polling", "Close")."""

from __future__ import annotations

import asyncio

from .eio_testkit import (
    EIO_PATH,
    RS,
    HttpClosed,
    HttpConn,
    Polling,
    eio_url,
    http_request,
    parse_open_packet,
)


def assert_gone(resp) -> None:
    """A request on a closed session: 400 with code 1 (§2.9: its sid is forgotten)."""
    assert resp.status == 400, resp
    assert resp.json() == {"code": 1, "message": "Session ID unknown"}, resp


async def post_may_fail(p: Polling, body: bytes | str, **kw) -> int | None:
    """POST whose answer is not specified (invalid input): a status, or None if the server hung up."""
    try:
        return (await p.post(body, **kw)).status
    except (HttpClosed, ConnectionError):
        return None


async def test_post_answers_ok(port: int) -> None:
    p = await Polling.start(port)
    resp = await p.post("4hello")
    assert resp.status == 200, resp
    assert resp.body == b"ok", resp


async def test_echo_one_text_packet(port: int) -> None:
    p = await Polling.start(port)
    await p.post_ok("4hello")
    resp = await p.get()
    assert resp.status == 200 and resp.body == b"4hello", resp
    assert resp.headers.get("content-type", "").lower().replace(" ", "") == "text/plain;charset=utf-8", resp


async def test_echo_several_packets_in_one_get(port: int) -> None:
    p = await Polling.start(port)
    await p.post_ok("4test1\x1e4test2\x1e4test3")
    resp = await p.get()
    assert resp.status == 200 and resp.body == b"4test1\x1e4test2\x1e4test3", resp


async def test_echo_text_and_binary(port: int) -> None:
    p = await Polling.start(port)
    await p.post_ok("4hello\x1ebAQIDBA==")
    resp = await p.get()
    assert resp.status == 200 and resp.body == b"4hello\x1ebAQIDBA==", resp


async def test_echo_binary_all_byte_values(port: int) -> None:
    import base64

    data = bytes(range(256))
    p = await Polling.start(port)
    await p.post_ok("b" + base64.b64encode(data).decode())
    resp = await p.get()
    assert resp.status == 200 and resp.text == "b" + base64.b64encode(data).decode(), resp


async def test_echo_empty_message_and_unicode(port: int) -> None:
    # an empty message is just "4"; non-ASCII text is UTF-8 both ways
    p = await Polling.start(port)
    await p.post_ok("4\x1e4héllo wörld ✓ 😀")
    resp = await p.get()
    assert resp.status == 200 and resp.body == "4\x1e4héllo wörld ✓ 😀".encode(), resp


async def test_messages_posted_separately_are_batched(port: int) -> None:
    p = await Polling.start(port)
    await p.post_ok("4a")
    await p.post_ok("4b")
    resp = await p.get()
    assert resp.status == 200 and resp.body == b"4a\x1e4b", resp


async def test_pending_get_is_answered_by_a_post(port: int) -> None:
    p = await Polling.start(port)
    held = await p.start_get()
    try:
        await asyncio.sleep(0.05)
        await p.post_ok("4wake")
        resp = await held.read_response(timeout=1.0)
        assert resp.status == 200 and resp.body == b"4wake", resp
    finally:
        await held.close()


async def test_post_without_content_type_is_text(port: int) -> None:
    p = await Polling.start(port)
    resp = await p.post("4plain", content_type=None)
    assert resp.status == 200 and resp.body == b"ok", resp
    assert (await p.get()).body == b"4plain"


async def test_keep_alive_connection_serves_several_requests(port: int) -> None:
    # real clients (browsers, node, aiohttp) reuse one connection for many polls
    conn = await HttpConn.open(port)
    try:
        resp = await conn.request("GET", eio_url(EIO_PATH))
        assert resp.status == 200, resp
        sid = parse_open_packet(resp.text)["sid"]
        url = eio_url(EIO_PATH, sid=sid)
        for i in range(3):
            r = await conn.request("POST", url, f"4ka{i}".encode(), {"Content-Type": "text/plain;charset=UTF-8"})
            assert r.status == 200 and r.body == b"ok", r
            r = await conn.request("GET", url)
            assert r.status == 200 and r.body == f"4ka{i}".encode(), r
    finally:
        await conn.close()


async def test_invalid_packet_closes_session(port: int) -> None:
    p = await Polling.start(port)
    await post_may_fail(p, "abc")
    assert_gone(await p.get())


async def test_invalid_packet_after_valid_ones_closes_session(port: int) -> None:
    p = await Polling.start(port)
    await post_may_fail(p, "4ok\x1ezzz")
    assert_gone(await p.get())


async def test_empty_record_closes_session(port: int) -> None:
    # an empty string is not a packet (§2.4)
    p = await Polling.start(port)
    await post_may_fail(p, "4a\x1e\x1e4b")
    assert_gone(await p.get())


async def test_client_ping_closes_session(port: int) -> None:
    # in v4 only the server pings: "invalid heartbeat direction" (§2.4)
    p = await Polling.start(port)
    await post_may_fail(p, "2")
    assert_gone(await p.get())


async def test_octet_stream_post_closes_session(port: int) -> None:
    # binary bodies are not v4 polling: 400 and the session is closed (§2.5)
    p = await Polling.start(port)
    resp = await p.post(b"\x04hello", content_type="application/octet-stream")
    assert resp.status == 400, resp
    assert_gone(await p.get())


async def test_noop_upgrade_and_open_from_client_are_ignored(port: int) -> None:
    # §2.4: 5/6 outside an upgrade and 0 from a client are ignored
    p = await Polling.start(port)
    await p.post_ok("6\x1e5\x1e0\x1e4after")
    resp = await p.get()
    assert resp.status == 200 and resp.body == b"4after", resp


async def test_concurrent_get_closes_session(port: int) -> None:
    p = await Polling.start(port)
    first = await p.start_get()
    try:
        await asyncio.sleep(0.05)  # let the server park the first GET
        second = await p.get(timeout=1.0)
        assert second.status == 400, second
        resp = await first.read_response(timeout=1.0)
        assert resp.status == 200 and resp.body == b"1", resp
    finally:
        await first.close()
    assert_gone(await p.get())


async def test_aborted_get_closes_session(port: int) -> None:
    p = await Polling.start(port)
    held = await p.start_get()
    await asyncio.sleep(0.05)
    held.abort()
    await asyncio.sleep(0.1)  # well before the 300 ms ping
    assert_gone(await p.get())


async def test_closed_get_closes_session(port: int) -> None:
    # the client closes the held poll's connection normally (FIN), as an aborted XHR does
    p = await Polling.start(port)
    held = await p.start_get()
    await asyncio.sleep(0.05)
    await held.close()
    await asyncio.sleep(0.1)
    assert_gone(await p.get())


async def test_client_close_answers_pending_get_with_noop(port: int) -> None:
    p = await Polling.start(port)
    held = await p.start_get()
    try:
        await asyncio.sleep(0.05)
        resp = await p.post("1")
        assert resp.status == 200 and resp.body == b"ok", resp
        pending = await held.read_response(timeout=1.0)
        assert pending.status == 200 and pending.body == b"6", pending
    finally:
        await held.close()
    assert_gone(await p.get())


async def test_client_close_without_pending_get(port: int) -> None:
    p = await Polling.start(port)
    await p.post_ok("1")
    assert_gone(await p.get())
    assert_gone(await p.post("4late"))


async def test_post_over_max_payload_is_413_and_session_kept(port: int) -> None:
    p = await Polling.start(port)
    body = ("4" + "a" * 1_000_000).encode()  # 1 000 001 bytes > maxPayload
    conn = await HttpConn.open(port)
    try:
        head = conn.build_request(
            "POST", p.url, b"", {"Content-Type": "text/plain;charset=UTF-8"}, content_length=len(body)
        )
        await conn.send_raw(head)
        # write the body while reading: a server may answer 413 before reading it all
        writer = asyncio.ensure_future(conn.send_raw(body, timeout=5))
        resp = await conn.read_response(timeout=5)
        assert resp.status == 413, resp
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    finally:
        conn.abort()
    # the session is kept (§2.2)
    await p.post_ok("4after413")
    resp = await p.get()
    assert resp.status == 200 and resp.body == b"4after413", resp


async def test_post_at_max_payload_is_accepted(port: int) -> None:
    p = await Polling.start(port)
    body = "4" + "x" * (1_000_000 - 1)  # exactly maxPayload bytes
    resp = await p.post(body, timeout=5)
    assert resp.status == 200 and resp.body == b"ok", resp
    resp = await p.get(timeout=5)
    assert resp.status == 200 and resp.text == body, (resp.status, len(resp.body))


async def test_unsupported_method_with_sid(port: int) -> None:
    # [ref] a valid sid with a method other than GET/POST gets 500; anything 4xx/5xx is an error answer
    p = await Polling.start(port)
    resp = await http_request(port, "PUT", p.url, b"4x")
    assert 400 <= resp.status < 600, resp


async def test_server_traffic_order_is_kept(port: int) -> None:
    p = await Polling.start(port)
    sent = [f"4m{i}" for i in range(50)]
    for i in range(0, 50, 10):
        await p.post_ok(RS.join(sent[i : i + 10]))
    assert await p.read_records(50) == sent
