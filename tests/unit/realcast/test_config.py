"""realcast.config: dataclass validation, TOML/env/flag precedence, dev mode."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from realcast.config import (
    DEV_APP_ID,
    AppConfig,
    CliOptions,
    RateLimits,
    ServerConfig,
    ensure_dev_app,
    load_config,
)
from realcast.errors import ConfigError

SECRET = "s" * 32
API_KEY = "k" * 16


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_seeds_rate_limits() -> None:
    limits = RateLimits()
    assert (limits.chat_per_second, limits.chat_per_minute) == (5, 100)
    assert (limits.reaction_per_second, limits.reaction_per_minute) == (10, 300)
    assert limits.moderation_per_minute == 20


@pytest.mark.parametrize("bad", [0, -1, 10_001, True, 2.5])
def test_rate_limits_are_bounded_integers(bad: object) -> None:
    with pytest.raises(ConfigError, match="chat_per_second"):
        RateLimits(chat_per_second=bad)  # type: ignore[arg-type]


def test_app_config_validates_id_api_key_and_secret() -> None:
    AppConfig("app_1", "HS256", SECRET, API_KEY)
    with pytest.raises(ConfigError, match="app id"):
        AppConfig("app/1", "HS256", SECRET, API_KEY)
    with pytest.raises(ConfigError, match="api_key"):
        AppConfig("app_1", "HS256", SECRET, "short")
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        AppConfig("app_1", "HS256", "short-secret", API_KEY)
    with pytest.raises(ConfigError, match="unsupported"):
        AppConfig("app_1", "none", SECRET, API_KEY)


def test_app_config_hides_secrets_in_repr() -> None:
    text = repr(AppConfig("app_1", "HS256", SECRET, API_KEY))
    assert SECRET not in text and API_KEY not in text


def test_asymmetric_apps_need_a_matching_public_key(rsa_pems: tuple[str, str], ec_pems: tuple[str, str]) -> None:
    rsa_private, rsa_public = rsa_pems
    _, ec_public = ec_pems
    AppConfig("a", "RS256", rsa_public, API_KEY)
    AppConfig("a", "ES256", ec_public, API_KEY)
    with pytest.raises(ConfigError, match="RSA"):
        AppConfig("a", "RS256", ec_public, API_KEY)
    with pytest.raises(ConfigError, match="curve"):
        AppConfig("a", "ES384", ec_public, API_KEY)
    with pytest.raises(ConfigError, match="PEM public key"):
        AppConfig("a", "RS256", rsa_private, API_KEY)  # a private key is not a verification key
    with pytest.raises(ConfigError, match="not a PEM key"):
        AppConfig("a", "HS256", rsa_public, API_KEY)  # the HS/RS confusion set-up


def test_empty_environment_gives_defaults() -> None:
    config = load_config(env={})
    assert config == ServerConfig()
    assert config.apps == ()


def test_environment_app_as_containers_expect() -> None:
    config = load_config(env={"REALCAST_APP_ID": "app_env", "REALCAST_JWT_SECRET": SECRET, "REALCAST_API_KEY": API_KEY})
    app = config.app("app_env")
    assert app is not None
    assert (app.jwt_algorithm, app.jwt_key, app.api_key) == ("HS256", SECRET, API_KEY)


def test_environment_app_with_a_one_line_public_key(rsa_pems: tuple[str, str]) -> None:
    _, public = rsa_pems
    config = load_config(
        env={
            "REALCAST_APP_ID": "app_env",
            "REALCAST_JWT_PUBLIC_KEY": public.replace("\n", "\\n"),
            "REALCAST_API_KEY": API_KEY,
        }
    )
    app = config.app("app_env")
    assert app is not None and app.jwt_algorithm == "RS256"


def test_environment_app_settings_without_an_app_id_are_an_error() -> None:
    with pytest.raises(ConfigError, match="without REALCAST_APP_ID"):
        load_config(env={"REALCAST_JWT_SECRET": SECRET})
    with pytest.raises(ConfigError, match=r"^REALCAST_API_KEY is required$"):
        load_config(env={"REALCAST_APP_ID": "a", "REALCAST_JWT_SECRET": SECRET})


def test_toml_file_apps_limits_and_relative_paths(tmp_path: Path, rsa_pems: tuple[str, str]) -> None:
    write(tmp_path / "app.pem", rsa_pems[1])
    path = write(
        tmp_path / "realcast.toml",
        f"""
