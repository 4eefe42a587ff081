"""``realcast serve --workers N``: N forked processes serving one port with SO_REUSEPORT.

Layer: application entry point (used by ``__main__``); imports the standard library and
``config``.

The parent loads the configuration once, forks N workers and then only supervises: it tells
the world the port is ready once every worker accepts connections, forwards SIGTERM/SIGINT to
the workers, and exits when they have all exited (0 when they all exited cleanly, 1 otherwise).
A worker that dies on its own takes the others down with it (SIGTERM), so a supervisor such as
systemd sees one failure and restarts the whole set, instead of a half-sized server.

Each worker is a full RealCast node named ``<node_id>-w<k>`` (or ``<host>-w<k>`` without a
node id), so its Engine.IO sids start with that name. The kernel spreads new TCP connections
over the workers: a long-polling client's next request, or its upgrade, may land on another
worker than the one holding its session, and a balancer in front cannot help (it sees one
address). So --workers serves WebSocket-only clients; for polling clients run one node per port
behind the balancer of ``deploy/`` (see deploy/README.md). A WebSocket is one connection, held
by one worker from its handshake on.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import FrameType
from typing import Final

from .config import NODE_ID_RE, ServerConfig
from .errors import ConfigError

__all__ = ["check_workers", "run_workers", "worker_node_ids"]

# Seconds every worker has to bind the port after the fork (imports are done before it).
START_TIMEOUT: Final = 30.0
NODE_ID_MAX: Final = 32

Worker = Callable[[ServerConfig, Callable[[int], None]], None]


def worker_node_ids(config: ServerConfig) -> list[str]:
    """The node id of each worker: ``<base>-w1`` .. ``<base>-wN``."""
    base = config.node_id or _host_node_id(NODE_ID_MAX - len(f"-w{config.workers}"))
    return [f"{base}-w{k}" for k in range(1, config.workers + 1)]


def check_workers(config: ServerConfig) -> None:
    """Refuse a worker set that cannot work (ConfigError, exit status 2)."""
    if config.workers <= 1:
        return
    if config.redis_url is None or config.database_url is None:
        raise ConfigError(
            f"--workers {config.workers} needs redis_url and database_url (postgresql://...): the workers "
            "are separate processes and share chat, viewers and moderation state only through them"
        )
    for node_id in worker_node_ids(config):
        if not NODE_ID_RE.fullmatch(node_id):
            room = NODE_ID_MAX - len(f"-w{config.workers}")
            raise ConfigError(f"node_id is too long for --workers {config.workers}: at most {room} characters")
    if config.metrics_port:  # worker k serves /metrics on metrics_port + k - 1 (see run_workers)
        last = config.metrics_port + config.workers - 1
        same_host = (config.metrics_host or config.host) == config.host
        if last > 65535 or (same_host and config.metrics_port <= config.port <= last):
            raise ConfigError(
                f"metrics_port: --workers {config.workers} serve /metrics on ports {config.metrics_port}..{last}, "
                f"which must be at most 65535 and not include port {config.port}"
            )


def _host_node_id(max_length: int) -> str:
    """This machine's short host name, cut to what a node id allows ("node" if nothing is left)."""
    short = socket.gethostname().split(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]", "-", short)[:max_length] or "node"


