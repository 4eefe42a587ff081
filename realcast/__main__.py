"""Command line: ``realcast serve``, ``check-config`` and ``token`` (also ``python -m realcast``).

Layer: application entry point; imports realcast's modules and, when installed, uvloop.

``realcast serve`` prints one line ``realcast listening on http://HOST:PORT`` (``https://`` with
``--ssl-certfile``) once the port is bound (with ``--port 0`` that is how to learn the port),
then serves until SIGTERM/SIGINT and shuts down cleanly. Exit status: 0 after a clean shutdown,
2 for a configuration error or any failure to start (port in use, unusable data directory,
unknown host, unreachable Redis or database), always as one ``realcast: error: ...`` line.

``realcast check-config`` loads and validates what ``serve`` would, prints the effective
settings without secrets, and exits 0 (valid) or 2. ``realcast token`` only reads apps: for
the dev app it reads ``<data_dir>/dev-app.json`` and never creates it.

``realcast serve --workers N`` forks N processes sharing the port (see ``workers.py``); the
line is printed once all of them accept connections, and SIGTERM/SIGINT stop them all.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import importlib
import logging
import os
import shlex
import shutil
import socket
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from redis.exceptions import RedisError

from . import __version__
from .auth import APP_ROLES, mint_token
from .config import (
    DEV_APP_ID,
    CliOptions,
    DevApp,
    ServerConfig,
    describe_config,
    dev_mode_on,
    ensure_dev_app,
    load_config,
    load_dev_app,
    unknown_env_vars,
)
from .errors import ConfigError
from .logs import log_fields, setup_logging
from .tls import server_ssl_context
from .workers import check_workers, run_workers

__all__ = ["main"]

# Young-generation size before a cyclic-GC pass (CPython's default is 700). See _tune_gc.
GC_YOUNG_THRESHOLD = 20_000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realcast", description="RealCast real-time engine")
    parser.add_argument("--version", action="version", version=f"realcast {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="TOML configuration file (or REALCAST_CONFIG)")
        p.add_argument("--data-dir", type=Path, help="state directory (or REALCAST_DATA_DIR)")
        p.add_argument(
            "--dev",
            dest="dev_mode",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="add the development app (default: only when no app is configured)",
        )

    serve = commands.add_parser("serve", help="run the server")
    check = commands.add_parser(
        "check-config",
        help="validate the configuration serve would use and print it without secrets (exit 0 or 2)",
    )
    for p in (serve, check):
        common(p)
        server_flags(p)

    token = commands.add_parser("token", help="mint a JWT for trying the server")
    common(token)
    token.add_argument("--app", required=True, help="app id")
    token.add_argument("--user", required=True, help="user id (sub claim), 1-128 characters")
    token.add_argument("--name", help="display name (name claim), 1-64 characters; default: the user id")
    token.add_argument(
        "--role",
        action="append",
        default=[],
        choices=sorted(APP_ROLES),
        help="app-wide role (roles claim); repeat for several",
    )
    token.add_argument(
        "--moderator-of",
        action="append",
        default=[],
        metavar="STREAM",
        help="stream this user moderates (moderator_of claim); repeatable",
    )
    token.add_argument(
        "--broadcaster-of",
        action="append",
        default=[],
        metavar="STREAM",
        help="stream this user broadcasts, which gives it the broadcaster's rights there "
        "(broadcaster_of claim); repeatable",
    )
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.add_argument("--private-key", type=Path, help="PEM private key, for RS*/PS*/ES* apps")
    return parser


def server_flags(serve: argparse.ArgumentParser) -> None:
    """The flags of ``serve`` (and ``check-config``, which checks what they would give)."""
    serve.add_argument("--host", help="address to listen on (or REALCAST_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (or REALCAST_PORT; default 8080)")
    serve.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="least severe log level shown (or REALCAST_LOG_LEVEL; default INFO; DEBUG adds connections)",
    )
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        type=str.lower,
        help="log lines as text or as one JSON object per line (or REALCAST_LOG_FORMAT; default text)",
    )
    serve.add_argument(
        "--ssl-certfile",
        type=Path,
        help="serve https/wss directly: PEM certificate chain (or REALCAST_SSL_CERTFILE)",
    )
    serve.add_argument(
        "--ssl-keyfile",
        type=Path,
        help="unencrypted PEM private key of --ssl-certfile (or REALCAST_SSL_KEYFILE; "
        "default: the key is in the certfile)",
    )
    serve.add_argument(
        "--metrics",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve Prometheus metrics at GET /metrics (or REALCAST_METRICS; default on). "
        "Set metrics_token (REALCAST_METRICS_TOKEN or the file) to require a bearer token",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        help="serve /metrics on this port only, not on --port (or REALCAST_METRICS_PORT)",
    )
    serve.add_argument("--metrics-host", help="address of --metrics-port (or REALCAST_METRICS_HOST; default: --host)")
    serve.add_argument("--redis-url", help="cluster: Redis for messages and live state (or REALCAST_REDIS_URL)")
    serve.add_argument(
        "--database-url", help="cluster: postgresql://... for moderation state (or REALCAST_DATABASE_URL)"
    )
    serve.add_argument("--node-id", help="this process's name in the cluster (or REALCAST_NODE_ID)")
    serve.add_argument(
        "--workers",
        type=int,
        help="processes serving this port with SO_REUSEPORT, named <node-id>-w1..wN (or REALCAST_WORKERS; "
        "default 1). N > 1 needs --redis-url and --database-url. The kernel spreads TCP connections, "
        "not sessions, over the workers: only WebSocket-only clients work with --workers. For "
        "long-polling (and polling-then-upgrade) clients run one node per port behind the balancer "
        "of deploy/ instead, which routes each request to its session's node",
    )


def _load(args: argparse.Namespace) -> ServerConfig:
    cli = CliOptions(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        config=args.config,
        data_dir=args.data_dir,
        dev_mode=args.dev_mode,
        log_level=getattr(args, "log_level", None),
        log_format=getattr(args, "log_format", None),
        redis_url=getattr(args, "redis_url", None),
        database_url=getattr(args, "database_url", None),
        node_id=getattr(args, "node_id", None),
        workers=getattr(args, "workers", None),
        ssl_certfile=getattr(args, "ssl_certfile", None),
        ssl_keyfile=getattr(args, "ssl_keyfile", None),
        metrics=getattr(args, "metrics", None),
        metrics_host=getattr(args, "metrics_host", None),
        metrics_port=getattr(args, "metrics_port", None),
    )
    return load_config(cli)


def _uses_data_dir(config: ServerConfig) -> bool:
    """SQLite moderation state and the dev app live in the data directory."""
    return config.database_url is None or dev_mode_on(config)


def _check_data_dir(path: Path) -> None:
    """Refuse a data directory that is a file, cannot be created or cannot be written."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"data directory {path} is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create data directory {path}: {exc.strerror}") from None
    try:
        # Really write: permission bits do not tell (root, read-only mounts, ACLs).
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"data directory {path} is not writable: {exc.strerror}") from None


