"""Wiring: build the engineio_min Server, the Hub, handlers, HTTP routes and background tasks.

Layer: application (realcast); imports engineio_min's package root and realcast's modules.

Background work is two asyncio tasks, never per connection: the analytics ticker (one
``analytics:update`` per subscribed stream every ``analytics_interval`` seconds) and a
once-a-minute housekeeping pass (expired bans and mutes, stale slow-mode and typing entries,
idle streams). Viewer counts are coalesced with ``loop.call_later`` timers (see ``live.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from engineio_min import Server

from .backend import BackendApi
from .config import ServerConfig
from .connection import analytics_room
from .handlers import register_core
from .hub import Hub
from .models import MAX_SLOW_MODE_INTERVAL
from .moderation import register_moderation
from .store import ModerationStore

__all__ = ["RealcastApp"]

logger = logging.getLogger("realcast")

HOUSEKEEPING_INTERVAL: Final = 60.0


def _call_later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
    return asyncio.get_running_loop().call_later(delay, callback)


class RealcastApp:
    """One realcast server: ``await start()`` / ``await stop()``, or ``await run()``.

    Args:
        config: the configuration, with at least one app (see ``config.ensure_dev_app``).
    """

    def __init__(self, config: ServerConfig) -> None:
        if not config.apps:
            raise ValueError("no app configured")
        self.config = config
        self.server = Server(allowed_origins=config.allowed_origins, node_id=config.node_id)
        self.store = ModerationStore.in_data_dir(config.data_dir)
        self.hub = Hub(self.server.of("/"), config, self.store, _call_later)
        register_core(self.hub)
        register_moderation(self.hub)
        BackendApi(self.hub).install(self.server)
        self._tasks: list[asyncio.Task[None]] = []
        self.port = 0

    async def start(self) -> int:
        """Listen on the configured host and port; returns the bound port."""
        # One of several workers on this port (realcast serve --workers): share it with SO_REUSEPORT.
        reuse_port = self.config.workers > 1
        self.port = await self.server.start(self.config.host, self.config.port, reuse_port=reuse_port)
        self._tasks = [
            asyncio.create_task(self._every(self.config.analytics_interval, self._send_analytics)),
            asyncio.create_task(self._every(HOUSEKEEPING_INTERVAL, self._housekeeping)),
        ]
        return self.port

    async def stop(self) -> None:
        """Close every connection cleanly, stop background tasks, close the database."""
        await self._stop_tasks()
        await self.server.shutdown()
        self.store.close()

    async def run(self, on_listening: Callable[[int], None] | None = None) -> None:
        """Serve until SIGTERM/SIGINT, then shut down cleanly.

        Args:
            on_listening: called with the bound port once the server accepts connections.
        """
        port = await self.start()
        if on_listening is not None:
            on_listening(port)
        try:
            await self.server.serve_forever()
        finally:
            await self._stop_tasks()
            self.store.close()

    async def _stop_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @staticmethod
    async def _every(interval: float, job: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                job()
            except Exception:  # task boundary: log and keep ticking
                logger.exception("background job %s failed", job.__name__)

    def _send_analytics(self) -> None:
        hub = self.hub
        now = hub.mono()
        for state in list(hub.live.streams.values()):
            if state.analytics_subscribers:
                payload = state.analytics.snapshot(now).as_payload(state.stream_id)
                hub.nsp.emit("analytics:update", payload, to=analytics_room(state.app_id, state.stream_id))

    def _housekeeping(self) -> None:
        hub = self.hub
        self.store.purge_expired()
        hub.slow_mode.purge(MAX_SLOW_MODE_INTERVAL)
        hub.typing.purge(1.0)
        hub.live.forget_idle(hub.mono())
