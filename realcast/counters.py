"""Plain counters of what the application refused and did, for the metrics endpoint (metrics.py).

Layer: application (realcast); imports engineio_min's package root (``HttpRequest``,
``HttpResponse``) and realcast's errors.

Nothing here is a Prometheus object: an increment is a dict update, and ``metrics.py`` turns the
dicts into metric families when ``/metrics`` is scraped. Every key set is bounded by the code (error
types, moderation kinds, backend routes and HTTP statuses), never by what a client sends.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar, cast

from engineio_min import HttpRequest, HttpResponse

from .errors import AppError, ErrorType

__all__ = ["AppCounters", "api_route_label", "count_completed", "count_responses"]

Fn = TypeVar("Fn", bound=Callable[..., Any])
E = TypeVar("E", bound=AppError)
RouteHandler = Callable[[HttpRequest], "HttpResponse | Awaitable[HttpResponse]"]

# The backend API's actions (backend.py): POST .../streams/{stream_id}/{action}.
_API_ACTIONS: Final = frozenset({"live", "offline", "error"})


class AppCounters:
    """Counts since start of one server's refusals, moderation actions and backend API requests."""

    __slots__ = ("api_requests", "moderation_actions", "refusals")

    def __init__(self) -> None:
        self.refusals: dict[str, int] = {t.value: 0 for t in ErrorType}  # error type -> refusals
        self.moderation_actions: dict[str, int] = {}  # event name -> actions done
        self.api_requests: dict[tuple[str, int], int] = {}  # (route, HTTP status) -> requests

    def refused(self, error: E) -> E:
        """Count ``error`` as a refusal of its type; returns it (``refuse(sock, counters.refused(err))``)."""
        key = error.type.value
        self.refusals[key] = self.refusals.get(key, 0) + 1
        return error


def count_completed(counts: dict[str, int], kind: str, fn: Fn) -> Fn:
    """``fn``, counting into ``counts[kind]`` each call that returns (or whose awaitable completes)
    without raising: a refused action is not an action."""
    counts.setdefault(kind, 0)  # scraped as 0 before the first one

    def counted(*args: Any) -> Any:
        answer = fn(*args)
        if inspect.isawaitable(answer):
            return _count_after(counts, kind, answer)
        counts[kind] = counts.get(kind, 0) + 1
        return answer

    return cast(Fn, counted)


async def _count_after(counts: dict[str, int], kind: str, pending: Awaitable[Any]) -> Any:
    result = await pending
    counts[kind] = counts.get(kind, 0) + 1
    return result


def api_route_label(path: str) -> str:
    """The backend route of ``path`` as a metric label: ``live``, ``offline``, ``error`` (the
    actions), ``status`` (the status read) or ``other`` (no such route): a bounded set, whatever
    app or stream ids are requested."""
    parts = path.split("/")  # "", "api", "v1", "apps", app_id, "streams", stream_id[, action]
    if len(parts) < 7 or parts[5] != "streams":
        return "other"
    if len(parts) == 7:
        return "status"
    if len(parts) == 8 and parts[7] in _API_ACTIONS:
        return parts[7]
    return "other"


def count_responses(
    counts: dict[tuple[str, int], int], label: Callable[[HttpRequest], str], handler: RouteHandler
) -> RouteHandler:
    """``handler``, counting each response into ``counts[(label(request), status)]``."""

    def counted(request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        route = label(request)
        response = handler(request)
        if isinstance(response, HttpResponse):
            _count(counts, route, response)
            return response
        return _count_when_done(counts, route, response)

    return counted


async def _count_when_done(
    counts: dict[tuple[str, int], int], route: str, pending: Awaitable[HttpResponse]
) -> HttpResponse:
    try:
        response = await pending
    except Exception:  # engineio_min answers 500: count it as such, and let it
        _count(counts, route, HttpResponse(500))
        raise
    _count(counts, route, response)
    return response


def _count(counts: dict[tuple[str, int], int], route: str, response: HttpResponse) -> None:
    key = (route, response.status)
    counts[key] = counts.get(key, 0) + 1
