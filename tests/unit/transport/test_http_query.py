"""engineio_min.transport.http: the query parser agrees with urllib's on every input."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given

from engineio_min import testing
from engineio_min.transport.http import _parse_query


@given(testing.query_strings())
def test_same_as_parse_qsl(raw: str) -> None:
    assert _parse_query(raw) == dict(parse_qsl(raw, keep_blank_values=True))


def test_engineio_queries() -> None:
    assert _parse_query("EIO=4&transport=polling&t=Pq1&sid=ab-_c") == {
        "EIO": "4", "transport": "polling", "t": "Pq1", "sid": "ab-_c",
    }  # fmt: skip