[server]
port = 9000
data_dir = "state"
allowed_origins = ["https://example.com"]
analytics_interval = 2.5

[rate_limits]
chat_per_second = 3

[apps.app_a]
jwt_secret = "{SECRET}"
api_key = "{API_KEY}"
rate_limits = {{ chat_per_minute = 50 }}

[apps.app_b]
jwt_algorithm = "RS256"
jwt_public_key_file = "app.pem"
api_key = "{API_KEY}"
""",
    )
    config = load_config(CliOptions(config=path), env={})
    assert config.port == 9000
    assert config.data_dir == tmp_path / "state"
    assert config.allowed_origins == ("https://example.com",)
    assert config.analytics_interval == 2.5
    a, b = config.app("app_a"), config.app("app_b")
    assert a is not None and b is not None
    assert a.rate_limits == RateLimits(chat_per_second=3, chat_per_minute=50)
    assert b.rate_limits == RateLimits(chat_per_second=3)
    assert b.jwt_algorithm == "RS256"


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[server]\nhost = "10.0.0.1"\nport = 7000\nlog_level = "DEBUG"\n')
    env = {"REALCAST_CONFIG": str(path), "REALCAST_PORT": "7100", "REALCAST_HOST": "10.0.0.2"}
    config = load_config(CliOptions(port=7200), env=env)
    assert config.port == 7200  # flag
    assert config.host == "10.0.0.2"  # env beats file
    assert config.log_level == "DEBUG"  # file beats default
    assert config.analytics_interval == 5.0  # default


def test_env_app_replaces_the_file_app_with_the_same_id(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", f'[apps.app_a]\njwt_secret = "{SECRET}"\napi_key = "{API_KEY}"\n')
    other = "o" * 40
    config = load_config(
        CliOptions(config=path),
        env={"REALCAST_APP_ID": "app_a", "REALCAST_JWT_SECRET": other, "REALCAST_API_KEY": API_KEY},
    )
    assert len(config.apps) == 1
    assert config.apps[0].jwt_key == other


def test_env_rate_limits_override_file_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[rate_limits]\nchat_per_second = 3\nmoderation_per_minute = 7\n")
    config = load_config(
        CliOptions(config=path),
        env={
            "REALCAST_RATE_CHAT_PER_SECOND": "8",
            "REALCAST_APP_ID": "a",
            "REALCAST_JWT_SECRET": SECRET,
            "REALCAST_API_KEY": API_KEY,
        },
    )
    assert config.apps[0].rate_limits == RateLimits(chat_per_second=8, moderation_per_minute=7)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[server]\nprot = 1\n", "prot"),
        ("[sever]\n", "sever"),
        ("[server]\nport = 'x'\n", "integer"),
        ("[server]\nport = 70000\n", "port"),
        ("[apps.a]\napi_key = 'kkkkkkkkkkkkkkkkk'\n", "exactly one of"),
        (f"[apps.a]\njwt_secret = '{SECRET}'\n", "api_key is required"),
        (f"[apps.a]\njwt_secret = '{SECRET}'\napi_key = '{API_KEY}'\ncolour = 1\n", "colour"),
        ("not toml = = =", "c.toml"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError, match=match):
        load_config(CliOptions(config=path), env={})


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(CliOptions(config=tmp_path / "absent.toml"), env={})


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"REALCAST_PORT": "eighty"}, "REALCAST_PORT"),
        ({"REALCAST_DEV": "maybe"}, "REALCAST_DEV"),
        ({"REALCAST_LOG_LEVEL": "loud"}, r"^REALCAST_LOG_LEVEL must be one of"),
        ({"REALCAST_AUTH_TIMEOUT": "0"}, r"^REALCAST_AUTH_TIMEOUT must be in"),
        ({"REALCAST_PRESENCE_INTERVAL": "-1"}, r"^REALCAST_PRESENCE_INTERVAL must be in"),
        ({"REALCAST_PRESENCE_INTERVAL": "61"}, r"^REALCAST_PRESENCE_INTERVAL must be in"),
        ({"REALCAST_PRESENCE_LIMIT": "-5"}, r"^REALCAST_PRESENCE_LIMIT must be in"),
        ({"REALCAST_PRESENCE_LIMIT": "lots"}, "REALCAST_PRESENCE_LIMIT"),
        ({"REALCAST_COUNT_UPDATE_BUDGET": "-1"}, r"^REALCAST_COUNT_UPDATE_BUDGET must be in"),
    ],
)
def test_bad_environment_values(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(env=env)


def test_presence_settings_from_env_and_defaults() -> None:
    defaults = load_config(env={})
    assert (defaults.presence_interval, defaults.presence_limit) == (1.0, 1000)
    config = load_config(env={"REALCAST_PRESENCE_INTERVAL": "0", "REALCAST_PRESENCE_LIMIT": "250"})
    assert (config.presence_interval, config.presence_limit) == (0.0, 250)
    assert defaults.count_update_budget == 200
    assert load_config(env={"REALCAST_COUNT_UPDATE_BUDGET": "0"}).count_update_budget == 0


def test_allowed_origins_from_env() -> None:
    assert load_config(env={"REALCAST_ALLOWED_ORIGINS": "*"}).allowed_origins == "*"
    assert load_config(env={"REALCAST_ALLOWED_ORIGINS": "https://a, https://b"}).allowed_origins == (
        "https://a",
        "https://b",
    )


def test_dev_app_is_created_once_and_persisted(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path / "data")
    first, dev = ensure_dev_app(config)
    assert dev is not None and dev.created
    assert first.app(DEV_APP_ID) is dev.app
    mode = stat.S_IMODE((tmp_path / "data" / "dev-app.json").stat().st_mode)
    assert mode == 0o600
    again, dev2 = ensure_dev_app(config)
    assert again.app(DEV_APP_ID) == dev.app
    assert dev2 is not None and not dev2.created
    assert dev2.app.jwt_key == dev.app.jwt_key and dev2.app.api_key == dev.app.api_key
    stored = json.loads((tmp_path / "data" / "dev-app.json").read_text())
    assert stored["jwt_secret"] == dev.app.jwt_key


def test_dev_mode_only_when_asked_or_unconfigured(tmp_path: Path) -> None:
    app = AppConfig("app_a", "HS256", SECRET, API_KEY)
    configured = ServerConfig(data_dir=tmp_path, apps=(app,))
    assert ensure_dev_app(configured) == (configured, None)
    both, dev = ensure_dev_app(ServerConfig(data_dir=tmp_path, apps=(app,), dev_mode=True))
    assert dev is not None and {a.app_id for a in both.apps} == {"app_a", DEV_APP_ID}
    with pytest.raises(ConfigError, match="no app configured"):
        ensure_dev_app(ServerConfig(data_dir=tmp_path, dev_mode=False))


def test_corrupt_dev_app_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "dev-app.json", "{not json")
    with pytest.raises(ConfigError, match=r"dev-app\.json"):
        ensure_dev_app(ServerConfig(data_dir=tmp_path))


def test_duplicate_app_ids_are_refused() -> None:
    app = AppConfig("app_a", "HS256", SECRET, API_KEY)
    with pytest.raises(ConfigError, match="unique"):
        ServerConfig(apps=(app, app))
