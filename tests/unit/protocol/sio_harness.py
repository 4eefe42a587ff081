"""What the Socket.IO machine tests share: a recording sink, a machine with a fake clock."""

from __future__ import annotations

from typing import Any

from engineio_min.protocol.socketio import NamespaceLink, SioMachine

NAMESPACES = frozenset({"/", "/admin", "/chat"})
CONNECT_TIMEOUT = 45.0
ATTACHMENT_TIMEOUT = 10.0
MAX_ATTACHMENT_BYTES = 1000


class Sink:
    """An Engine.IO session's send queue that only records (text and binary, in order)."""

    def __init__(self) -> None:
        self.sent: list[str | bytes] = []

    def send_text(self, text: str) -> None:
        self.sent.append(text)

    def send_binary(self, data: bytes) -> None:
        self.sent.append(data)

    def take(self) -> list[str | bytes]:
        sent, self.sent = self.sent, []
        return sent


Link = NamespaceLink[Sink]
Machine = SioMachine[Sink, Link]


def new_machine(sink: Sink, now: float = 0.0) -> Machine:
    return SioMachine(
        sink, NAMESPACES, now, connect_timeout=CONNECT_TIMEOUT, max_attachment_bytes=MAX_ATTACHMENT_BYTES,
        attachment_timeout=ATTACHMENT_TIMEOUT,
    )  # fmt: skip


class Waiter:
    """An ack waiter that counts its calls."""

    def __init__(self) -> None:
        self.answers: list[list[Any]] = []

    def __call__(self, args: list[Any]) -> None:
        self.answers.append(args)