def _check_host(config: ServerConfig) -> None:
    try:
        socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ConfigError(f"host {config.host!r} is not an address or known host name ({reason})") from None


def _command_prefix() -> str:
    """How to run realcast again the way it was started, as a shell would need it typed."""
    argv0 = sys.argv[0] if sys.argv else ""
    if not argv0 or argv0.endswith("__main__.py") or argv0 == "-c":
        return f"{shlex.quote(sys.executable)} -m realcast"
    on_path = shutil.which("realcast")
    if on_path is not None and os.path.samefile(on_path, argv0):
        return "realcast"
    return shlex.quote(argv0)


def _dev_banner(config: ServerConfig, dev: DevApp, out: Callable[[str], None]) -> None:
    data_dir = shlex.quote(str(config.data_dir.absolute()))
    out(f"realcast: dev mode: app {dev.app.app_id!r} ({'created' if dev.created else 'loaded'}: {dev.path})")
    out(f"realcast:   backend API key: {dev.app.api_key}")
    out("realcast:   get a token with:")
    hint = f"{_command_prefix()} token --data-dir {data_dir} --app {dev.app.app_id} --user alice --name Alice"
    out(f"realcast:     {hint}")
    out("realcast:   connect with auth {token, app_id: '" + dev.app.app_id + "'}")


def _log_configuration(config: ServerConfig) -> None:
    """The configuration summary at INFO: the lines of check-config, so never a secret."""
    log_fields(
        logging.getLogger("realcast"),
        logging.INFO,
        "configuration",
        event="configuration",
        version=__version__,
        settings=describe_config(config),
    )


def _warn_unknown_env() -> None:
    for warning in unknown_env_vars():
        print(f"realcast: warning: {warning}", file=sys.stderr, flush=True)


def _check_tls(config: ServerConfig) -> None:
    if config.ssl_certfile is not None:
        server_ssl_context(config.ssl_certfile, config.ssl_keyfile)


