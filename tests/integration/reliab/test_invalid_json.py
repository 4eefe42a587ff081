"""Issue 12, item 3: an event whose JSON does not decode is refused, the connection stays.

python-socketio writes a lone surrogate as ``\\ud83d`` exactly as JavaScript's
``JSON.stringify`` does for a string cut inside an emoji.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.engineio.eio_testkit import EioWs
from tests.integration.realcast.harness import STREAM, Harness

CUT_EMOJI = "x\ud83d"  # the first half of U+1F600 only
JOIN = {"stream_id": STREAM}


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_lone_surrogate_is_refused_with_invalid_request_and_the_client_stays(
    tmp_path: Path, transport: str,
) -> None:
    rc = Harness(tmp_path / "data")
    await rc.start()
    try:
        alice = await rc.user("alice", "Alice", transports=(transport,))
        await alice.call("chat:join", JOIN)
        assert rc.app is not None
        server = rc.app.server
        before = server.invalid_event_count

        ack = await alice.call("chat:message", {"stream_id": STREAM, "message": CUT_EMOJI})
        assert ack["ok"] is False
        assert ack["error"]["type"] == "invalid_request"

        await alice.emit("chat:message", {"stream_id": STREAM, "message": CUT_EMOJI})  # no ack: `error` event
        error = await alice.next("error")
        assert error["type"] == "invalid_request"
        assert server.invalid_event_count == before + 2

        # Still connected, still in the chat; nothing was broadcast for the bad messages.
        ack = await alice.call("chat:message", {"stream_id": STREAM, "message": "fine 😀"})
        assert ack["ok"] is True
        assert (await alice.next("chat:message"))["message"] == "fine 😀"
        assert alice.drain("chat:message") == []
        assert alice.sio.connected
    finally:
        await rc.stop()


async def test_broken_json_text_with_an_ack_id_is_answered_on_that_id(tmp_path: Path) -> None:
    rc = Harness(tmp_path / "data")
    await rc.start()
    try:
        assert rc.app is not None
        port = rc.app.server.port
        ws, _ = await EioWs.open_session(port, path="/socket.io/")
        await ws.send("40")
        assert (await ws.recv_msg()).startswith("40")
        await ws.send('4217["chat:message",{"message":"unterminated')
        reply = await ws.recv_msg()
        assert isinstance(reply, str) and reply.startswith("4317["), reply
        assert '"ok":false' in reply and '"type":"invalid_request"' in reply
        await ws.send('42["chat:message"')  # no ack id: answered with the `error` event
        reply = await ws.recv_msg()
        assert isinstance(reply, str) and reply.startswith('42["error",'), reply
        await ws.send('4218["chat:message",{}]')  # the session still decodes and answers
        reply = await ws.recv_msg()
        assert isinstance(reply, str) and reply.startswith("4318["), reply
        await ws.ws.close()
    finally:
        await rc.stop()
