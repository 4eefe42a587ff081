"""JWT verification into a :class:`Principal`, role ranks, and token minting for the CLI.

Layer: application (realcast); imports pyjwt, ``config.py``, ``jwt_decoder.py`` and ``keys.py``. No I/O.

Claims (documented for platform backends in the README (The RealCast API)):

=================  ========  ===============================================================
claim              required  meaning
=================  ========  ===============================================================
``sub``            yes       the user id (string, 1-128 characters)
``aud``            yes       the app id; a string or a list containing it. A token minted for
                             another app is refused even if the apps share a secret.
``exp``            yes       expiry (seconds since the epoch)
``nbf``, ``iat``   no        not valid before / issued at; neither may lie in the future
``name``           no        the display name (1-64 characters); defaults to ``sub``
``roles``          no        list of app-wide roles: ``"admin"``, ``"moderator"`` (others
                             are ignored); a single ``role`` string is also accepted
``moderator_of``   no        list of stream ids this user moderates
``broadcaster_of`` no        list of stream ids this user broadcasts (owns)
=================  ========  ===============================================================

Refusals before the signature is checked say only "invalid token": an unknown ``app_id``, a
malformed token, a bad signature and a header naming another algorithm all look the same, so
that app ids cannot be probed (as on the backend HTTP API). Once the signature proves the
token was signed with the app's key, the message says what is wrong with it ("token expired").

The algorithm is pinned per app: the token header's ``alg`` must equal the app's configured
algorithm, so ``alg: none`` and HS256-signed-with-the-RS256-public-key tokens are refused.
Time claims are checked here against an injected clock (with ``leeway`` seconds of skew)
instead of by pyjwt, so tests need not sleep.
"""

from __future__ import annotations

import enum
import math
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import jwt

from .config import AppConfig
from .errors import AuthenticationFailed
from .jwt_decoder import HmacFastPath, make_decoder
from .keys import VerificationKey, load_signing_key, load_verification_key

__all__ = ["APP_ROLES", "Principal", "Rank", "TokenVerifier", "mint_token"]

APP_ROLES: Final = frozenset({"admin", "moderator"})
MAX_TOKEN_LENGTH: Final = 8192  # bounds the work spent on a hostile token before any check
MAX_USER_ID_LENGTH: Final = 128
MAX_USERNAME_LENGTH: Final = 64
MAX_SCOPED_STREAMS: Final = 1000
MAX_TTL: Final = 30 * 24 * 3600


class Rank(enum.IntEnum):
    """Who may moderate whom within one stream: a higher rank acts on strictly lower ranks."""

    VIEWER = 0
    MODERATOR = 1  # app-wide moderator, or moderator_of this stream
    BROADCASTER = 2  # broadcaster_of this stream
    ADMIN = 3  # app-wide admin


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user of one app, as stated by a verified token."""

    app_id: str
    user_id: str
    username: str
    roles: frozenset[str] = frozenset()
    moderator_of: frozenset[str] = frozenset()
    broadcaster_of: frozenset[str] = frozenset()
    expires_at: float | None = None

    def rank_in(self, stream_id: str) -> Rank:
        """This user's rank in ``stream_id``."""
        if "admin" in self.roles:
            return Rank.ADMIN
        if stream_id in self.broadcaster_of:
            return Rank.BROADCASTER
        if "moderator" in self.roles or stream_id in self.moderator_of:
            return Rank.MODERATOR
        return Rank.VIEWER


def _bad(message: str = "invalid token") -> AuthenticationFailed:
    return AuthenticationFailed(message)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _clean_text(value: object, max_length: int) -> str | None:
    """The string if it is 1..max_length code points with no control/format characters."""
    if not isinstance(value, str) or not 1 <= len(value) <= max_length or value != value.strip():
        return None
    if value.isprintable():  # C speed; printable excludes every category refused below
        return value
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in value):
        return None
    return value


_NONE: frozenset[str] = frozenset()


def _string_set(claims: Mapping[str, Any], name: str) -> frozenset[str]:
    value = claims.get(name)
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_SCOPED_STREAMS:
        raise _bad(f"invalid {name} claim")
    if not all(isinstance(v, str) for v in value):
        raise _bad(f"invalid {name} claim")
    return frozenset(value)


