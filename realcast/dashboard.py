"""The live dashboard: a page at ``/dashboard`` fed over RealCast's own Socket.IO.

Layer: application (realcast); imports engineio_min's package root and realcast's modules.

The page (``static/``: HTML, CSS and a small hand-written Engine.IO/Socket.IO client, no
third-party code) connects to the namespace ``/admin`` with ``{app_id, api_key}`` (the app's
backend API key) or ``{app_id, token}`` (a token with the ``admin`` role) as its auth payload.
A signed-in socket joins its app's room and gets a ``dashboard:snapshot`` at once and then
every :data:`SNAPSHOT_INTERVAL` seconds, for as long as it stays.

A snapshot describes one app as this node sees it: streams live now (or with viewers), their
viewers, messages and reactions per minute, peak viewers, slow mode; the latest moderation
actions; this node's connections by transport. In a cluster the viewer counts are the
cluster's (each node keeps them from Redis); rates, peaks, connections and the moderation
actions are this node's (the snapshot says which node). The work is done only for apps with a
dashboard open: one pass over the node's sockets and streams a second.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any, Final

from engineio_min import ConnectRefused, HttpRequest, HttpResponse, Namespace, Server, Socket

from .analytics import AnalyticsSnapshot
from .audit import AuditTrail
from .connection import conn_of
from .handlers import auth_log
from .hub import Hub
from .ids import iso_utc
from .live import StreamState, StreamStatus

__all__ = ["ADMIN_NAMESPACE", "DASHBOARD_PATH", "SNAPSHOT_INTERVAL", "Dashboard"]

ADMIN_NAMESPACE: Final = "/admin"
DASHBOARD_PATH: Final = "/dashboard"
SNAPSHOT_INTERVAL: Final = 1.0  # seconds
MAX_STREAMS_SHOWN: Final = 100
RECENT_ACTIONS_SHOWN: Final = 20
REFUSAL: Final = "invalid credentials"  # one answer for every failure: nothing can be probed

# The page's files, served from the package: name under /dashboard/ -> (file, content type).
_ASSETS: Final = {
    "": ("dashboard.html", "text/html; charset=UTF-8"),
    "dashboard.js": ("dashboard.js", "text/javascript; charset=UTF-8"),
    "dashboard.css": ("dashboard.css", "text/css; charset=UTF-8"),
}
# The page runs only its own files and talks only to this server (and cannot be framed).
_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _room(app_id: str) -> str:
    return f"admin:{app_id}"


def _load_assets() -> dict[str, tuple[bytes, str]]:
    files = resources.files(__package__).joinpath("static")
    return {name: (files.joinpath(file).read_bytes(), kind) for name, (file, kind) in _ASSETS.items()}


class Dashboard:
    """The ``/dashboard`` page, the ``/admin`` namespace and the snapshots.

    Args:
        hub: the server's services (streams, store, verifier, the "/" namespace).
        trail: where moderation actions are kept.
        node_id: this node's name in a cluster (None on a single process).
        wall: wall-clock seconds.
    """

    def __init__(self, hub: Hub, trail: AuditTrail, node_id: str | None, wall: Callable[[], float]) -> None:
        self.hub = hub
        self.trail = trail
        self.node_id = node_id
        self.wall = wall
        self.started_at = wall()
        self._assets = _load_assets()
        self.nsp: Namespace | None = None

    def install(self, server: Server) -> None:
        """Serve the page and open the ``/admin`` namespace on ``server``."""
        server.route("GET", DASHBOARD_PATH, self._page)
        server.route("GET", DASHBOARD_PATH + "/", self._page)
        nsp = self.nsp = server.of(ADMIN_NAMESPACE)
        nsp.on_connect(self._on_connect)

    # --- HTTP ---------------------------------------------------------------------------------

    def _page(self, request: HttpRequest) -> HttpResponse:
        name = request.path[len(DASHBOARD_PATH) :].removeprefix("/")
        asset = self._assets.get(name)
        if asset is None:
            return HttpResponse.json({"error": "not found"}, 404)
        body, content_type = asset
        return HttpResponse(200, body, content_type, dict(_HEADERS))

    # --- /admin -------------------------------------------------------------------------------

    def _on_connect(self, sock: Socket, auth: dict[str, Any]) -> None:
        app_id = self._signed_in_app(auth)
        if app_id is None:
            auth_log.log(
                "authentication failure",
                logging.INFO,
                "dashboard sign-in failed",
                event="auth_failed",
                during="dashboard",
                reason="no app with this id and key" if "api_key" in auth else "not an admin token of this app",
                app_id=auth.get("app_id") if isinstance(auth.get("app_id"), str) else None,
                remote_addr=sock.remote_addr,
            )
            raise ConnectRefused(REFUSAL, {"type": "authentication_failed", "message": REFUSAL})
        sock.auth = {}  # the key or token has served its purpose
        sock.data["app_id"] = app_id
        sock.join(_room(app_id))
        sock.emit("dashboard:snapshot", self.snapshot(app_id))

    def _signed_in_app(self, auth: dict[str, Any]) -> str | None:
        """The app ``auth`` proves the right to watch: its API key, or a token with the admin role."""
        app_id, api_key, token = auth.get("app_id"), auth.get("api_key"), auth.get("token")
        if not isinstance(app_id, str):
            return None
        app = self.hub.verifier.app(app_id)
        if isinstance(api_key, str):
            expected = app.api_key if app is not None else "\x00"
            # Constant time, also for an unknown app (as the backend API does).
            valid = hmac.compare_digest(api_key.encode(), expected.encode())
            return app_id if app is not None and valid else None
        if isinstance(token, str):
            try:
                principal = self.hub.verifier.verify(token, app_id)
            except Exception:  # AuthenticationFailed, and nothing else can help the caller
                return None
            return app_id if "admin" in principal.roles else None
        return None

    def tick(self) -> None:
        """Send each app with a dashboard open its snapshot (the ticker calls this every second)."""
        nsp = self.nsp
        if nsp is None:
            return
        for app in self.hub.config.apps:
            room = _room(app.app_id)
            if nsp.room_size(room):
                nsp.emit("dashboard:snapshot", self.snapshot(app.app_id), to=room, local=True)

    # --- the figures --------------------------------------------------------------------------

    def snapshot(self, app_id: str) -> dict[str, object]:
        """What the page shows for ``app_id`` now (see the module docstring)."""
        hub = self.hub
        now_mono, now = hub.mono(), self.wall()
        by_transport: dict[str, int] = {}
        authenticated = 0
        for sock in list(hub.nsp.sockets.values()):
            principal = conn_of(sock).principal
            if principal is not None and principal.app_id == app_id:
                authenticated += 1
                transport = sock.engine.transport_name
                by_transport[transport] = by_transport.get(transport, 0) + 1
        shown = [
            state
            for state in hub.live.streams.values()
            if state.app_id == app_id and (state.status is not StreamStatus.OFFLINE or state.viewer_count > 0)
        ]
        shown.sort(key=lambda s: (s.status is not StreamStatus.LIVE, -s.viewer_count, s.stream_id))
        figures = [(state, state.analytics.snapshot(now_mono)) for state in shown]
        actions = self.trail.recent(app_id, RECENT_ACTIONS_SHOWN)
        for action in actions:
            at = action.get("at")
            if isinstance(at, float):
                action["at"] = iso_utc(at)
        return {
            "app_id": app_id,
            "node_id": self.node_id,
            "cluster": hub.cluster is not None,
            "time": iso_utc(now),
            "uptime": round(now - self.started_at, 1),
            "connections": {
                "by_transport": dict(sorted(by_transport.items())),
                "authenticated": authenticated,
                "node_total": len(hub.nsp.sockets),
            },
            "totals": {
                "streams": len(shown),
                "viewers": sum(state.viewer_count for state in shown),
                "messages_per_minute": sum(f.messages_per_minute for _, f in figures),
                "reactions_per_minute": sum(f.reactions_per_minute for _, f in figures),
            },
            "streams": [self._stream(state, f) for state, f in figures[:MAX_STREAMS_SHOWN]],
            "moderation": actions,
        }

    def _stream(self, state: StreamState, figures: AnalyticsSnapshot) -> dict[str, object]:
        slow = self.hub.store.get_slow_mode(state.app_id, state.stream_id)
        return {
            "stream_id": state.stream_id,
            "title": state.title,
            "status": state.status.value,
            "started_at": None if state.started_at is None else iso_utc(state.started_at),
            "viewers": state.viewer_count,
            "chat_users": len(state.chat_users),
            "peak_viewers": max(figures.peak_viewers, state.viewer_count),
            "messages_per_minute": figures.messages_per_minute,
            "reactions_per_minute": figures.reactions_per_minute,
            "slow_mode": {"enabled": slow is not None, "interval": 0 if slow is None else slow.interval},
        }
