"""Command line: ``realcast serve`` and ``realcast token`` (also ``python -m realcast``).

Layer: application entry point; imports realcast's modules and, when installed, uvloop.

``realcast serve`` prints one line ``realcast listening on http://HOST:PORT`` once the port is
bound (with ``--port 0`` that is how to learn the port), then serves until SIGTERM/SIGINT and
shuts down cleanly. Exit status: 0 after a clean shutdown, 2 for configuration errors.

``realcast serve --workers N`` forks N processes sharing the port (see ``workers.py``); the
line is printed once all of them accept connections, and SIGTERM/SIGINT stop them all.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .auth import APP_ROLES, mint_token
from .config import CliOptions, DevApp, ServerConfig, ensure_dev_app, load_config
from .errors import ConfigError
from .workers import check_workers, run_workers

__all__ = ["main"]

# Young-generation size before a cyclic-GC pass (CPython's default is 700). See _tune_gc.
GC_YOUNG_THRESHOLD = 20_000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realcast", description="RealCast real-time engine")
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
    common(serve)
    serve.add_argument("--host", help="address to listen on (or REALCAST_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (or REALCAST_PORT; default 8080)")
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper)
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

    token = commands.add_parser("token", help="mint a JWT for trying the server")
    common(token)
    token.add_argument("--app", required=True, help="app id")
    token.add_argument("--user", required=True, help="user id (sub)")
    token.add_argument("--name", help="display name (name claim)")
    token.add_argument("--role", action="append", default=[], choices=sorted(APP_ROLES), help="app-wide role")
    token.add_argument("--moderator-of", action="append", default=[], metavar="STREAM")
    token.add_argument("--broadcaster-of", action="append", default=[], metavar="STREAM")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.add_argument("--private-key", type=Path, help="PEM private key, for RS*/ES* apps")
    return parser


def _configure(args: argparse.Namespace) -> tuple[ServerConfig, DevApp | None]:
    cli = CliOptions(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        config=args.config,
        data_dir=args.data_dir,
        dev_mode=args.dev_mode,
        log_level=getattr(args, "log_level", None),
        redis_url=getattr(args, "redis_url", None),
        database_url=getattr(args, "database_url", None),
        node_id=getattr(args, "node_id", None),
        workers=getattr(args, "workers", None),
    )
    return ensure_dev_app(load_config(cli))


def _dev_banner(config: ServerConfig, dev: DevApp, out: Callable[[str], None]) -> None:
    data_dir = config.data_dir
    out(f"realcast: dev mode: app {dev.app.app_id!r} ({'created' if dev.created else 'loaded'}: {dev.path})")
    out(f"realcast:   backend API key: {dev.app.api_key}")
    out("realcast:   get a token with:")
    out(f"realcast:     realcast token --data-dir {data_dir} --app {dev.app.app_id} --user alice --name Alice")
    out("realcast:   connect with auth {token, app_id: '" + dev.app.app_id + "'}")


def _serve(args: argparse.Namespace) -> int:
    config, dev = _configure(args)
    check_workers(config)
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def err(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if dev is not None:
        _dev_banner(config, dev, err)

    def listening(port: int) -> None:
        print(f"realcast listening on http://{config.host}:{port}", flush=True)

    # The server's modules are loaded (and the start-up heap frozen) before --workers forks,
    # so the workers share those pages instead of each importing its own copy.
    importlib.import_module(".app", __package__)
    _tune_gc()
    if config.workers > 1:
        return run_workers(config, _serve_node, listening)
    _serve_node(config, listening)
    return 0


def _serve_node(config: ServerConfig, on_listening: Callable[[int], None]) -> None:
    """Run one RealCast node until SIGTERM/SIGINT (the whole server, or one of --workers)."""
    from .app import RealcastApp  # imported here: `realcast token` needs no server

    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # optional: plain asyncio works everywhere
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(RealcastApp(config).run(on_listening))


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


def _token(args: argparse.Namespace) -> int:
    config, _ = _configure(args)
    app = config.app(args.app)
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
    try:
        return _serve(args) if args.command == "serve" else _token(args)
    except ConfigError as exc:
        print(f"realcast: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