def run_workers(config: ServerConfig, worker: Worker, on_listening: Callable[[int], None]) -> int:
    """Fork ``config.workers`` workers running ``worker``; supervise them; the exit status.

    ``worker(config, ready)`` serves until SIGTERM/SIGINT and calls ``ready(port)`` once it
    accepts connections; ``on_listening(port)`` is called once every worker has.
    """
    check_workers(config)
    context = multiprocessing.get_context("fork")  # the parent has no thread and no event loop yet
    # Port 0 means "any free port": pick it here, the same for all, and hold it (bound with
    # SO_REUSEPORT, never listening, so it takes no connection) until the workers have it.
    reservation, port = _reserve_port(config.host, config.port)
    ready_reader, ready_writer = context.Pipe(duplex=False)
    processes = []
    with reservation:
        for k, node_id in enumerate(worker_node_ids(config)):
            # Each worker's metrics come from that worker alone: with metrics_port P, worker k serves
            # them on P + k - 1 (on the shared port a scrape would reach whichever worker the kernel picks).
            metrics_port = None if config.metrics_port is None else config.metrics_port and config.metrics_port + k
            node_config = replace(config, node_id=node_id, port=port, metrics_port=metrics_port)
            process = context.Process(
                target=_worker_main,
                args=(worker, node_config, ready_writer, [reservation, ready_reader]),
                name=node_id,
                daemon=False,
            )
            process.start()
            processes.append(process)
        supervisor = _Supervisor(processes)
        supervisor.install_signal_handlers()
        if not supervisor.wait_ready(ready_reader, len(processes)):
            # Stopped by SIGTERM/SIGINT during start-up is a clean stop; anything else failed.
            return supervisor.stop_all_and_wait(failed=not supervisor.stopping)
    on_listening(port)
    return supervisor.wait()


def _reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    reservation = socket.socket(family, kind, proto)
    try:
        reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reservation.bind(address)
    except OSError as exc:
        reservation.close()
        raise ConfigError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    return reservation, int(reservation.getsockname()[1])


def _worker_main(
    worker: Worker,
    config: ServerConfig,
    ready_writer: multiprocessing.connection.Connection,
    parent_only: list[socket.socket | multiprocessing.connection.Connection],
) -> None:
    for inherited in parent_only:  # the fork copied them; only the parent uses them
        inherited.close()

    def ready(port: int) -> None:
        ready_writer.send(config.node_id)
        ready_writer.close()

    worker(config, ready)


class _Supervisor:
    """The parent's side: signal forwarding, start-up wait and reaping."""

    def __init__(self, processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
        self.processes = processes
        self.stopping = False
        self.startup_error = False  # a worker exited 2 during start-up (and said why)

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._forward)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        self._signal_all(signum)

    def _signal_all(self, signum: int) -> None:
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def wait_ready(self, ready_reader: multiprocessing.connection.Connection, count: int) -> bool:
        """True once ``count`` workers said they listen; False if one died first or time ran out."""
        pending = count
        sentinels = {process.sentinel: process for process in self.processes}
        deadline = time.monotonic() + START_TIMEOUT
        while pending and not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _error(f"workers did not start within {START_TIMEOUT:.0f} s")
                return False
            for item in multiprocessing.connection.wait([ready_reader, *sentinels], remaining):
                if item is ready_reader:
                    with contextlib.suppress(EOFError):
                        ready_reader.recv()
                        pending -= 1
                elif isinstance(item, int) and item in sentinels:
                    process = sentinels[item]
                    process.join(5)  # its exit status (the sentinel fires as it exits)
                    if process.exitcode == 2:
                        # A start-up error: the worker printed its one `realcast: error:` line.
                        self.startup_error = True
                    else:
                        _error(f"worker {process.name} exited during start-up (status {process.exitcode})")
                    return False
        return not pending

    def wait(self) -> int:
        """Reap every worker; a worker that exits on its own stops the rest. The exit status."""
        failed = False
        live = {process.sentinel: process for process in self.processes}
        while live:
            for sentinel in multiprocessing.connection.wait(list(live)):
                assert isinstance(sentinel, int)
                process = live.pop(sentinel)
                process.join()
                if process.exitcode != 0:
                    failed = True
                if not self.stopping:
                    _error(f"worker {process.name} exited (status {process.exitcode}); stopping the others")
                    failed = True
                    self.stopping = True
                    self._signal_all(signal.SIGTERM)
        return 1 if failed else 0

    def stop_all_and_wait(self, failed: bool) -> int:
        self.stopping = True
        self._signal_all(signal.SIGTERM)
        status = self.wait()
        if self.startup_error:
            return 2  # the same status as one process that cannot start
        return 1 if failed else status


def _error(message: str) -> None:
    print(f"realcast: error: {message}", file=sys.stderr, flush=True)
