"""Client payloads: one frozen dataclass per event, and the validation that builds them.

Layer: application (realcast); imports only the standard library, ``errors.py``, ``emoji.py``
and ``auth.py`` (for the identity check). Every ``parse_*`` function takes the raw first
argument of an event and returns a request object, or raises :class:`InvalidRequest`;
:func:`check_identity` raises :class:`PermissionDenied`.

Lengths count Unicode code points (Python ``len``). Durations and intervals are whole seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .auth import Principal
from .emoji import is_single_emoji
from .errors import InvalidRequest, PermissionDenied

__all__ = [
    "MAX_DURATION",
    "MAX_MESSAGE_LENGTH",
    "MAX_SLOW_MODE_INTERVAL",
    "AuthenticateRequest",
    "ChatMessageRequest",
    "DeleteMessageRequest",
    "ModerationRequest",
    "ReactionRequest",
    "SlowModeRequest",
    "StreamRequest",
    "check_identity",
    "parse_authenticate",
    "parse_ban",
    "parse_chat_message",
    "parse_delete_message",
    "parse_mute",
    "parse_reaction",
    "parse_slow_mode",
    "parse_stream",
    "parse_target",
]

MAX_MESSAGE_LENGTH: Final = 500
MAX_STREAM_ID_LENGTH: Final = 128
# Printable ASCII identifiers; they double as room names, so no separators we rely on (/, \x1f).
STREAM_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]*")
MAX_USER_ID_LENGTH: Final = 128
MAX_REASON_LENGTH: Final = 200
MAX_MESSAGE_ID_LENGTH: Final = 64
MAX_DURATION: Final = 365 * 24 * 3600  # a year; longer bans are the permanent kind (null)
MAX_SLOW_MODE_INTERVAL: Final = 3600
MAX_TOKEN_LENGTH: Final = 8192
# Refused anywhere in user text: C0/C1 controls (exactly the Cc category), lone surrogates (Cs,
# possible through JSON \ud800 escapes), line/paragraph separators (Zl, Zp), and the bidi
# embedding/override/isolate controls that can visually reorder a message (Trojan Source,
# CVE-2021-42574). Other format characters (ZWJ, variation selectors, tags) are legitimate
# parts of emoji and scripts. One compiled character class is much faster than
# unicodedata.category() per code point.
_REFUSED_RE: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class AuthenticateRequest:
    """``authenticate {token, app_id}``."""

    token: str
    app_id: str


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """Events that only name a stream: chat:join/leave/typing, stream:subscribe, analytics:subscribe."""

    stream_id: str


@dataclass(frozen=True, slots=True)
class ChatMessageRequest:
    """``chat:message``; ``message`` is already trimmed."""

    stream_id: str
    message: str


@dataclass(frozen=True, slots=True)
class ReactionRequest:
    """``reaction:send``."""

    stream_id: str
    emoji: str


@dataclass(frozen=True, slots=True)
class ModerationRequest:
    """``moderation:ban/unban/mute/unmute``; ``duration`` None means permanent/indefinite."""

    stream_id: str
    target_user_id: str
    reason: str | None = None
    duration: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteMessageRequest:
    """``moderation:delete-message``."""

    stream_id: str
    message_id: str


@dataclass(frozen=True, slots=True)
class SlowModeRequest:
    """``moderation:slow-mode``; ``interval`` is 0 when disabled."""

    stream_id: str
    enabled: bool
    interval: int


def _payload(raw: object) -> Mapping[str, object]:
    if not isinstance(raw, dict):
        raise InvalidRequest("payload must be an object")
    return raw


def has_refused_characters(text: str) -> bool:
    """True if ``text`` holds a control, surrogate, line separator or bidi control."""
    return _REFUSED_RE.search(text) is not None


def _stream_id(payload: Mapping[str, object]) -> str:
    value = payload.get("stream_id")
    if not isinstance(value, str) or not value:
        raise InvalidRequest("stream_id must be a non-empty string")
    if len(value) > MAX_STREAM_ID_LENGTH or not STREAM_ID_RE.fullmatch(value):
        raise InvalidRequest(f"stream_id must be at most {MAX_STREAM_ID_LENGTH} characters of A-Z a-z 0-9 _ . : @ -")
    return value


def _duration(payload: Mapping[str, object], key: str, *, nullable: bool, maximum: int) -> int | None:
    value = payload.get(key)
    if value is None:
        if nullable:
            return None
        raise InvalidRequest(f"{key} is required")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidRequest(f"{key} must be a whole number of seconds in 1..{maximum}")
    return value


def _user_id(payload: Mapping[str, object], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_USER_ID_LENGTH or has_refused_characters(value):
        raise InvalidRequest(f"{key} must be a user id (1-{MAX_USER_ID_LENGTH} characters)")
    return value


def parse_authenticate(raw: object) -> AuthenticateRequest:
    """``authenticate`` (and the handshake's auth object)."""
    payload = _payload(raw)
    token, app_id = payload.get("token"), payload.get("app_id")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        raise InvalidRequest("token must be a string")
    if not isinstance(app_id, str) or not app_id:
        raise InvalidRequest("app_id must be a string")
    return AuthenticateRequest(token, app_id)


def parse_stream(raw: object) -> StreamRequest:
    """Any event whose only required field is ``stream_id``."""
    return StreamRequest(_stream_id(_payload(raw)))


def parse_chat_message(raw: object) -> ChatMessageRequest:
    """``chat:message``: the text is trimmed, then must be 1-500 code points, no controls."""
    payload = _payload(raw)
    stream_id = _stream_id(payload)
    text = payload.get("message")
    if not isinstance(text, str):
        raise InvalidRequest("message must be a string")
    text = text.strip()
    if not text:
        raise InvalidRequest("message is empty")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise InvalidRequest(f"message is longer than {MAX_MESSAGE_LENGTH} characters")
    if has_refused_characters(text):
        raise InvalidRequest("message contains control characters")
    return ChatMessageRequest(stream_id, text)


def parse_reaction(raw: object) -> ReactionRequest:
    """``reaction:send``: exactly one emoji."""
    payload = _payload(raw)
    stream_id = _stream_id(payload)
    emoji = payload.get("emoji")
    if not isinstance(emoji, str) or not is_single_emoji(emoji):
        raise InvalidRequest("emoji must be exactly one emoji")
    return ReactionRequest(stream_id, emoji)


def parse_target(raw: object) -> ModerationRequest:
    """``moderation:unban`` / ``moderation:unmute``."""
    payload = _payload(raw)
    return ModerationRequest(_stream_id(payload), _user_id(payload, "target_user_id"))


def parse_ban(raw: object) -> ModerationRequest:
    """``moderation:ban``: optional reason, duration in seconds or null (permanent)."""
    payload = _payload(raw)
    stream_id = _stream_id(payload)
    target = _user_id(payload, "target_user_id")
    reason = payload.get("reason")
    if reason is not None:
        if not isinstance(reason, str):
            raise InvalidRequest("reason must be a string")
        reason = reason.strip() or None
        if reason is not None and (len(reason) > MAX_REASON_LENGTH or has_refused_characters(reason)):
            raise InvalidRequest(f"reason must be at most {MAX_REASON_LENGTH} printable characters")
    duration = _duration(payload, "duration", nullable=True, maximum=MAX_DURATION)
    return ModerationRequest(stream_id, target, reason, duration)


def parse_mute(raw: object) -> ModerationRequest:
    """``moderation:mute``: duration in seconds, or null for "until unmuted"."""
    payload = _payload(raw)
    stream_id = _stream_id(payload)
    target = _user_id(payload, "target_user_id")
    duration = _duration(payload, "duration", nullable=True, maximum=MAX_DURATION)
    return ModerationRequest(stream_id, target, None, duration)


def parse_delete_message(raw: object) -> DeleteMessageRequest:
    """``moderation:delete-message``."""
    payload = _payload(raw)
    stream_id = _stream_id(payload)
    message_id = payload.get("message_id")
    if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        raise InvalidRequest("message_id must be a string")
    return DeleteMessageRequest(stream_id, message_id)


def parse_slow_mode(raw: object) -> SlowModeRequest:
    """``moderation:slow-mode {enabled, interval}``; interval required when enabling."""
    payload = _payload(raw)
    stream_id = _stream_id(payload)
    enabled = payload.get("enabled")
    if not isinstance(enabled, bool):
        raise InvalidRequest("enabled must be true or false")
    if not enabled:
        return SlowModeRequest(stream_id, False, 0)
    interval = _duration(payload, "interval", nullable=False, maximum=MAX_SLOW_MODE_INTERVAL)
    assert interval is not None
    return SlowModeRequest(stream_id, True, interval)


def check_identity(raw: object, principal: Principal) -> None:
    """Refuse payloads whose ``user_id``/``username`` differ from the authenticated identity.

    Identity always comes from the token; these fields are optional echoes (the seed's
    examples send them) and are checked only when present.

    Raises:
        PermissionDenied: a field names somebody else.
    """
    if not isinstance(raw, dict):
        return
    user_id = raw.get("user_id")
    if user_id is not None and user_id != principal.user_id:
        raise PermissionDenied("user_id does not match the authenticated user")
    username = raw.get("username")
    if username is not None and username != principal.username:
        raise PermissionDenied("username does not match the authenticated user")
