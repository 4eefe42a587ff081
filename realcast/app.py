"""Wiring: build the engineio_min Server, the Hub, handlers, HTTP routes and background tasks.

Layer: application (realcast); imports engineio_min's package root and realcast's modules.

Background work is two asyncio tasks, never per connection: the analytics ticker (one
``analytics:update`` per subscribed stream every ``analytics_interval`` seconds) and a
once-a-minute housekeeping pass (expired bans and mutes, stale slow-mode and typing entries,
idle streams). Viewer counts are coalesced with ``loop.call_later`` timers (see ``live.py``).

Moderation state lives in SQLite in ``data_dir`` (one process, which locks the directory), or in
PostgreSQL when ``database_url`` is set (any number of processes); ``start`` opens it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from engineio_min import Namespace, Server
from engineio_min.adapter import LocalAdapter
from engineio_min.redis_adapter import RedisAdapter

from . import __version__
from .audit import AuditTrail
from .backend import BackendApi
from .cluster import ClusterState
from .config import ServerConfig
from .connection import analytics_room
from .dashboard import ADMIN_NAMESPACE, SNAPSHOT_INTERVAL, Dashboard
from .errors import ConfigError, StoreUnavailable
from .handlers import register_core
from .hub import Hub
from .logs import log_fields
from .memory import TRIM_INTERVAL, MemoryTrimmer, glibc_malloc_trim
from .metrics import Metrics
from .models import MAX_SLOW_MODE_INTERVAL
from .moderation import register_moderation
from .sqlitestore import SqliteModerationStore
from .store import ModerationStore
from .tls import server_ssl_context

__all__ = ["RealcastApp"]

logger = logging.getLogger("realcast")

HOUSEKEEPING_INTERVAL: Final = 60.0


def _call_later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
    return asyncio.get_running_loop().call_later(delay, callback)


def open_store(config: ServerConfig) -> ModerationStore:
    """The moderation store ``config`` asks for, not yet opened (``await store.open()``).

    Raises:
        DataDirInUse: SQLite, and another process holds ``config.data_dir``.
    """
    if config.database_url is not None:
        from .pgstore import PgModerationStore  # imported here: a single process never needs asyncpg

        return PgModerationStore(config.database_url)
    return SqliteModerationStore.in_data_dir(config.data_dir)


class RealcastApp:
    """One realcast server: ``await start()`` / ``await stop()``, or ``await run()``.

    Args:
        config: the configuration, with at least one app (see ``config.ensure_dev_app``).
    """

    def __init__(self, config: ServerConfig) -> None:
        if not config.apps:
            raise ValueError("no app configured")
        self.config = config
        self.redis: Redis | None = None
        self.node_id = config.node_id
        adapter_factory = None
        if config.redis_url is not None:
            self.node_id = config.node_id or "n" + secrets.token_hex(4)
            self.redis = Redis.from_url(config.redis_url)
            client, node_id = self.redis, self.node_id

            def adapter_factory(nsp: Namespace) -> LocalAdapter:
                if nsp.name == ADMIN_NAMESPACE:
                    return LocalAdapter(nsp)  # each node's dashboard shows that node: nothing to share
                return RedisAdapter(nsp, client, node_id)

        self.server = Server(
            allowed_origins=config.allowed_origins,
            node_id=self.node_id,
            adapter_factory=adapter_factory,
            header_timeout=config.header_timeout,
            body_timeout=config.body_timeout,
            keep_alive_timeout=config.keep_alive_timeout,
            max_buffered_bytes=config.max_buffered_bytes,
            max_total_buffered_bytes=config.max_total_buffered_bytes,
        )
        self.store = open_store(config)
        self.hub = Hub(self.server.of("/"), config, self.store, _call_later)
        if self.redis is not None:
            assert self.node_id is not None
            self.hub.attach_cluster(
                ClusterState(
                    self.redis,
                    self.node_id,
                    on_presence=self.hub.cluster_presence,
                    on_reap=self.hub.cluster_reaped,
                    local_presence=self.hub.local_presence,
                    wall=self.hub.wall,
                )
            )
            self.hub.nsp.adapter.on_resync = self._resync
            # The departures of this node's clients reach Redis and the other nodes before the
            # adapter closes: a clean stop takes this node's viewers out of the counts at once.
            self.server.on_sessions_closed = self._leave_cluster
        register_core(self.hub)
        self.audit = AuditTrail(self.hub.wall)
        register_moderation(self.hub, self.audit)
        BackendApi(self.hub).install(self.server)
        self.dashboard = Dashboard(self.hub, self.audit, self.node_id, self.hub.wall)
        self.dashboard.install(self.server)
        self.metrics = Metrics(self) if config.metrics else None
        self.memory = MemoryTrimmer(lambda: self.server.connection_count, glibc_malloc_trim())
        self._tasks: list[asyncio.Task[None]] = []
        self.port = 0

    async def start(self) -> int:
        """Open the moderation store, then listen on the configured host and port; returns the bound port.

        Raises:
            ConfigError: the moderation database (``database_url``) cannot be opened.
        """
        try:
            await self.store.open()
        except StoreUnavailable as err:
            await self.store.close()
            raise ConfigError(f"database_url: {err.message}") from err
        try:
            if self.hub.cluster is not None:
                await self.hub.cluster.start()
            # One of several workers on this port (realcast serve --workers): share it with SO_REUSEPORT.
            reuse_port = self.config.workers > 1
            ssl = None
            if self.config.ssl_certfile is not None:  # https/wss served directly (tls.py)
                ssl = server_ssl_context(self.config.ssl_certfile, self.config.ssl_keyfile)
            self.port = await self.server.start(
                self.config.host, self.config.port, reuse_port=reuse_port, ssl=ssl
            )
        except BaseException:
            await self._leave_cluster()
            await self.store.close()
            await self._close_redis()
            raise
        if self.metrics is not None:
            await self.metrics.start()
        self._tasks = [
            asyncio.create_task(self._every(self.config.analytics_interval, self._send_analytics)),
            asyncio.create_task(self._every(HOUSEKEEPING_INTERVAL, self._housekeeping)),
            asyncio.create_task(self._every(TRIM_INTERVAL, self.memory.tick)),
            asyncio.create_task(self._every(SNAPSHOT_INTERVAL, self.dashboard.tick)),
        ]
        return self.port

    async def stop(self) -> None:
        """Close every connection cleanly, stop background tasks, close the database."""
        await self._stop_tasks()
        await self.server.shutdown()
        await self._leave_cluster()
        await self.store.close()
        await self._close_redis()

    async def run(self, on_listening: Callable[[int], None] | None = None) -> None:
        """Serve until SIGTERM/SIGINT, then shut down cleanly.

        Args:
            on_listening: called with the bound port once the server accepts connections.
        """
        port = await self.start()
        config = self.config
        log_fields(
            logger,
            logging.INFO,
            "realcast started",
            event="start",
            version=__version__,
            host=config.host,
            port=port,
            tls=config.ssl_certfile is not None,
            node_id=self.node_id,
            pid=os.getpid(),
            apps=[app.app_id for app in config.apps],
            store="postgresql" if config.database_url is not None else "sqlite",
            cluster=self.redis is not None,
        )
        try:
            await self.server.serve_forever(None if on_listening is None else lambda: on_listening(port))
        finally:
            await self._stop_tasks()
            await self._leave_cluster()
            await self.store.close()
            await self._close_redis()
            log_fields(logger, logging.INFO, "realcast stopped", event="stop", node_id=self.node_id, pid=os.getpid())

    async def _leave_cluster(self) -> None:
        """Take this node's viewers out of the cluster's counts (once: the second call is a no-op)."""
        if self.hub.cluster is not None:
            await self.hub.cluster.close()

    async def _close_redis(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

    async def _resync(self) -> None:
        """After a Redis reconnect: re-assert this node's presence (moderation state: see the store)."""
        if self.hub.cluster is not None:
            await self.hub.cluster.resync()
        try:
            await self.store.reload()  # changes published while the link was down were missed
        except StoreUnavailable:
            logger.warning("could not reload moderation state after a reconnect; the cache stays as it was")

    async def _stop_tasks(self) -> None:
        if self.metrics is not None:
            await self.metrics.stop()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @staticmethod
    async def _every(interval: float, job: Callable[[], Awaitable[None] | None]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                pending = job()
                if inspect.isawaitable(pending):
                    await pending
            except Exception:  # task boundary: log and keep ticking
                logger.exception("background job %s failed", getattr(job, "__name__", job))

    def _send_analytics(self) -> Awaitable[None] | None:
        hub = self.hub
        if hub.cluster is not None:
            return self._send_cluster_analytics()
        now = hub.mono()
        for state in list(hub.live.streams.values()):
            if state.analytics_subscribers:
                payload = state.analytics.snapshot(now).as_payload(state.stream_id)
                hub.nsp.emit("analytics:update", payload, to=analytics_room(state.app_id, state.stream_id))
        return None

    async def _send_cluster_analytics(self) -> None:
        """Each node sends the cluster's figures to its own subscribers (local=True)."""
        hub = self.hub
        assert hub.cluster is not None
        watched = [s for s in hub.live.streams.values() if s.analytics_subscribers]
        try:
            # Queued together: one pipeline for every stream, not a round trip each.
            snapshots = await asyncio.gather(*(hub.cluster.snapshot(s.app_id, s.stream_id) for s in watched))
        except (ConnectionError, RedisError):
            return  # Redis is away: no figures this round rather than wrong ones
        for state, snapshot in zip(watched, snapshots, strict=True):
            room = analytics_room(state.app_id, state.stream_id)
            hub.nsp.emit("analytics:update", snapshot.as_payload(state.stream_id), to=room, local=True)

    async def _housekeeping(self) -> None:
        hub = self.hub
        hub.slow_mode.purge(MAX_SLOW_MODE_INTERVAL)
        hub.typing.purge(1.0)
        hub.live.forget_idle(hub.mono())
        # StoreUnavailable is already logged by the store; expired rows wait for the next pass.
        with contextlib.suppress(StoreUnavailable):
            await self.store.purge_expired()
