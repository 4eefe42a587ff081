"""logs.py: JSON and text lines with their fields, setup, and the flood throttle."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from realcast.logs import LogThrottle, log_fields, setup_logging


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    """The root logger writing into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    yield buffer, logging.getLogger("realcast.test")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def test_json_line_carries_the_fields_and_protects_the_fixed_keys(captured: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, logger = captured
    setup_logging("INFO", "json", buffer)
    log_fields(logger, logging.INFO, "moderation ban", event="moderation", target="bob", duration=600, message="x")
    log_fields(logger, logging.DEBUG, "not shown at INFO")
    (line,) = lines(buffer)
    record = json.loads(line)
    assert record["level"] == "INFO" and record["logger"] == "realcast.test"
    assert record["message"] == "moderation ban"
    assert record["field_message"] == "x"  # a field cannot overwrite the message
    assert (record["event"], record["target"], record["duration"]) == ("moderation", "bob", 600)
    assert record["time"].endswith("Z")


def test_json_line_of_plain_logging_and_of_an_exception(captured: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, logger = captured
    setup_logging("DEBUG", "json", buffer)
    logger.info("closing slow consumer %s (%d bytes buffered)", "abc", 42)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("handler failed")
    # The traceback is inside the JSON string: still one line per record.
    first, second = (json.loads(line) for line in lines(buffer))
    assert first["message"] == "closing slow consumer abc (42 bytes buffered)"
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_text_line_quotes_what_would_be_ambiguous(captured: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, logger = captured
    setup_logging("INFO", "text", buffer)
    log_fields(logger, logging.INFO, "authentication failed", reason="token expired", app_id="app_a", n=3, empty="")
    (line,) = lines(buffer)
    assert line.split(" ", 3)[1:3] == ["INFO", "realcast.test:"]
    assert line.endswith('authentication failed reason="token expired" app_id=app_a n=3 empty=""')


def test_long_client_supplied_values_are_clipped(captured: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, logger = captured
    setup_logging("INFO", "json", buffer)
    log_fields(logger, logging.INFO, "x", app_id="a" * 10_000)
    assert len(json.loads(lines(buffer)[0])["app_id"]) < 300


def test_setup_twice_does_not_duplicate_lines_and_refuses_unknown_formats(
    captured: tuple[io.StringIO, logging.Logger],
) -> None:
    buffer, logger = captured
    setup_logging("INFO", "text", buffer)
    setup_logging("INFO", "json", buffer)
    logger.info("once")
    assert len(lines(buffer)) == 1
    with pytest.raises(ValueError, match="text, json"):
        setup_logging("INFO", "xml", buffer)


def test_throttle_writes_burst_lines_a_second_then_one_summary(captured: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, logger = captured
    setup_logging("INFO", "json", buffer)
    now = [100.0]
    throttle = LogThrottle(logger, burst=3, clock=lambda: now[0])
    written = [throttle.log("auth", logging.INFO, "authentication failed", n=i) for i in range(10)]
    assert written == [True] * 3 + [False] * 7
    assert throttle.log("connection", logging.INFO, "other kind has its own budget")
    now[0] = 101.2
    assert throttle.log("auth", logging.INFO, "authentication failed", n=10)
    records = [json.loads(line) for line in lines(buffer)]
    assert [r.get("n") for r in records if r["message"] == "authentication failed"] == [0, 1, 2, 10]
    (summary,) = [r for r in records if r.get("event") == "suppressed"]
    assert (summary["kind"], summary["suppressed"], summary["level"]) == ("auth", 7, "WARNING")
    # The summary comes before the first line of the new second.
    assert records.index(summary) == len(records) - 2


def test_throttle_flush_reports_a_flood_that_stopped(captured: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, logger = captured
    setup_logging("INFO", "json", buffer)
    throttle = LogThrottle(logger, burst=1, clock=lambda: 5.0)
    for _ in range(4):
        throttle.log("connection", logging.INFO, "connected")
    throttle.flush()
    throttle.flush()  # nothing more pending: no second summary
    records = [json.loads(line) for line in lines(buffer)]
    assert [r["message"] for r in records] == ["connected", "suppressed 3 connection log lines (more than 1 a second)"]


def test_throttle_counts_nothing_below_the_level(captured: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, logger = captured
    setup_logging("INFO", "json", buffer)
    throttle = LogThrottle(logger, burst=1, clock=lambda: 5.0)
    for _ in range(5):
        assert not throttle.log("connection", logging.DEBUG, "connected")
    throttle.flush()
    assert lines(buffer) == []
    with pytest.raises(ValueError):
        LogThrottle(logger, burst=0)
