"""realcast.errors: the four wire types and their payloads."""

from __future__ import annotations

import pytest

from realcast.errors import (
    AppError,
    AuthenticationFailed,
    ErrorType,
    InvalidRequest,
    PermissionDenied,
    RateLimitExceeded,
    StoreUnavailable,
    round_retry_after,
)


@pytest.mark.parametrize(
    ("error", "wire_type"),
    [
        (AuthenticationFailed(), "authentication_failed"),
        (PermissionDenied(), "permission_denied"),
        (InvalidRequest(), "invalid_request"),
        (RateLimitExceeded(1.0), "rate_limit_exceeded"),
        (StoreUnavailable(), "service_unavailable"),  # realcast's fifth type
    ],
)
def test_each_subclass_maps_to_one_seed_type(error: AppError, wire_type: str) -> None:
    payload = error.as_payload()
    assert payload["type"] == wire_type
    assert isinstance(payload["message"], str) and payload["message"]


def test_retry_after_only_present_for_rate_limits() -> None:
    assert "retry_after" not in PermissionDenied("no").as_payload()
    assert RateLimitExceeded(0.25).as_payload() == {
        "type": "rate_limit_exceeded",
        "message": "rate limit exceeded",
        "retry_after": 0.25,
    }


def test_retry_after_rounds_up_to_milliseconds() -> None:
    assert round_retry_after(0.0001) == 0.001
    assert round_retry_after(0.2341) == 0.235
    assert round_retry_after(2.0) == 2.0
    assert RateLimitExceeded(0.0).retry_after == 0.001  # never tells a client to retry at once


def test_type_is_validated() -> None:
    with pytest.raises(ValueError):
        AppError("nonsense", "x")  # type: ignore[arg-type]
    assert AppError(ErrorType.INVALID_REQUEST, "m").type is ErrorType.INVALID_REQUEST
