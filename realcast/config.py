"""Settings of a realcast server: dataclasses, and loading them from file, environment and flags.

Layer: application (realcast); imports the standard library and ``keys.py``. This is the only
module that reads environment variables or configuration files.

Precedence, highest first: command-line flags > ``REALCAST_*`` environment variables > the TOML
file (``--config`` / ``REALCAST_CONFIG``) > built-in defaults. The TOML file looks like::

    [server]
    host = "0.0.0.0"
    port = 8080
    data_dir = "/var/lib/realcast"      # relative paths are relative to the file
    allowed_origins = "*"               # or a list of origins
    auth_timeout = 10                   # seconds to send `authenticate` after connecting
    analytics_interval = 5              # seconds between analytics:update emits
    presence_interval = 1               # viewer.joined/left: held and sent together at most this often
    presence_limit = 1000               # no viewer.joined/left while a stream has more viewers
    count_update_budget = 200           # viewer.count.update: a stream of N > 200 viewers gets one every N/200 s
    jwt_leeway = 5                      # seconds of clock skew tolerated on exp/nbf/iat
    dev_mode = false                    # see ensure_dev_app()
    redis_url = "redis://127.0.0.1:6379/0"      # cluster: messages and shared live state
    database_url = "postgresql://realcast@db/realcast"  # cluster: shared moderation state
    node_id = "n1"                      # this process in the cluster (default: random)
    workers = 1                         # processes on this port (see README)
    history_size = 50                   # chat messages shown on chat:join (1..1000)
    log_level = "INFO"                  # DEBUG adds connections and disconnections
    log_format = "text"                 # or "json": one object per line (see logs.py)
    ssl_certfile = "cert.pem"           # serve https/wss directly (PEM chain; relative to the file)
    ssl_keyfile = "key.pem"             # its private key (omit if the certfile holds it)
    header_timeout = 10                 # seconds for a request's line and headers to arrive
    body_timeout = 30                   # seconds for its body, once the headers are in
    keep_alive_timeout = 60             # an idle keep-alive connection closes after this long
    max_buffered_bytes = 1048576        # a client with more unsent bytes is cut off (slow consumer)
    max_total_buffered_bytes = 268435456  # process-wide: above it the largest backlogs are cut first
    metrics = true                      # Prometheus text at GET /metrics
    metrics_token = "at least 16 characters"    # scrapes must send Authorization: Bearer <it>
    metrics_port = 9090                 # serve /metrics only on this port (not on `port`)
    metrics_host = "10.0.0.5"           # ...and this address (default: host)

    [rate_limits]                       # defaults for every app (the seed's limits)
    chat_per_second = 5

    [apps.app_xyz789]
    jwt_algorithm = "HS256"             # pinned: tokens with any other alg are refused
    jwt_secret = "at least 32 bytes of secret......"
    # jwt_public_key = "-----BEGIN PUBLIC KEY-----..."  or  jwt_public_key_file = "app.pem"
    api_key = "backend API key, at least 16 characters"
    rate_limits = { chat_per_minute = 200 }

A single app can instead come from ``REALCAST_APP_ID``, ``REALCAST_JWT_SECRET`` (or
``REALCAST_JWT_PUBLIC_KEY`` / ``REALCAST_JWT_PUBLIC_KEY_FILE`` with ``REALCAST_JWT_ALGORITHM``)
and ``REALCAST_API_KEY``; it replaces a file app with the same id.

Error messages name the setting as the user wrote it: ``REALCAST_API_KEY is required``,
``[server].port must be in 0..65535``, ``--port must be ...``. ``REALCAST_*`` variables that
mean nothing here are reported by :func:`unknown_env_vars` (the CLI warns about them).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final, Literal

from .errors import ConfigError
from .keys import HMAC_ALGORITHMS, load_verification_key

__all__ = [
    "DEV_APP_ID",
    "AppConfig",
    "CliOptions",
    "DevApp",
    "RateLimits",
    "ServerConfig",
    "describe_config",
    "ensure_dev_app",
    "load_config",
    "load_dev_app",
    "unknown_env_vars",
]

APP_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Node ids name Engine.IO sessions ("<node>.<random>") so a balancer can route on them: no dots.
NODE_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
MIN_API_KEY_LENGTH: Final = 16
DEV_APP_ID: Final = "app_dev"
DEV_APP_FILE: Final = "dev-app.json"
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
_LOG_FORMATS: Final = ("text", "json")  # logs.LOG_FORMATS (not imported: config stays import-light)
# Configurable limits are capped so a typo cannot turn a limit off or allocate huge windows.
_MAX_RATE: Final = 10_000

Origins = Literal["*"] | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per-connection event limits (the seed's "Rate Limiting" section by default)."""

    chat_per_second: int = 5
    chat_per_minute: int = 100
    reaction_per_second: int = 10
    reaction_per_minute: int = 300
    moderation_per_minute: int = 20

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if type(value) is not int or not 1 <= value <= _MAX_RATE:
                raise ConfigError(f"rate_limits.{f.name} must be an integer in 1..{_MAX_RATE}")