def _serve(args: argparse.Namespace) -> int:
    config = _load(args)
    check_workers(config)
    _check_host(config)
    _check_tls(config)  # read now, so that a bad file is an error before anything starts
    if _uses_data_dir(config):
        _check_data_dir(config.data_dir)
    config, dev = ensure_dev_app(config)
    setup_logging(config.log_level, config.log_format)
    _log_configuration(config)

    def err(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if dev is not None:
        _dev_banner(config, dev, err)
    scheme = "https" if config.ssl_certfile is not None else "http"

    def listening(port: int) -> None:
        print(f"realcast listening on {scheme}://{config.host}:{port}", flush=True)

    # The server's modules are loaded (and the start-up heap frozen) before --workers forks,
    # so the workers share those pages instead of each importing its own copy.
    importlib.import_module(".app", __package__)
    _tune_gc()
    if config.workers > 1:
        return run_workers(config, _serve_node, listening)
    _serve_node(config, listening)
    return 0


def _serve_node(config: ServerConfig, on_listening: Callable[[int], None]) -> None:
    """Run one RealCast node until SIGTERM/SIGINT (the whole server, or one of --workers).

    A failure before the port is bound becomes a ConfigError (one line, exit status 2).
    """
    try:
        _run_node(config, on_listening)
    except ConfigError as exc:
        if config.workers <= 1:
            raise
        # A worker: say it here, once; the supervisor sees the status.
        print(f"realcast: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


def _run_node(config: ServerConfig, on_listening: Callable[[int], None]) -> None:
    from .app import RealcastApp  # imported here: `realcast token` needs no server

    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # optional: plain asyncio works everywhere
        pass
    listening = False

    def ready(port: int) -> None:
        nonlocal listening
        listening = True
        on_listening(port)

    try:
        app = RealcastApp(config)
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(app.run(ready))
    except ConfigError:
        raise
    except Exception as exc:
        if listening:
            raise
        raise ConfigError(_startup_failure(config, exc)) from exc


def _startup_failure(config: ServerConfig, exc: Exception) -> str:
    """One line saying why the server could not start."""
    where = f"{config.host}:{config.port}"
    redis_down = config.redis_url is not None and isinstance(exc, ConnectionError | TimeoutError)
    if isinstance(exc, RedisError) or redis_down:
        return f"cannot reach Redis at redis_url: {exc}"
    if isinstance(exc, sqlite3.Error):
        db = config.data_dir / "realcast.sqlite3"
        return (
            f"cannot open the moderation database {db} in data directory {config.data_dir}: {exc} "
            "(check that this user may read and write it; if it is damaged, restore it from a backup "
            "or move it aside to start with no bans: RealCast never replaces it)"
        )
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: unknown host ({exc.strerror})"
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return f"cannot listen on {where}: the address is already in use (is another server running on it?)"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"cannot listen on {where}: {config.host} is not an address of this machine"
        if exc.errno == errno.EACCES and exc.filename is None:
            return f"cannot listen on {where}: permission denied (ports below 1024 need privileges)"
        if exc.filename is not None:
            return f"{exc.filename}: {exc.strerror}"
        return f"cannot start: {exc.strerror or exc}"
    return f"cannot start: {type(exc).__name__}: {exc}"


def _tune_gc() -> None:
    """Collect cycles rarely: a server's heap is mostly long-lived connection objects.

    With CPython's defaults a full collection walks every live object (tens of ms with
    thousands of clients) and connection churn sets one off every few thousand connects;
    a connect run spent 16% of the server's CPU in the collector. A connection leaves no
    reference cycles behind (the engine takes care of that), so there is little for the
    collector to find: freeze what start-up made, and pass over the young generation
    every 20,000 allocations instead of 700.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    check_workers(config)
    _check_tls(config)
    if config.host:
        _check_host(config)
    note = None
    if dev_mode_on(config):
        stored = load_dev_app(config)
        path = config.data_dir / "dev-app.json"
        note = f"dev app {DEV_APP_ID}: " + (
            f"stored in {path}" if stored is not None else f"will be created in {path} by realcast serve"
        )
    elif not config.apps:
        ensure_dev_app(config)  # raises: dev mode off and no app
    for line in describe_config(config, note):
        print(line)
    print("realcast: configuration is valid", file=sys.stderr)
    return 0


def _token(args: argparse.Namespace) -> int:
    config = _load(args)
    app = config.app(args.app)
    if app is None and args.app == DEV_APP_ID:
        dev = load_dev_app(config)  # read only: a token never creates the dev app
        if dev is None:
            data_dir = shlex.quote(str(config.data_dir.absolute()))
            raise ConfigError(
                f"no dev app in {config.data_dir}: start the server once to create it "
                f"({_command_prefix()} serve --data-dir {data_dir}), then run this again"
            )
        app = dev.app
    if app is None:
        known = ", ".join(a.app_id for a in config.apps) or "none"
        raise ConfigError(f"unknown app {args.app!r} (configured: {known})")
    private_key = None
    if args.private_key is not None:
        try:
            private_key = args.private_key.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {args.private_key}: {exc.strerror}") from None
    try:
        token = mint_token(
            app,
            args.user,
            username=args.name,
            roles=args.role,
            moderator_of=args.moderator_of,
            broadcaster_of=args.broadcaster_of,
            ttl=args.ttl,
            private_key=private_key,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(token)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``realcast`` console script."""
    args = _parser().parse_args(argv)
    _warn_unknown_env()
    commands = {"serve": _serve, "check-config": _check_config, "token": _token}
    try:
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"realcast: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
