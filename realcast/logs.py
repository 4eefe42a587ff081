"""Logging for operators: text or JSON lines, structured fields, and rate limits against floods.

Layer: application (realcast); imports only the standard library.

A log call carries its facts as fields, not only inside the message, so that a JSON line can be
filtered by them (``jq 'select(.event == "moderation")'``)::

    log_fields(logger, logging.INFO, "moderation ban", event="moderation", action="ban", ...)

The text format appends the same fields as ``key=value`` pairs. Lines an outsider can cause at
will (failed authentications, connections) go through a :class:`LogThrottle`: at most ``burst``
lines per second per kind; the rest are counted and reported as one ``suppressed`` line when the
next second starts, so a flood costs a few lines a second and is still visible.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TextIO

__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "LogThrottle",
    "TextFormatter",
    "log_fields",
    "setup_logging",
]

LOG_FORMATS: Final = ("text", "json")
# The LogRecord attribute the fields travel in (passed with ``extra=``).
FIELDS_ATTR: Final = "realcast_fields"
# A field value longer than this is cut: a client-supplied string must not make a line huge.
MAX_FIELD_CHARS: Final = 256


def _clip(value: object) -> object:
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
        return value[:MAX_FIELD_CHARS] + "..."
    return value


def log_fields(logger: logging.Logger, level: int, message: str, /, **fields: object) -> None:
    """Log ``message`` with structured ``fields`` (shown as JSON keys or ``key=value`` text)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={FIELDS_ATTR: {k: _clip(v) for k, v in fields.items()}})


def _record_fields(record: logging.LogRecord) -> Mapping[str, object]:
    fields = getattr(record, FIELDS_ATTR, None)
    return fields if isinstance(fields, dict) else {}


def _iso_time(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, then the fields.

    A field named like one of the four fixed keys is kept under ``field_<name>`` so it cannot
    overwrite them.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": _iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _record_fields(record).items():
            line[f"field_{key}" if key in line else key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # default=str: a field that is not JSON (a Path, an enum) is still written, as text.
        return json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":"))


def _text_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    # Quote what would be ambiguous in key=value text (spaces, quotes, '=', empty, line breaks).
    if not text or any(c in text for c in ' "=\n\r\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """``2026-01-01T00:00:00.000Z INFO realcast: message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_iso_time(record.created), record.levelname, f"{record.name}:", record.getMessage()]
        parts.extend(f"{key}={_text_value(value)}" for key, value in _record_fields(record).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str, log_format: str, stream: TextIO | None = None) -> None:
    """Send every log record at ``level`` or above to ``stream`` (stderr) in ``log_format``.

    Replaces any handler already on the root logger, so that calling it twice does not
    duplicate lines.

    Raises:
        ValueError: ``log_format`` is not one of :data:`LOG_FORMATS`.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class LogThrottle:
    """At most ``burst`` lines per second for each kind; the surplus is summed up, not written.

    When a kind logs again in a later second after lines were dropped, one
    ``suppressed K <kind> log lines`` line (fields ``event="suppressed"``, ``kind``,
    ``suppressed``) comes first. A flood that stops leaves its count pending until the next
    line of that kind or :meth:`flush` (the server calls it on shutdown).

    Args:
        logger: where the lines and the summaries go.
        burst: lines per second per kind.
        clock: monotonic seconds.
    """

    __slots__ = ("_burst", "_clock", "_kinds", "_logger")

    def __init__(
        self, logger: logging.Logger, burst: int = 10, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._logger = logger
        self._burst = burst
        self._clock = clock
        # kind -> [the second being counted, lines written in it, lines dropped since the last summary]
        self._kinds: dict[str, list[int]] = {}

    def enabled_for(self, level: int) -> bool:
        """Whether a line at ``level`` would be written (check before building costly fields)."""
        return self._logger.isEnabledFor(level)

    def log(self, kind: str, level: int, message: str, /, **fields: Any) -> bool:
        """Log unless ``kind`` used up its lines this second; returns whether the line was written."""
        if not self._logger.isEnabledFor(level):
            return False
        second = math.floor(self._clock())
        counts = self._kinds.get(kind)
        if counts is None:
            counts = self._kinds[kind] = [second, 0, 0]
        if counts[0] != second:
            counts[0], counts[1] = second, 0
            self._summarize(kind, counts, level)
        if counts[1] >= self._burst:
            counts[2] += 1
            return False
        counts[1] += 1
        log_fields(self._logger, level, message, **fields)
        return True

    def flush(self) -> None:
        """Write the pending ``suppressed`` summaries now."""
        for kind, counts in self._kinds.items():
            self._summarize(kind, counts, logging.WARNING)

    def _summarize(self, kind: str, counts: list[int], level: int) -> None:
        dropped, counts[2] = counts[2], 0
        if dropped:
            log_fields(
                self._logger,
                max(level, logging.WARNING) if level >= logging.INFO else level,
                f"suppressed {dropped} {kind} log lines (more than {self._burst} a second)",
                event="suppressed",
                kind=kind,
                suppressed=dropped,
            )
