"""An in-memory stand-in for an asyncio transport, for driving the server in-process.

Shared by connect_cpu.py and fanout_cpu.py (and, through fanout_cpu, cluster_bench.py): the
server's protocol objects see the part of the transport API they use, and no kernel is involved.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["MemoryTransport"]


class MemoryTransport:
    """The part of an asyncio transport the server uses; subclasses decide what a write does."""

    def __init__(self) -> None:
        self.protocol: Any = None
        self.closed = False

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    abort = close

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol
