"""Application errors of realcast and how they map to the wire.

Layer: application (realcast); imports only the standard library.

::

    RealcastError
      ConfigError              a bad configuration file, variable or flag (startup only)
        DataDirInUse           another realcast process holds the data directory (startup only)
      AppError                 refusal of a client action; carries one of the seed's four types
        AuthenticationFailed   -> "authentication_failed" (CONNECT_ERROR data / unauthorized)
        PermissionDenied       -> "permission_denied"
        RateLimitExceeded      -> "rate_limit_exceeded", with retry_after in seconds
        InvalidRequest         -> "invalid_request"
        ServiceUnavailable     -> "service_unavailable" (realcast's fifth type): a service the server
                                  needs (the moderation database, a cluster's Redis) could not do it;
                                  nothing was changed, the client may retry
          StoreUnavailable       the moderation database did not commit the action

An ``AppError`` is turned into a wire payload in exactly one place (the handler wrapper in
``handlers.py``) through :meth:`AppError.as_payload`. Messages are written for end users and
never carry internals.
"""

from __future__ import annotations

import enum
import math
from typing import Final

__all__ = [
    "AppError",
    "AuthenticationFailed",
    "ConfigError",
    "DataDirInUse",
    "ErrorType",
    "InvalidRequest",
    "PermissionDenied",
    "RateLimitExceeded",
    "RealcastError",
    "ServiceUnavailable",
    "StoreUnavailable",
    "round_retry_after",
]


class ErrorType(enum.StrEnum):
    """The four error types of the seed's "Error Handling" section, plus ``service_unavailable``.

    The seed has no type for "the server could not do it right now"; a moderation action that
    the database did not commit must not be reported as done, nor blamed on the client.
    """

    AUTHENTICATION_FAILED = "authentication_failed"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    INVALID_REQUEST = "invalid_request"
    PERMISSION_DENIED = "permission_denied"
    SERVICE_UNAVAILABLE = "service_unavailable"


# retry_after is rounded *up* to the millisecond: a client that waits exactly that long
# is never refused again by the same limit.
_RETRY_AFTER_RESOLUTION: Final = 1000


def round_retry_after(seconds: float) -> float:
    """Round a wait up to whole milliseconds, never below one millisecond."""
    return max(math.ceil(seconds * _RETRY_AFTER_RESOLUTION), 1) / _RETRY_AFTER_RESOLUTION


class RealcastError(Exception):
    """Base class of every realcast error."""


class ConfigError(RealcastError):
    """The configuration is invalid; raised at startup, the message names the setting."""


class DataDirInUse(ConfigError):
    """A second process tried to open a data directory that another live process holds."""

    def __init__(self, data_dir: object, pid: int | None) -> None:
        holder = "another realcast process" + ("" if pid is None else f" (pid {pid})")
        super().__init__(
            f"data directory {data_dir} is in use by {holder}; stop it or give this process another "
            "--data-dir (processes share moderation state only through database_url)"
        )
        self.pid = pid


class AppError(RealcastError):
    """A client action was refused.

    Args:
        type: one of the four seed error types.
        message: a short, user-facing explanation.
        retry_after: seconds to wait before retrying (rate limits only).
    """

    def __init__(self, type: ErrorType, message: str, retry_after: float | None = None) -> None:
        self.type = ErrorType(type)
        self.message = message
        self.retry_after = None if retry_after is None else round_retry_after(retry_after)
        super().__init__(message)

    def as_payload(self) -> dict[str, object]:
        """The body of an ``error`` event (or of ``{ok: false, error: ...}`` in an ack)."""
        payload: dict[str, object] = {"type": self.type.value, "message": self.message}
        if self.retry_after is not None:
            payload["retry_after"] = self.retry_after
        return payload

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.type.value!r}, {self.message!r}, retry_after={self.retry_after})"


class AuthenticationFailed(AppError):
    """The token or app id was refused, or the connection has not authenticated yet."""

    def __init__(self, message: str = "authentication failed") -> None:
        super().__init__(ErrorType.AUTHENTICATION_FAILED, message)


class PermissionDenied(AppError):
    """The caller is authenticated but not allowed to do this (role, ban, mute, identity)."""

    def __init__(self, message: str = "permission denied") -> None:
        super().__init__(ErrorType.PERMISSION_DENIED, message)


class RateLimitExceeded(AppError):
    """A rate limit or slow mode refused the action; ``retry_after`` says for how long."""

    def __init__(self, retry_after: float, message: str = "rate limit exceeded") -> None:
        super().__init__(ErrorType.RATE_LIMIT_EXCEEDED, message, retry_after)


class InvalidRequest(AppError):
    """The payload is malformed, out of range, or names something that does not exist."""

    def __init__(self, message: str = "invalid request") -> None:
        super().__init__(ErrorType.INVALID_REQUEST, message)


class ServiceUnavailable(AppError):
    """A service the server needs (the moderation database, a cluster's Redis) could not do the
    action; it did not happen and may be retried."""

    def __init__(self, message: str = "service unavailable, please retry") -> None:
        super().__init__(ErrorType.SERVICE_UNAVAILABLE, message)


class StoreUnavailable(ServiceUnavailable):
    """The moderation database did not commit the action (down, unreachable, or a failed
    statement); the action did not happen and may be retried. Reads go on from the cache."""

    def __init__(self, message: str = "moderation is unavailable right now, please retry") -> None:
        super().__init__(message)
