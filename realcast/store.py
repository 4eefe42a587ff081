"""Moderation state: the records, the store interface, and the in-memory cache both stores share.

Layer: application (realcast); imports only the standard library.

Theory of operation: every ban, mute and slow-mode setting is held in dicts that are loaded when
a store opens. Reads (made on every chat message, reaction and join) are synchronous dict
lookups; writes are ``async`` and return only after the database committed them (SQLite in
``sqlitestore.py`` for one process, PostgreSQL in ``pgstore.py`` for a cluster). Each committed
write becomes a :class:`Change`, applied to this node's cache and handed to every registered
listener (the cluster publishes it to the other nodes, which :meth:`ModerationStore.apply` it).
Expiry is enforced on read against the injected wall clock: an expired ban or mute is reported
absent and dropped from the cache; the database rows go in :meth:`~ModerationStore.purge_expired`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

__all__ = [
    "Ban",
    "CachedStore",
    "Change",
    "ChangeKind",
    "ChangeListener",
    "ModerationStore",
    "Mute",
    "SlowMode",
]

logger = logging.getLogger("realcast.store")

_Key = tuple[str, str, str]  # (app_id, stream_id, user_id)


@dataclass(frozen=True, slots=True)
class Ban:
    """A ban of one user from one stream; ``expires_at`` None means permanent."""

    app_id: str
    stream_id: str
    user_id: str
    reason: str | None
    created_at: float
    expires_at: float | None
    moderator_id: str

    @property
    def duration(self) -> int | None:
        """Seconds from creation to expiry, None for permanent."""
        return None if self.expires_at is None else round(self.expires_at - self.created_at)


@dataclass(frozen=True, slots=True)
class Mute:
    """A mute of one user in one stream; ``expires_at`` None means until unmuted."""

    app_id: str
    stream_id: str
    user_id: str
    created_at: float
    expires_at: float | None
    moderator_id: str

    @property
    def duration(self) -> int | None:
        """Seconds from creation to expiry, None for indefinite."""
        return None if self.expires_at is None else round(self.expires_at - self.created_at)


_Restriction = TypeVar("_Restriction", Ban, Mute)


@dataclass(frozen=True, slots=True)
class SlowMode:
    """Slow mode of one stream: each user may send one message per ``interval`` seconds."""

    app_id: str
    stream_id: str
    interval: int
    updated_at: float


class ChangeKind(enum.StrEnum):
    """What a committed write did."""

    BAN = "ban"
    UNBAN = "unban"
    MUTE = "mute"
    UNMUTE = "unmute"
    SLOW_MODE = "slow_mode"


# The record type each kind carries (None: the kind carries no record).
_RECORD_TYPES: dict[ChangeKind, type[Ban] | type[Mute] | type[SlowMode] | None] = {
    ChangeKind.BAN: Ban,
    ChangeKind.UNBAN: None,
    ChangeKind.MUTE: Mute,
    ChangeKind.UNMUTE: None,
    ChangeKind.SLOW_MODE: SlowMode,
}


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write, small enough to publish to the other nodes.

    ``user_id`` is None for ``slow_mode``; ``record`` is the new ban, mute or slow mode, or None
    for ``unban``, ``unmute`` and slow mode switched off.
    """

    kind: ChangeKind
    app_id: str
    stream_id: str
    user_id: str | None
    record: Ban | Mute | SlowMode | None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; :meth:`from_dict` reads it back."""
        return {
            "kind": self.kind.value,
            "app_id": self.app_id,
            "stream_id": self.stream_id,
            "user_id": self.user_id,
            "record": None if self.record is None else asdict(self.record),
        }

    @classmethod
    def from_dict(cls, data: object) -> Change:
        """Validate and rebuild a change from :meth:`as_dict`'s shape.

        Raises:
            ValueError: ``data`` is not a well-formed change (it came from another process).
        """
        if not isinstance(data, Mapping):
            raise ValueError("a change must be an object")
        try:
            kind = ChangeKind(str(data.get("kind")))
        except ValueError:
            raise ValueError(f"unknown change kind {data.get('kind')!r}") from None
        app_id, stream_id, user_id = data.get("app_id"), data.get("stream_id"), data.get("user_id")
        if not isinstance(app_id, str) or not isinstance(stream_id, str):
            raise ValueError("a change needs string app_id and stream_id")
        if (user_id is None) != (kind is ChangeKind.SLOW_MODE) or not (user_id is None or isinstance(user_id, str)):
            raise ValueError(f"a {kind.value} change needs {'no' if kind is ChangeKind.SLOW_MODE else 'a'} user_id")
        record = _record_from(kind, data.get("record"))
        change = cls(kind, app_id, stream_id, user_id, record)
        if record is not None and _key_of(record) != change.key:
            raise ValueError("a change's record is for another key")
        return change

    @property
    def key(self) -> tuple[str, ...]:
        """(app_id, stream_id, user_id), or (app_id, stream_id) for slow mode."""
        return (self.app_id, self.stream_id) if self.user_id is None else (self.app_id, self.stream_id, self.user_id)


def _key_of(record: Ban | Mute | SlowMode) -> tuple[str, ...]:
    if isinstance(record, SlowMode):
        return (record.app_id, record.stream_id)
    return (record.app_id, record.stream_id, record.user_id)


def _record_from(kind: ChangeKind, raw: object) -> Ban | Mute | SlowMode | None:
    record_type = _RECORD_TYPES[kind]
    if raw is None:
        if record_type is None or kind is ChangeKind.SLOW_MODE:  # slow mode None: switched off
            return None
        raise ValueError(f"a {kind.value} change needs a record")
    if record_type is None:
        raise ValueError(f"a {kind.value} change carries no record")
    if not isinstance(raw, Mapping):
        raise ValueError("a change's record must be an object")
    try:
        record = record_type(**raw)
    except TypeError as exc:
        raise ValueError(f"bad {kind.value} record: {exc}") from None
    _check_field_types(record)
    return record


def _check_field_types(record: Ban | Mute | SlowMode) -> None:
    for name, value in asdict(record).items():
        if name in ("created_at", "updated_at"):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif name == "expires_at":
            ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        elif name == "interval":
            ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        elif name == "reason":
            ok = value is None or isinstance(value, str)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(f"bad {name} in a {type(record).__name__} record: {value!r}")


ChangeListener = Callable[[Change], Awaitable[None]]


class ModerationStore(Protocol):
    """Bans, mutes and slow mode: cached synchronous reads, asynchronous committed writes.

    Every write returns after its commit; a store that cannot commit raises
    :class:`~realcast.errors.StoreUnavailable` and changes nothing, cache included.
    """

    async def open(self) -> None:
        """Connect, create or migrate the schema, and load the cache (before any other call)."""

    async def close(self) -> None:
        """Release the database; the store must not be used afterwards."""

    def add_listener(self, listener: ChangeListener) -> None:
        """Await ``listener(change)`` after each committed write, before the write returns."""

    def apply(self, change: Change) -> None:
        """Bring this node's cache in line with another node's committed change (no database write)."""

    async def reload(self) -> None:
        """Replace the whole cache with what the database holds (after missing changes)."""

    def get_ban(self, app_id: str, stream_id: str, user_id: str) -> Ban | None:
        """The active ban of this user in this stream, or None."""

    def bans(self, app_id: str, stream_id: str) -> list[Ban]:
        """Active bans in one stream, oldest first."""

    def get_mute(self, app_id: str, stream_id: str, user_id: str) -> Mute | None:
        """The active mute of this user in this stream, or None."""

    def get_slow_mode(self, app_id: str, stream_id: str) -> SlowMode | None:
        """The stream's slow mode, or None when it is off."""

    async def ban(
        self,
        app_id: str,
        stream_id: str,
        user_id: str,
        *,
        reason: str | None,
        duration: int | None,
        moderator_id: str,
    ) -> Ban:
        """Ban (or re-ban, replacing the previous ban) ``user_id`` from the stream."""

    async def unban(self, app_id: str, stream_id: str, user_id: str) -> bool:
        """Lift a ban; False when there was no active ban."""

    async def mute(
        self, app_id: str, stream_id: str, user_id: str, *, duration: int | None, moderator_id: str
    ) -> Mute:
        """Mute (or re-mute, replacing the previous mute) ``user_id`` in the stream."""

    async def unmute(self, app_id: str, stream_id: str, user_id: str) -> bool:
        """Lift a mute; False when there was no active mute."""

    async def set_slow_mode(self, app_id: str, stream_id: str, interval: int | None) -> SlowMode | None:
        """Enable slow mode with ``interval`` seconds, or disable it with None."""

    async def purge_expired(self) -> int:
        """Delete every expired ban and mute; return how many database rows went."""