@dataclass(frozen=True, slots=True)
class AppConfig:
    """One tenant (the seed's ``app_id``): its JWT verification key and backend API key.

    ``jwt_key`` is the HMAC secret for HS* algorithms, or a PEM public key for RS*/PS*/ES*.
    """

    app_id: str
    jwt_algorithm: str
    jwt_key: str = field(repr=False)
    api_key: str = field(repr=False)
    rate_limits: RateLimits = field(default_factory=RateLimits)

    def __post_init__(self) -> None:
        if not isinstance(self.app_id, str) or not APP_ID_RE.fullmatch(self.app_id):
            raise ConfigError(f"app id {self.app_id!r} must be 1-64 characters of A-Z a-z 0-9 _ -")
        if not isinstance(self.api_key, str) or len(self.api_key) < MIN_API_KEY_LENGTH:
            raise ConfigError(f"app {self.app_id}: api_key must be at least {MIN_API_KEY_LENGTH} characters")
        try:
            load_verification_key(self.jwt_algorithm, self.jwt_key)
        except ConfigError as exc:
            raise ConfigError(f"app {self.app_id}: {exc}") from None


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``realcast serve`` needs. Durations are seconds."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("realcast-data")
    apps: tuple[AppConfig, ...] = ()
    # None: dev mode switches itself on when no app is configured (first run).
    dev_mode: bool | None = None
    # Tokens travel in the Socket.IO auth payload, never in cookies, so a foreign page cannot
    # ride on a user's credentials: any origin is safe by default (see the README (The RealCast API)).
    allowed_origins: Origins = "*"
    auth_timeout: float = 10.0
    analytics_interval: float = 5.0
    presence_interval: float = 1.0
    presence_limit: int = 1000
    # viewer.count.update (and batched viewer.joined/left) deliveries per second a stream may cost:
    # a stream of N viewers gets them every max(1, N / budget) seconds, at most 10 (live.update_interval).
    # Each update is one socket write per viewer; 0: every second whatever the size.
    count_update_budget: int = 200
    jwt_leeway: float = 5.0
    history_size: int = 50
    log_level: str = "INFO"
    log_format: str = "text"
    # Cluster (docs: README "Running several processes"). redis_url: messages and short-lived
    # shared state; database_url: "postgresql://..." for shared moderation state (else SQLite in
    # data_dir, one process only); node_id: this process's name in the cluster (default: random).
    redis_url: str | None = None
    database_url: str | None = None
    node_id: str | None = None
    workers: int = 1
    # Serve https/wss directly (stdlib ssl): a PEM certificate chain and its private key (None:
    # the key is in the certfile). Files are read at start-up (see tls.py).
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    # Against slow senders and slow readers (engineio_min's Server arguments of the same names).
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 60.0
    max_buffered_bytes: int = 1024 * 1024
    max_total_buffered_bytes: int = 256 * 1024 * 1024
    # Prometheus metrics (metrics.py): on/off, a bearer token scrapes must carry (None: none), and a
    # separate listener (metrics_port; metrics_host defaults to host) instead of the server's port.
    metrics: bool = True
    metrics_token: str | None = field(default=None, repr=False)
    metrics_host: str | None = None
    metrics_port: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.data_dir, Path):
            object.__setattr__(self, "data_dir", Path(self.data_dir))  # frozen: normalise once
        for name in ("ssl_certfile", "ssl_keyfile"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ConfigError("ssl_keyfile needs ssl_certfile (the certificate it belongs to)")
        if not isinstance(self.host, str) or not self.host.strip() or self.host != self.host.strip():
            raise ConfigError(f"host must be a host name or address, got {self.host!r}")
        ids = [a.app_id for a in self.apps]
        if len(ids) != len(set(ids)):
            raise ConfigError("app ids must be unique")
        if not 0 <= self.port <= 65535:
            raise ConfigError("port must be in 0..65535")
        _check_range("auth_timeout", self.auth_timeout, 0.1, 3600)
        _check_range("analytics_interval", self.analytics_interval, 0.1, 3600)
        _check_range("presence_interval", self.presence_interval, 0, 60)
        _check_range("presence_limit", self.presence_limit, 0, 10_000_000)
        _check_range("count_update_budget", self.count_update_budget, 0, 10_000_000)
        _check_range("jwt_leeway", self.jwt_leeway, 0, 300)
        _check_range("history_size", self.history_size, 1, 1000)
        if self.node_id is not None and not NODE_ID_RE.fullmatch(self.node_id):
            raise ConfigError("node_id must be 1-32 characters of a-z A-Z 0-9 _ -")
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("redis_url must start with redis://, rediss:// or unix://")
        if self.database_url is not None and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("database_url must start with postgresql:// (SQLite needs no URL: it lives in data_dir)")
        _check_range("workers", self.workers, 1, 256)
        _check_range("header_timeout", self.header_timeout, 0.1, 3600)
        _check_range("body_timeout", self.body_timeout, 0.1, 3600)
        _check_range("keep_alive_timeout", self.keep_alive_timeout, 0.1, 86400)
        _check_range("max_buffered_bytes", self.max_buffered_bytes, 64 * 1024, 1 << 30)
        _check_range("max_total_buffered_bytes", self.max_total_buffered_bytes, self.max_buffered_bytes, 1 << 40)
        _check_metrics(self)
        if self.log_level not in _LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {', '.join(_LOG_LEVELS)}")
        if self.log_format not in _LOG_FORMATS:
            raise ConfigError(f"log_format must be one of {', '.join(_LOG_FORMATS)}")

    def app(self, app_id: str) -> AppConfig | None:
        """The app with this id, or None."""
        for app in self.apps:
            if app.app_id == app_id:
                return app
        return None


def _check_metrics(config: ServerConfig) -> None:
    if config.metrics_token is not None and len(config.metrics_token) < MIN_API_KEY_LENGTH:
        raise ConfigError(f"metrics_token must be at least {MIN_API_KEY_LENGTH} characters")
    if config.metrics_host is not None and (not config.metrics_host.strip() or config.metrics_host.strip() !=
                                            config.metrics_host):  # fmt: skip
        raise ConfigError(f"metrics_host must be a host name or address, got {config.metrics_host!r}")
    if config.metrics_port is not None:
        if not 0 <= config.metrics_port <= 65535:
            raise ConfigError("metrics_port must be in 0..65535")
        same_host = (config.metrics_host or config.host) == config.host
        if same_host and config.metrics_port == config.port != 0:
            raise ConfigError("metrics_port must differ from port (leave it unset to serve /metrics on port)")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high or math.isnan(value):
        raise ConfigError(f"{name} must be in {low}..{high}")


@dataclass(frozen=True, slots=True)
class CliOptions:
    """Flags of ``realcast serve``; None means "not given"."""

    host: str | None = None
    port: int | None = None
    config: Path | None = None
    data_dir: Path | None = None
    dev_mode: bool | None = None
    log_level: str | None = None
    log_format: str | None = None
    redis_url: str | None = None
    database_url: str | None = None
    node_id: str | None = None
    workers: int | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    metrics: bool | None = None
    metrics_host: str | None = None
    metrics_port: int | None = None


# --- value parsing (shared by the file and the environment) -----------------------------------


def _as_int(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{name} must be an integer, got {value!r}")


def _as_float(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{name} must be a number, got {value!r}")


def _as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _as_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


def _as_origins(name: str, value: object) -> Origins:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
        if items == ["*"]:
            return "*"
        value = items
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        if "*" in value:
            return "*"
        return tuple(value)
    raise ConfigError(f'{name} must be "*" or a list of origins')


_Parser = Callable[[str, object], Any]
# setting -> (parser, environment variable)
_SERVER_SETTINGS: Final[dict[str, tuple[_Parser, str]]] = {
    "host": (_as_str, "REALCAST_HOST"),
    "port": (_as_int, "REALCAST_PORT"),
    "data_dir": (_as_str, "REALCAST_DATA_DIR"),
    "dev_mode": (_as_bool, "REALCAST_DEV"),
    "allowed_origins": (_as_origins, "REALCAST_ALLOWED_ORIGINS"),
    "auth_timeout": (_as_float, "REALCAST_AUTH_TIMEOUT"),
    "analytics_interval": (_as_float, "REALCAST_ANALYTICS_INTERVAL"),
    "presence_interval": (_as_float, "REALCAST_PRESENCE_INTERVAL"),
    "presence_limit": (_as_int, "REALCAST_PRESENCE_LIMIT"),
    "count_update_budget": (_as_int, "REALCAST_COUNT_UPDATE_BUDGET"),
    "jwt_leeway": (_as_float, "REALCAST_JWT_LEEWAY"),
    "history_size": (_as_int, "REALCAST_HISTORY_SIZE"),
    "log_level": (lambda n, v: _as_str(n, v).upper(), "REALCAST_LOG_LEVEL"),
    "log_format": (lambda n, v: _as_str(n, v).lower(), "REALCAST_LOG_FORMAT"),
    "redis_url": (_as_str, "REALCAST_REDIS_URL"),
    "database_url": (_as_str, "REALCAST_DATABASE_URL"),
    "node_id": (_as_str, "REALCAST_NODE_ID"),
    "workers": (_as_int, "REALCAST_WORKERS"),
    "ssl_certfile": (_as_str, "REALCAST_SSL_CERTFILE"),
    "ssl_keyfile": (_as_str, "REALCAST_SSL_KEYFILE"),
    "header_timeout": (_as_float, "REALCAST_HEADER_TIMEOUT"),
    "body_timeout": (_as_float, "REALCAST_BODY_TIMEOUT"),
    "keep_alive_timeout": (_as_float, "REALCAST_KEEP_ALIVE_TIMEOUT"),
    "max_buffered_bytes": (_as_int, "REALCAST_MAX_BUFFERED_BYTES"),
    "max_total_buffered_bytes": (_as_int, "REALCAST_MAX_TOTAL_BUFFERED_BYTES"),
    "metrics": (_as_bool, "REALCAST_METRICS"),
    "metrics_token": (_as_str, "REALCAST_METRICS_TOKEN"),
    "metrics_host": (_as_str, "REALCAST_METRICS_HOST"),
    "metrics_port": (_as_int, "REALCAST_METRICS_PORT"),
}
# Settings that are paths: relative to the configuration file when they come from it.
_PATH_SETTINGS: Final = ("data_dir", "ssl_certfile", "ssl_keyfile")
# Flags of `realcast serve` that name a ServerConfig setting (the rest have no flag).
_FLAG_SETTINGS: Final = (
    "host", "port", "data_dir", "dev_mode", "log_level", "log_format", "redis_url", "database_url", "node_id",
    "workers", "ssl_certfile", "ssl_keyfile", "metrics", "metrics_host", "metrics_port",
)
_APP_ENV_VARS: Final = (
    "REALCAST_APP_ID",
    "REALCAST_JWT_ALGORITHM",
    "REALCAST_JWT_SECRET",
    "REALCAST_JWT_PUBLIC_KEY",
    "REALCAST_JWT_PUBLIC_KEY_FILE",
    "REALCAST_API_KEY",
)
_RATE_ENV_PREFIX: Final = "REALCAST_RATE_"  # e.g. REALCAST_RATE_CHAT_PER_SECOND
_RATE_FIELDS: Final = tuple(f.name for f in fields(RateLimits))
_APP_KEYS: Final = frozenset(
    {"jwt_algorithm", "jwt_secret", "jwt_public_key", "jwt_public_key_file", "api_key", "rate_limits"}
)


def _rate_limits(where: str, table: object, base: RateLimits) -> RateLimits:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - set(_RATE_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    return replace(base, **{k: _as_int(f"{where}.{k}", v) for k, v in table.items()})


def _read_key_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from None


def _file_names(where: str) -> Callable[[str], str]:
    """How an app setting is named in the file: ``[apps.x].api_key``."""
    return lambda key: f"{where}.{key}"


def _env_name(key: str) -> str:
    """How an app setting is named in the environment: ``REALCAST_API_KEY``."""
    return "REALCAST_" + key.upper()


def _app_from_parts(
    app_id: str,
    name: Callable[[str], str],
    *,
    algorithm: str | None,
    secret: str | None,
    public_key: str | None,
    public_key_file: Path | None,
    api_key: str | None,
    rate_limits: RateLimits,
) -> AppConfig:
    """One app; ``name(setting)`` says what the user calls a setting, for the error messages."""
    given = [x for x in (secret, public_key, public_key_file) if x is not None]
    if len(given) != 1:
        choices = ", ".join(name(k) for k in ("jwt_secret", "jwt_public_key", "jwt_public_key_file"))
        raise ConfigError(f"app {app_id}: give exactly one of {choices}")
    if api_key is None:
        raise ConfigError(f"{name('api_key')} is required")
    if len(api_key) < MIN_API_KEY_LENGTH:
        raise ConfigError(f"{name('api_key')} must be at least {MIN_API_KEY_LENGTH} characters")
    if secret is None and algorithm is not None and algorithm in HMAC_ALGORITHMS:
        raise ConfigError(f"{name('jwt_algorithm')}: {algorithm} takes {name('jwt_secret')}, not a public key")
    if public_key is None and secret is None:
        assert public_key_file is not None  # exactly one of the three was given
        public_key = _read_key_file(public_key_file)
    key_name = name("jwt_secret") if secret is not None else name("jwt_public_key")
    key = secret if secret is not None else public_key
    assert key is not None
    default_algorithm = "HS256" if secret is not None else "RS256"
    try:
        load_verification_key(algorithm or default_algorithm, key)
    except ConfigError as exc:
        raise ConfigError(f"{key_name}: {exc}") from None
    return AppConfig(app_id, algorithm or default_algorithm, key, api_key, rate_limits)


def _apps_from_file(raw: object, base_dir: Path, defaults: RateLimits) -> dict[str, AppConfig]:
    if not isinstance(raw, dict):
        raise ConfigError("[apps] must be a table of [apps.<app_id>] tables")
    apps: dict[str, AppConfig] = {}
    for app_id, table in raw.items():
        where = f"[apps.{app_id}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(table) - _APP_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        key_file = table.get("jwt_public_key_file")
        apps[app_id] = _app_from_parts(
            app_id,
            _file_names(where),
            algorithm=_opt_str(where, table, "jwt_algorithm"),
            secret=_opt_str(where, table, "jwt_secret"),
            public_key=_opt_str(where, table, "jwt_public_key"),
            public_key_file=None if key_file is None else base_dir / _as_str(f"{where}.jwt_public_key_file", key_file),
            api_key=_opt_str(where, table, "api_key"),
            rate_limits=_rate_limits(f"{where}.rate_limits", table.get("rate_limits", {}), defaults),
        )
    return apps


def _opt_str(where: str, table: Mapping[str, object], key: str) -> str | None:
    value = table.get(key)
    return None if value is None else _as_str(f"{where}.{key}", value)


def _app_from_env(env: Mapping[str, str], defaults: RateLimits) -> AppConfig | None:
    app_id = env.get("REALCAST_APP_ID")
    if not app_id:
        stray = [v for v in _APP_ENV_VARS[1:] if env.get(v)]
        if stray:
            raise ConfigError(f"{', '.join(stray)} given without REALCAST_APP_ID")
        return None
    public_key = env.get("REALCAST_JWT_PUBLIC_KEY")
    if public_key is not None and "\\n" in public_key and "\n" not in public_key:
        public_key = public_key.replace("\\n", "\n")  # PEM squeezed onto one line, as in .env files
    key_file = env.get("REALCAST_JWT_PUBLIC_KEY_FILE")
    if not APP_ID_RE.fullmatch(app_id):
        raise ConfigError(f"REALCAST_APP_ID {app_id!r} must be 1-64 characters of A-Z a-z 0-9 _ -")
    return _app_from_parts(
        app_id,
        _env_name,
        algorithm=env.get("REALCAST_JWT_ALGORITHM") or None,
        secret=env.get("REALCAST_JWT_SECRET") or None,
        public_key=public_key or None,
        public_key_file=Path(key_file) if key_file else None,
        api_key=env.get("REALCAST_API_KEY") or None,
        rate_limits=defaults,
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def load_config(cli: CliOptions | None = None, env: Mapping[str, str] | None = None) -> ServerConfig:
    """Build the server configuration from flags, environment and file.

    Args:
        cli: parsed command-line flags (None: no flags).
        env: the environment (``os.environ`` when None).

    Raises:
        ConfigError: the message names the offending file, table, variable or flag.
    """
    cli = cli or CliOptions()
    env = os.environ if env is None else env
    config_path = cli.config or (Path(env["REALCAST_CONFIG"]) if env.get("REALCAST_CONFIG") else None)
    data: dict[str, Any] = _read_toml(config_path) if config_path is not None else {}
    base_dir = config_path.parent if config_path is not None else Path.cwd()
    unknown = set(data) - {"server", "apps", "rate_limits"}
    if unknown:
        raise ConfigError(f"config file: unknown table(s) {', '.join(sorted(unknown))}")

    settings: dict[str, Any] = {}
    # setting -> how the user wrote it (for error messages): "[server].port", "REALCAST_PORT", "--port"
    sources: dict[str, str] = {}
    server_table = data.get("server", {})
    if not isinstance(server_table, dict):
        raise ConfigError("[server] must be a table")
    for key, value in server_table.items():
        if key not in _SERVER_SETTINGS:
            close = difflib.get_close_matches(key, _SERVER_SETTINGS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"[server]: unknown setting {key!r}{hint}")
        settings[key] = _SERVER_SETTINGS[key][0](f"[server].{key}", value)
        sources[key] = f"[server].{key}"
    for key in _PATH_SETTINGS:
        if key in settings:
            settings[key] = base_dir / settings[key]
    for key, (parse, var) in _SERVER_SETTINGS.items():
        if env.get(var):
            settings[key] = parse(var, env[var])
            sources[key] = var
    for key in _FLAG_SETTINGS:
        value = getattr(cli, key)
        if value is not None:
            settings[key] = value
            sources[key] = "--" + key.replace("_", "-")
    for key in _PATH_SETTINGS:
        if key in settings:
            settings[key] = Path(settings[key])

    defaults = _rate_limits("[rate_limits]", data.get("rate_limits", {}), RateLimits())
    for name in _RATE_FIELDS:
        var = _RATE_ENV_PREFIX + name.upper()
        if env.get(var):
            defaults = replace(defaults, **{name: _as_int(var, env[var])})
            try:
                RateLimits(**{name: getattr(defaults, name)})
            except ConfigError:
                raise ConfigError(f"{var} must be an integer in 1..{_MAX_RATE}") from None
    apps = _apps_from_file(data.get("apps", {}), base_dir, defaults)
    env_app = _app_from_env(env, defaults)
    if env_app is not None:
        apps[env_app.app_id] = env_app
    try:
        return ServerConfig(apps=tuple(apps.values()), **settings)
    except ConfigError as exc:
        raise _named(exc, sources) from None


def _named(exc: ConfigError, sources: Mapping[str, str]) -> ConfigError:
    """The error with its setting called what the user called it (``REALCAST_PORT must be ...``)."""
    message = str(exc)
    setting = message.split(" ", 1)[0]
    if setting in sources:
        return ConfigError(sources[setting] + message[len(setting) :])
    return exc


def unknown_env_vars(env: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each ``REALCAST_*`` variable that no setting reads (a typo is otherwise silent)."""
    env = os.environ if env is None else env
    known = {var for _, var in _SERVER_SETTINGS.values()} | set(_APP_ENV_VARS) | {"REALCAST_CONFIG"}
    known |= {_RATE_ENV_PREFIX + name.upper() for name in _RATE_FIELDS}
    warnings = []
    for var in sorted(v for v in env if v.startswith("REALCAST_") and v not in known):
        close = difflib.get_close_matches(var, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"unknown environment variable {var} is ignored{hint}")
    return warnings


# --- dev mode ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DevApp:
    """The generated development app, and whether this run created it."""

    app: AppConfig
    path: Path
    created: bool


def dev_mode_on(config: ServerConfig) -> bool:
    """Whether ``serve`` adds the development app (explicitly, or because no app is configured)."""
    return config.dev_mode is True or (config.dev_mode is None and not config.apps)


def load_dev_app(config: ServerConfig) -> DevApp | None:
    """The development app stored in ``<data_dir>/dev-app.json``, or None if there is none yet.

    Never creates anything (``realcast token`` and ``check-config`` use it).

    Raises:
        ConfigError: the stored file is corrupt or unreadable.
    """
    path = config.data_dir / DEV_APP_FILE
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        app = AppConfig(DEV_APP_ID, "HS256", stored["jwt_secret"], stored["api_key"])
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
        raise ConfigError(f"dev app file {path} is unreadable ({exc}); delete it to regenerate") from None
    return DevApp(app, path, created=False)


def ensure_dev_app(config: ServerConfig) -> tuple[ServerConfig, DevApp | None]:
    """Add the development app when dev mode is on (or when no app is configured at all).

    The dev app's HS256 secret and API key are generated once and kept in
    ``<data_dir>/dev-app.json`` (mode 0600), so tokens minted for it survive restarts.

    Raises:
        ConfigError: dev mode is off and no app is configured, or the stored file is corrupt.
    """
    if config.dev_mode is False or (config.dev_mode is None and config.apps):
        if not config.apps:
            raise ConfigError("no app configured (set REALCAST_APP_ID... or [apps.*], or enable dev mode)")
        return config, None
    if config.app(DEV_APP_ID) is not None:
        return config, None
    path = config.data_dir / DEV_APP_FILE
    created = False
    stored = load_dev_app(config)
    if stored is not None:
        app = stored.app
    else:
        app = AppConfig(DEV_APP_ID, "HS256", secrets.token_urlsafe(48), "rk_dev_" + secrets.token_urlsafe(24))
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"app_id": DEV_APP_ID, "jwt_secret": app.jwt_key, "api_key": app.api_key}, f, indent=2)
        os.replace(tmp, path)
        created = True
    return replace(config, apps=(*config.apps, app)), DevApp(app, path, created)


# --- check-config -----------------------------------------------------------------------------


def _without_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (check-config output may be pasted anywhere)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def describe_config(config: ServerConfig, dev_note: str | None = None) -> list[str]:
    """The effective settings as ``name = value`` lines, without secrets (``realcast check-config``).

    Args:
        dev_note: what happens to the development app, shown after the configured apps.
    """
    lines = []
    for f in fields(ServerConfig):
        if f.name == "apps":
            continue
        value = getattr(config, f.name)
        if f.name == "metrics_token" and value is not None:
            value = "(set)"
        if isinstance(value, str) and f.name in ("redis_url", "database_url"):
            value = _without_password(value)
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, tuple):
            value = list(value)
        lines.append(f"{f.name} = {json.dumps(value)}")
    for app in config.apps:
        key_kind = "secret" if app.jwt_algorithm in HMAC_ALGORITHMS else "public key"
        lines.append(
            f"app {app.app_id}: jwt_algorithm = {app.jwt_algorithm}, {key_kind} set, "
            f"api_key set ({len(app.api_key)} characters)"
        )
        limits = ", ".join(f"{f.name} = {getattr(app.rate_limits, f.name)}" for f in fields(RateLimits))
        lines.append(f"app {app.app_id}: rate_limits: {limits}")
    if dev_note is not None:
        lines.append(dev_note)
    return lines