class TokenVerifier:
    """Verifies tokens against the configured apps.

    Args:
        apps: the configured apps.
        leeway: seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
        clock: wall-clock seconds since the epoch.
    """

    __slots__ = ("_apps", "_clock", "_fast", "_jwt", "_keys", "_leeway")

    def __init__(self, apps: Iterable[AppConfig], leeway: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        self._apps = {app.app_id: app for app in apps}
        # Keys are parsed once here, not per token.
        self._keys: dict[str, VerificationKey] = {
            app.app_id: load_verification_key(app.jwt_algorithm, app.jwt_key) for app in self._apps.values()
        }
        self._leeway = leeway
        self._clock = clock
        self._jwt = make_decoder()
        self._fast = {
            app.app_id: HmacFastPath.for_app(app.jwt_algorithm, self._keys[app.app_id], app.app_id)
            for app in self._apps.values()
        }

    def app(self, app_id: str) -> AppConfig | None:
        """The configured app, or None."""
        return self._apps.get(app_id)

    def verify(self, token: object, app_id: object) -> Principal:
        """Check a token presented for ``app_id`` and return who it speaks for.

        Raises:
            AuthenticationFailed: for any problem with the app id, the token or its claims.
        """
        if not isinstance(app_id, str) or not isinstance(token, str):
            raise _bad("token and app_id must be strings")
        app = self._apps.get(app_id)
        # The same answer for an unknown app as for a bad token: app ids cannot be probed.
        if app is None or not 0 < len(token) <= MAX_TOKEN_LENGTH:
            raise _bad()
        claims = self._decode(token, app)
        self._check_times(claims)
        return self._principal(app_id, claims)

    def _decode(self, token: str, app: AppConfig) -> dict[str, Any]:
        fast = self._fast[app.app_id]
        if fast is not None:
            claims = fast.decode(token)
            if claims is not None:
                return claims
        try:
            return self._jwt.decode(token, self._keys[app.app_id], algorithms=[app.jwt_algorithm], audience=app.app_id)
        except jwt.InvalidAlgorithmError:
            # Pinning: `algorithms` holds the app's one algorithm, so "none" and algorithm
            # confusion (an HS256 token signed with an RS256 app's public key) end here.
            # (Checked by pyjwt while it parses the token once; a separate header read cost
            # a second full parse of every token.) Checked before the signature, so it says no
            # more than "invalid token": naming the algorithm would tell a prober the app exists.
            raise _bad() from None
        except jwt.InvalidAudienceError:
            raise _bad("token is not for this app") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _bad(f"token has no {exc.claim} claim") from None
        except jwt.PyJWTError:
            raise _bad() from None

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        exp = claims["exp"]
        if not _is_number(exp):
            raise _bad("invalid exp claim")
        if exp <= now - self._leeway:
            raise _bad("token expired")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is None:
                continue
            if not _is_number(value):
                raise _bad(f"invalid {name} claim")
            if value > now + self._leeway:
                raise _bad("token not yet valid")

    def _principal(self, app_id: str, claims: Mapping[str, Any]) -> Principal:
        user_id = _clean_text(claims["sub"], MAX_USER_ID_LENGTH)
        if user_id is None:
            raise _bad("invalid sub claim")
        name = claims.get("name")
        username = user_id if name is None else _clean_text(name, MAX_USERNAME_LENGTH)
        if username is None:
            raise _bad("invalid name claim")
        roles = _string_set(claims, "roles") | _string_set(claims, "role")
        return Principal(
            app_id=app_id,
            user_id=user_id,
            username=username,
            # `or _NONE`: set operations build a new (216-byte) empty set each time; a
            # principal lives as long as its connection, so share the one empty set.
            roles=(roles & APP_ROLES) or _NONE,
            moderator_of=_string_set(claims, "moderator_of") or _NONE,
            broadcaster_of=_string_set(claims, "broadcaster_of") or _NONE,
            expires_at=float(claims["exp"]),
        )


def mint_token(
    app: AppConfig,
    user_id: str,
    *,
    username: str | None = None,
    roles: Iterable[str] = (),
    moderator_of: Iterable[str] = (),
    broadcaster_of: Iterable[str] = (),
    ttl: int = 3600,
    now: float | None = None,
    private_key: str | None = None,
) -> str:
    """Sign a token for ``app`` the way a platform backend would (``realcast token``).

    Args:
        app: the app; HS* apps sign with their secret.
        private_key: PEM private key, required for RS*/PS*/ES* apps.
        ttl: lifetime in seconds (1 s .. 30 days).

    Raises:
        ValueError: bad ttl, unknown role, a missing private key, or a claim that
            :class:`TokenVerifier` would refuse (a token that cannot work is never minted).
        ConfigError: the private key does not fit the app's algorithm.
    """
    if not 1 <= ttl <= MAX_TTL:
        raise ValueError(f"ttl must be in 1..{MAX_TTL} seconds")
    rule = "characters, without control characters or leading/trailing spaces"
    if _clean_text(user_id, MAX_USER_ID_LENGTH) is None:
        raise ValueError(f"user id (sub) must be 1-{MAX_USER_ID_LENGTH} {rule}")
    if username is not None and _clean_text(username, MAX_USERNAME_LENGTH) is None:
        raise ValueError(f"name must be 1-{MAX_USERNAME_LENGTH} {rule}")
    moderator_of, broadcaster_of = list(moderator_of), list(broadcaster_of)  # iterables are read twice
    for claim, streams in (("moderator_of", moderator_of), ("broadcaster_of", broadcaster_of)):
        if len(set(streams)) > MAX_SCOPED_STREAMS:
            raise ValueError(f"{claim} may list at most {MAX_SCOPED_STREAMS} streams")
    role_list = sorted(set(roles))
    if not set(role_list) <= APP_ROLES:
        raise ValueError(f"roles must be among {sorted(APP_ROLES)}")
    if app.jwt_algorithm.startswith("HS"):
        key = load_signing_key(app.jwt_algorithm, app.jwt_key)
    elif private_key is None:
        raise ValueError(f"app {app.app_id} uses {app.jwt_algorithm}: a private key is needed to sign")
    else:
        key = load_signing_key(app.jwt_algorithm, private_key)
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": user_id, "aud": app.app_id, "iat": issued, "exp": issued + ttl}
    if username is not None:
        claims["name"] = username
    if role_list:
        claims["roles"] = role_list
    if mods := sorted(set(moderator_of)):
        claims["moderator_of"] = mods
    if casts := sorted(set(broadcaster_of)):
        claims["broadcaster_of"] = casts
    return jwt.encode(claims, key, algorithm=app.jwt_algorithm)