class CachedStore:
    """The cache, reads, :meth:`apply` and listeners that both stores share.

    A subclass persists, then calls :meth:`_committed` with the change.

    Args:
        clock: wall-clock seconds since the epoch; expiry is absolute wall time so that it
            survives restarts and means the same on every node.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._bans: dict[_Key, Ban] = {}
        self._mutes: dict[_Key, Mute] = {}
        self._slow: dict[tuple[str, str], SlowMode] = {}
        self._listeners: list[ChangeListener] = []

    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def _fill(self, bans: Iterable[Ban], mutes: Iterable[Mute], slow: Iterable[SlowMode]) -> None:
        """Replace the cache with these records (a load or reload)."""
        self._bans = {(b.app_id, b.stream_id, b.user_id): b for b in bans}
        self._mutes = {(m.app_id, m.stream_id, m.user_id): m for m in mutes}
        self._slow = {(s.app_id, s.stream_id): s for s in slow}

    def apply(self, change: Change) -> None:
        # Idempotent: a change applied twice (or one this node made itself) leaves the same state.
        kind, record = change.kind, change.record
        if change.user_id is None:
            if isinstance(record, SlowMode):
                self._slow[(change.app_id, change.stream_id)] = record
            else:
                self._slow.pop((change.app_id, change.stream_id), None)
            return
        key = (change.app_id, change.stream_id, change.user_id)
        if kind is ChangeKind.BAN and isinstance(record, Ban):
            self._bans[key] = record
        elif kind is ChangeKind.MUTE and isinstance(record, Mute):
            self._mutes[key] = record
        elif kind is ChangeKind.UNBAN:
            self._bans.pop(key, None)
        elif kind is ChangeKind.UNMUTE:
            self._mutes.pop(key, None)

    async def _committed(self, change: Change) -> None:
        """Apply a change this node committed, then tell the listeners."""
        self.apply(change)
        for listener in self._listeners:
            try:
                await listener(change)
            except Exception:
                # The write is committed: failing it now would make a moderator retry something
                # done. Nodes that missed the change catch up through reload().
                logger.exception("moderation change listener failed for %s %s", change.kind.value, change.key)

    def _expired_from_cache(self) -> None:
        now = self._clock()
        for cache in (self._bans, self._mutes):
            for key in [k for k, v in cache.items() if v.expires_at is not None and v.expires_at <= now]:
                del cache[key]

    def _on_expired(self, kind: ChangeKind, key: _Key) -> None:
        """Hook: an expired ban (``kind`` BAN) or mute was dropped from the cache on read."""

    def _active(self, kind: ChangeKind, cache: dict[_Key, _Restriction], key: _Key) -> _Restriction | None:
        """The ban or mute at ``key`` unless it has expired, in which case it is dropped."""
        record = cache.get(key)
        if record is not None and record.expires_at is not None and record.expires_at <= self._clock():
            del cache[key]
            self._on_expired(kind, key)
            return None
        return record

    def get_ban(self, app_id: str, stream_id: str, user_id: str) -> Ban | None:
        return self._active(ChangeKind.BAN, self._bans, (app_id, stream_id, user_id))

    def bans(self, app_id: str, stream_id: str) -> list[Ban]:
        found = [self.get_ban(*key) for key in list(self._bans) if key[:2] == (app_id, stream_id)]
        return sorted((b for b in found if b is not None), key=lambda b: b.created_at)

    def get_mute(self, app_id: str, stream_id: str, user_id: str) -> Mute | None:
        return self._active(ChangeKind.MUTE, self._mutes, (app_id, stream_id, user_id))

    def get_slow_mode(self, app_id: str, stream_id: str) -> SlowMode | None:
        return self._slow.get((app_id, stream_id))

    def _new_ban(
        self, app_id: str, stream_id: str, user_id: str, reason: str | None, duration: int | None, moderator_id: str
    ) -> Ban:
        now = self._clock()
        return Ban(app_id, stream_id, user_id, reason, now, None if duration is None else now + duration, moderator_id)

    def _new_mute(self, app_id: str, stream_id: str, user_id: str, duration: int | None, moderator_id: str) -> Mute:
        now = self._clock()
        return Mute(app_id, stream_id, user_id, now, None if duration is None else now + duration, moderator_id)

    def _is_live(self, expires_at: float | None) -> bool:
        return expires_at is None or expires_at > self._clock()
