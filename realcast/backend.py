"""The backend HTTP API: the platform's servers drive the stream lifecycle and read status.

Layer: application (realcast); imports engineio_min's package root (``HttpRequest``,
``HttpResponse``) and realcast's modules. Served on the Socket.IO port through
``Server.route``.

Routes (``{app_id}``, ``{stream_id}`` as in the WebSocket API)::

    POST /api/v1/apps/{app_id}/streams/{stream_id}/live     {"title": "..."}  -> stream.live
    POST /api/v1/apps/{app_id}/streams/{stream_id}/offline  {}                -> stream.offline
    POST /api/v1/apps/{app_id}/streams/{stream_id}/error    {"error": "..."}  -> stream.error
    GET  /api/v1/apps/{app_id}/streams/{stream_id}          status and analytics
    GET  /healthz                                           liveness, no authentication

Every ``/api/v1`` request carries ``Authorization: Bearer <the app's api_key>``; a missing or
wrong key, or an unknown app, is ``401`` (the same answer, so app ids cannot be probed). Errors
are JSON ``{"error": "..."}``: 400 (bad body, a field not listed above, bad stream id), 401, 404
(unknown route), 405 (with ``Allow``), 413 (a body over 1 MiB, engineio_min's
``ROUTE_BODY_LIMIT``), 431 (headers over engineio_min's limit) or 503 (cluster: Redis away).

``error`` in a status is the last reported error while the stream is in status ``error`` and
``null`` otherwise: going live or offline afterwards clears it.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from redis.exceptions import RedisError

from engineio_min import HttpRequest, HttpResponse, Server

from .config import AppConfig
from .counters import api_route_label, count_responses
from .history import ChatHistory
from .hub import Hub
from .ids import iso_utc
from .live import StreamState, StreamStatus
from .logs import LogThrottle
from .models import MAX_STREAM_ID_LENGTH, STREAM_ID_RE, has_refused_characters

__all__ = ["API_PREFIX", "BackendApi"]

API_PREFIX: Final = "/api/v1/apps/"
MAX_TITLE_LENGTH: Final = 200
MAX_ERROR_LENGTH: Final = 500
# One INFO line per API call; rate-limited, since requests with a wrong key cost a caller nothing.
api_log = LogThrottle(logging.getLogger("realcast.api"), burst=50)


def _route_name(request: HttpRequest) -> str:
    """The route as a pattern (ids out of it, so lines group by route): ``POST streams/{stream_id}/live``."""
    parts = request.path[len(API_PREFIX) :].split("/")
    if len(parts) in (3, 4) and parts[1] == "streams":
        action = f"/{parts[3]}" if len(parts) == 4 and parts[3] in ACTION_FIELDS else ""
        unknown = "/?" if len(parts) == 4 and not action else ""
        return f"{request.method} {API_PREFIX}{{app_id}}/streams/{{stream_id}}{action}{unknown}"
    return f"{request.method} {API_PREFIX}?"


def _log_call(request: HttpRequest, status: int) -> None:
    if not api_log.enabled_for(logging.INFO):
        return
    parts = request.path[len(API_PREFIX) :].split("/")
    api_log.log(
        "backend API",
        logging.INFO,
        "backend API call",
        event="api",
        route=_route_name(request),
        status=status,
        app_id=parts[0] or None,
        stream_id=parts[2] if len(parts) >= 3 and parts[1] == "streams" else None,
        remote_addr=request.remote_addr,
    )


class ApiError(Exception):
    """An HTTP error answer."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers

    def response(self) -> HttpResponse:
        headers = dict(self.headers or {})
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="realcast"'
        return HttpResponse.json({"error": self.message}, self.status, headers or None)


def _method_not_allowed(allowed: str) -> ApiError:
    return ApiError(405, "method not allowed", {"Allow": allowed})


def _json_body(request: HttpRequest, fields: frozenset[str]) -> dict[str, object]:
    """The body as a JSON object holding only ``fields`` (a misspelt field is an error, not a no-op)."""
    if not request.body.strip():
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        expected = ", ".join(sorted(fields)) or "none"
        raise ApiError(400, f"unknown field(s) {', '.join(unknown)} (expected: {expected})")
    return body


