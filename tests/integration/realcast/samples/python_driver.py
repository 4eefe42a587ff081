# Appended to the seed's Python sample (which defines `sio` and has already connected and sent
# `authenticate`) to exchange events with a realcast server. Not collected by pytest.
# Protocol with the test: prints "READY" after its own actions, then waits for a moderator's
# typing, message and a ban of itself, and prints "DONE" (exit 0) or "FAILED ..." (exit 1).
import sys
import threading
import time

STREAM = "stream_qwe456"
received = []
changed = threading.Condition()


def _record(event, *args):
    with changed:
        received.append((event, args[0] if args else None))
        changed.notify_all()


sio.on("*", _record)  # noqa: F821  (defined by the sample above)


def wait_for(what, predicate, timeout=8.0):
    deadline = time.monotonic() + timeout
    with changed:
        while not any(predicate(e, d) for e, d in received):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what}; received: {received!r}")
            changed.wait(left)


def main():
    client = sio  # noqa: F821
    joined = client.call("chat:join", {"stream_id": STREAM, "user_id": "py_user", "username": "PyUser"}, timeout=5)
    assert joined["ok"] is True, joined
    sent = client.call("chat:message", {"stream_id": STREAM, "message": "hello from python"}, timeout=5)
    assert sent["ok"] is True, sent
    wait_for("own message", lambda e, d: e == "chat:message" and d["message_id"] == sent["message_id"])
    reacted = client.call("reaction:send", {"stream_id": STREAM, "emoji": "🎉"}, timeout=5)
    assert reacted["ok"] is True, reacted
    wait_for("own reaction", lambda e, d: e == "reaction.sent" and d["user_id"] == "py_user")
    client.emit("chat:typing", {"stream_id": STREAM, "user_id": "py_user", "username": "PyUser"})
    wait_for("a viewer count", lambda e, d: e == "viewer.count.update" and d["count"] >= 1)
    print("READY", flush=True)
    wait_for("the moderator typing", lambda e, d: e == "chat:typing" and d["username"] == "Mod")
    wait_for("the moderator's message", lambda e, d: e == "chat:message" and d["message"] == "Welcome, Python!")
    wait_for("our ban", lambda e, d: e == "user.banned" and d["user_id"] == "py_user")
    refused = client.call("chat:join", {"stream_id": STREAM}, timeout=5)
    assert refused["error"]["type"] == "permission_denied", refused
    client.disconnect()
    print("DONE", flush=True)


try:
    main()
except Exception as exc:  # report to the test, which shows the output
    print(f"FAILED {exc!r}", flush=True)
    sys.exit(1)