def _text(body: dict[str, object], key: str, max_length: int, *, required: bool) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ApiError(400, f"{key} must be a non-empty string" if required else f"{key} must be a string")
    value = value.strip()
    if len(value) > max_length or has_refused_characters(value):
        raise ApiError(400, f"{key} must be at most {max_length} printable characters")
    return value


# What an action did: the fields it adds to the answer, and the event to announce (if any).
Outcome = tuple[dict[str, object], tuple[str, dict[str, object]] | None]
# The body fields each action reads; any other field is refused.
ACTION_FIELDS: Final = {
    "live": frozenset({"title"}),
    "offline": frozenset[str](),
    "error": frozenset({"error"}),
}


class BackendApi:
    """The HTTP routes, bound to one :class:`Hub`."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._actions: dict[str, Callable[[StreamState, dict[str, object]], Outcome]] = {
            "live": self._live,
            "offline": self._offline,
            "error": self._error,
        }

    def install(self, server: Server) -> None:
        """Register the routes on ``server``."""
        # Methods no route takes are answered here too, so that a 405 names exactly what the path takes.
        counts = self.hub.counters.api_requests
        handle = count_responses(counts, lambda request: api_route_label(request.path), self.handle)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            server.route(method, API_PREFIX, handle)
        server.route("GET", "/healthz", count_responses(counts, lambda request: "healthz", self._health))

    def _health(self, request: HttpRequest) -> HttpResponse:
        """200 while the node serves its clients; "degraded" while it cannot reach the cluster's Redis."""
        cluster = self.hub.cluster
        if cluster is None:
            return HttpResponse.json({"status": "ok"})
        redis_ok = cluster.redis_ok and self.hub.nsp.adapter.healthy
        status = "ok" if redis_ok else "degraded"
        return HttpResponse.json({"status": status, "node": cluster.node_id, "redis": redis_ok})

    def handle(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        """Dispatch one ``/api/v1/apps/...`` request (and log it: route and status, never the key)."""
        try:
            if self.hub.cluster is not None:
                return self._logged(request, self._handle_cluster(*self._route(request)))
            response = HttpResponse.json(self._dispatch(*self._route(request)))
        except ApiError as err:
            response = err.response()
        _log_call(request, response.status)
        return response

    @staticmethod
    async def _logged(request: HttpRequest, pending: Awaitable[HttpResponse]) -> HttpResponse:
        response = await pending
        _log_call(request, response.status)
        return response

    async def _handle_cluster(
        self, app_id: str, stream_id: str, action: Callable[[StreamState, dict[str, object]], Outcome] | None,
        body: dict[str, object],
    ) -> HttpResponse:
        """The same routes over the cluster's shared stream status (Redis) and analytics."""
        cluster = self.hub.cluster
        assert cluster is not None
        # A scratch state: the shared status is read into it, changed, and written back.
        state = StreamState(app_id, stream_id, ChatHistory(1))
        try:
            await cluster.load_status(state)
            result: dict[str, object] = {}
            announce = None
            if action is not None:
                result, announce = action(state, body)
                await cluster.save_status(state)
            snapshot = await cluster.snapshot(app_id, stream_id)
        except (ConnectionError, RedisError):
            return ApiError(503, "the cluster's Redis is unreachable, retry later").response()
        if announce is not None:
            self.hub.emit_to_stream(app_id, stream_id, *announce)
        status = self._status(state, app_id, stream_id, snapshot.viewers, snapshot.as_payload(stream_id))
        return HttpResponse.json({**status, **result})

    def _authenticate(self, request: HttpRequest, app_id: str) -> AppConfig:
        app = self.hub.verifier.app(app_id)
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        expected = app.api_key if app is not None else "\x00"
        # Constant-time comparison, also when the app is unknown.
        valid = hmac.compare_digest(presented.strip().encode(), expected.encode())
        if app is None or scheme.lower() != "bearer" or not valid:
            raise ApiError(401, "invalid API key")
        return app

    def _route(
        self, request: HttpRequest
    ) -> tuple[str, str, Callable[[StreamState, dict[str, object]], Outcome] | None, dict[str, object]]:
        """(app_id, stream_id, the action or None for a status read, the body) of a valid request."""
        parts = request.path[len(API_PREFIX) :].split("/")
        # {app_id}/streams/{stream_id}[/{action}]
        if len(parts) not in (3, 4) or parts[1] != "streams":
            raise ApiError(404, "not found")
        app = self._authenticate(request, parts[0])
        stream_id = parts[2]
        if not stream_id or len(stream_id) > MAX_STREAM_ID_LENGTH or not STREAM_ID_RE.fullmatch(stream_id):
            raise ApiError(400, "invalid stream_id")
        if len(parts) == 3:
            if request.method != "GET":
                raise _method_not_allowed("GET")
            return app.app_id, stream_id, None, {}
        action = self._actions.get(parts[3])
        if action is None:
            raise ApiError(404, "not found")
        if request.method != "POST":
            raise _method_not_allowed("POST")
        return app.app_id, stream_id, action, _json_body(request, ACTION_FIELDS[parts[3]])

    def _dispatch(
        self, app_id: str, stream_id: str, action: Callable[[StreamState, dict[str, object]], Outcome] | None,
        body: dict[str, object],
    ) -> dict[str, object]:
        if action is None:
            state = self.hub.live.peek(app_id, stream_id)
            return self._status(state, app_id, stream_id)
        state = self.hub.live.get(app_id, stream_id)
        result, announce = action(state, body)
        if announce is not None:
            self.hub.emit_to_stream(app_id, stream_id, *announce)
        return {**self._status(state, app_id, stream_id), **result}

    # --- actions ------------------------------------------------------------------------------

    def _live(self, state: StreamState, body: dict[str, object]) -> Outcome:
        title = _text(body, "title", MAX_TITLE_LENGTH, required=False)
        transition = state.go_live(title, self.hub.wall())
        if not transition.changed:
            return {"changed": False}, None
        assert state.started_at is not None
        payload: dict[str, object] = {
            "stream_id": state.stream_id, "title": title, "started_at": iso_utc(state.started_at)
        }
        return {"changed": True}, ("stream.live", payload)

    def _offline(self, state: StreamState, body: dict[str, object]) -> Outcome:
        transition = state.go_offline(self.hub.wall())
        result: dict[str, object] = {"changed": transition.changed, "duration": round(transition.duration)}
        if not transition.changed:
            return result, None
        assert state.ended_at is not None
        payload: dict[str, object] = {
            "stream_id": state.stream_id,
            "duration": round(transition.duration),
            "ended_at": iso_utc(state.ended_at),
        }
        return result, ("stream.offline", payload)

    def _error(self, state: StreamState, body: dict[str, object]) -> Outcome:
        error = _text(body, "error", MAX_ERROR_LENGTH, required=True)
        state.go_error(error)
        return {"changed": True}, ("stream.error", {"stream_id": state.stream_id, "error": error})

    # --- status -------------------------------------------------------------------------------

    def _status(
        self, state: StreamState | None, app_id: str, stream_id: str,
        viewers: int | None = None, analytics: dict[str, object] | None = None,
    ) -> dict[str, object]:
        hub = self.hub
        slow = hub.store.get_slow_mode(app_id, stream_id)
        moderation = {
            "slow_mode": {"enabled": slow is not None, "interval": 0 if slow is None else slow.interval},
            "bans": len(hub.store.bans(app_id, stream_id)),
        }
        if state is None:
            return {
                "stream_id": stream_id,
                "status": "offline",
                "title": "",
                "started_at": None,
                "ended_at": None,
                "error": None,
                "viewers": 0,
                "analytics": None,
                **moderation,
            }
        return {
            "stream_id": stream_id,
            "status": state.status.value,
            "title": state.title,
            "started_at": None if state.started_at is None else iso_utc(state.started_at),
            "ended_at": None if state.ended_at is None else iso_utc(state.ended_at),
            # Only while in error: after `error` then `offline` (or `live`) it is history, not status.
            "error": state.error if state.status is StreamStatus.ERROR else None,
            "viewers": state.viewer_count if viewers is None else viewers,
            "analytics": state.analytics.snapshot(hub.mono()).as_payload(stream_id) if analytics is None else analytics,
            **moderation,
        }
