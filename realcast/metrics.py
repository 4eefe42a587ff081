"""Prometheus metrics at ``/metrics``: read from plain counters when scraped, never kept on the hot path.

Layer: application (realcast); imports engineio_min's package root, ``prometheus_client`` and
realcast's modules.

Theory of operation. The server already counts what it does in plain ints and dicts: engineio_min
per endpoint (handshakes, refused requests, slow consumers cut), per namespace (events received by
name), per adapter (broadcasts, deliveries, bytes, dropped frames; a cluster adapter's ``stats``),
the buffer budget, and realcast's :class:`~realcast.counters.AppCounters` (refusals, moderation
actions, backend API requests). An increment costs a few nanoseconds per broadcast and nothing per
recipient. :class:`RealcastCollector` is a custom ``prometheus_client`` collector: at scrape time
``collect()`` reads those numbers (and walks the sessions and streams for the gauges) and yields
metric families. No ``Counter.inc()`` runs while the server delivers messages.

Two histograms are sampled, not counted per message: the event-loop lag (a timer every
``LAG_INTERVAL`` notes how late it fires) and the broadcast latency, from the first packet a loop
turn queues to the last write of that turn's flush (engineio_min's ``Flusher.latency``: two clock
reads per loop turn that broadcast).

Where: on the server's own port (``Server.route``), or, with ``metrics_port`` set, only on a second
listener (``metrics_host``:``metrics_port``). With ``metrics_token`` set a scrape must carry
``Authorization: Bearer <token>`` (else 401). Every sample carries the label ``node`` (the cluster
node id, or ``standalone``).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from engineio_min import HttpRequest, HttpResponse, LatencyHistogram, Server

from . import __version__
from .live import StreamStatus

if TYPE_CHECKING:
    from .app import RealcastApp

__all__ = ["BROADCAST_LATENCY_BUCKETS", "LAG_INTERVAL", "METRICS_PATH", "Metrics", "RealcastCollector"]

METRICS_PATH: Final = "/metrics"
# Seconds between event-loop lag samples: often enough to see a stall, rare enough to cost nothing.
LAG_INTERVAL: Final = 0.5
LOOP_LAG_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BROADCAST_LATENCY_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
# Engine.IO error codes (SPEC, "Errors") as handshake-failure reasons.
_ENGINE_ERRORS: Final = {
    0: "transport_unknown",
    1: "session_id_unknown",
    2: "bad_handshake_method",
    3: "bad_request",
    4: "origin_forbidden",
    5: "unsupported_protocol_version",
}
# Socket.IO CONNECT refusals (engineio_min's Server.connect_refusals) as handshake-failure reasons.
_CONNECT_REFUSALS: Final = {"refused": "connect_refused", "hook_failed": "connect_failed",
                            "invalid_namespace": "invalid_namespace"}  # fmt: skip
_CLUSTER_STATS: Final = ("published", "dropped", "received", "malformed")
OTHER_EVENT: Final = "other"


class _Families:
    """Builds metric families that all carry the ``node`` label."""

    def __init__(self, node: str) -> None:
        self.node = node

    def gauge(self, name: str, doc: str, values: Mapping[tuple[str, ...], float] | float,
              labels: Iterable[str] = ()) -> GaugeMetricFamily:  # fmt: skip
        family = GaugeMetricFamily(name, doc, labels=["node", *labels])
        for key, value in _items(values):
            family.add_metric([self.node, *key], value)
        return family

    def counter(self, name: str, doc: str, values: Mapping[tuple[str, ...], float] | float,
                labels: Iterable[str] = ()) -> CounterMetricFamily:  # fmt: skip
        family = CounterMetricFamily(name, doc, labels=["node", *labels])
        for key, value in _items(values):
            family.add_metric([self.node, *key], value)
        return family

    def histogram(self, name: str, doc: str, histogram: LatencyHistogram) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, doc, labels=["node"])
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip([*map(str, histogram.bounds), "+Inf"], histogram.counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        family.add_metric([self.node], buckets, histogram.total)
        return family


def _items(values: Mapping[tuple[str, ...], float] | float) -> Iterator[tuple[tuple[str, ...], float]]:
    if isinstance(values, int | float):
        yield (), values
    else:
        yield from values.items()


class RealcastCollector(Collector):
    """Reads one running server's counters when scraped (see the module docstring)."""

    def __init__(self, app: RealcastApp, loop_lag: LatencyHistogram, broadcast_latency: LatencyHistogram) -> None:
        self.app = app
        self.loop_lag = loop_lag
        self.broadcast_latency = broadcast_latency

    def collect(self) -> Iterator[Metric]:
        app = self.app
        f = _Families(app.node_id or "standalone")
        yield f.gauge("realcast_node_info", "This process: its node id and version", {(__version__,): 1}, ["version"])
        yield from self._connections(f, app.server)
        yield from self._traffic(f, app.server)
        yield from self._application(f, app)
        yield f.histogram("realcast_event_loop_lag_seconds",
                          f"How late a timer due every {LAG_INTERVAL} s fires (event-loop stalls)", self.loop_lag)
        yield f.histogram("realcast_broadcast_latency_seconds",
                          "Per loop turn that broadcast: from the first packet queued (the received event's "
                          "handler emitting) to the last recipient's write", self.broadcast_latency)  # fmt: skip
        yield from self._cluster(f, app)

    def _connections(self, f: _Families, server: Server) -> Iterator[Metric]:
        transports = {"polling": 0, "websocket": 0}
        handshakes: dict[tuple[str, ...], float] = {("polling",): 0, ("websocket",): 0}
        failures: dict[tuple[str, ...], float] = {(reason,): 0 for reason in
                                                   [*_ENGINE_ERRORS.values(), *_CONNECT_REFUSALS.values()]}  # fmt: skip
        cuts = 0
        for endpoint in server.endpoints:
            for session in list(endpoint.sessions.values()):
                if not session.closed:
                    transports[session.transport_name] = transports.get(session.transport_name, 0) + 1
            for transport, count in endpoint.handshakes.items():
                handshakes[(transport,)] = handshakes.get((transport,), 0) + count
            for code, count in endpoint.handshake_errors.items():
                key = (_ENGINE_ERRORS.get(code, f"engineio_{code}"),)
                failures[key] = failures.get(key, 0) + count
            cuts += endpoint.slow_consumer_cuts
        for reason, count in server.connect_refusals.items():
            key = (_CONNECT_REFUSALS.get(reason, reason),)
            failures[key] = failures.get(key, 0) + count
        yield f.gauge("realcast_connections", "Engine.IO sessions open, by current transport",
                      {(t,): n for t, n in transports.items()}, ["transport"])  # fmt: skip
        yield f.gauge("realcast_tcp_connections", "TCP connections open (HTTP and WebSocket)", server.connection_count)
        yield f.counter("realcast_handshakes", "Engine.IO sessions opened, by first transport", handshakes,
                        ["transport"])  # fmt: skip
        yield f.counter("realcast_handshake_failures", "Engine.IO requests refused (by error) and Socket.IO "
                        "CONNECTs refused (connect_refused: authentication)", failures, ["reason"])  # fmt: skip
        budget_cuts = server.budget.cut_count
        yield f.counter("realcast_slow_consumers_cut", "Clients disconnected for not reading: over their own "
                        "buffer cap (client_buffer) or to keep the process-wide budget (budget)",
                        {("client_buffer",): max(cuts - budget_cuts, 0), ("budget",): budget_cuts},
                        ["cause"])  # fmt: skip
        yield f.gauge("realcast_buffered_bytes", "Bytes buffered for backlogged clients at the last budget sweep",
                      server.budget.last_total)  # fmt: skip

    def _traffic(self, f: _Families, server: Server) -> Iterator[Metric]:
        events: dict[tuple[str, ...], float] = {(OTHER_EVENT,): server.invalid_event_count}
        broadcasts = deliveries = sent_bytes = dropped = rooms = sockets = 0
        for namespace in list(server.namespaces.values()):
            for name, count in namespace.event_counts.items():
                events[(name,)] = events.get((name,), 0) + count
            events[(OTHER_EVENT,)] += namespace.unhandled_event_count
            adapter = namespace.adapter
            broadcasts += adapter.broadcasts
            deliveries += adapter.deliveries
            sent_bytes += adapter.broadcast_bytes
            dropped += adapter.dropped_frames
            rooms += len(adapter.rooms)
            sockets += len(namespace.sockets)
        yield f.gauge("realcast_sockets", "Socket.IO sockets connected (all namespaces)", sockets)
        yield f.gauge("realcast_rooms", "Rooms with at least one member on this node", rooms)
        yield f.counter("realcast_events_received", "Socket.IO events received, by name (other: no handler, "
                        "or not valid JSON)", events, ["event"])  # fmt: skip
        yield f.counter("realcast_messages_sent", "Socket.IO packets encoded for sending (a broadcast counts once)",
                        server.encode_count)  # fmt: skip
        yield f.counter("realcast_broadcasts", "Broadcasts delivered on this node (those of other nodes included)",
                        broadcasts)  # fmt: skip
        yield f.counter("realcast_deliveries", "Broadcast packets queued for a recipient (one per recipient)",
                        deliveries)  # fmt: skip
        yield f.counter("realcast_broadcast_bytes", "Bytes of broadcast WebSocket frames queued, over all recipients",
                        sent_bytes)  # fmt: skip
        yield f.counter("realcast_dropped_frames", "Droppable frames (typing, reactions) skipped for slow consumers",
                        dropped)  # fmt: skip

    def _application(self, f: _Families, app: RealcastApp) -> Iterator[Metric]:
        hub = app.hub
        streams: dict[tuple[str, ...], float] = {(s.value,): 0 for s in StreamStatus}
        viewers = 0
        for state in list(hub.live.streams.values()):
            streams[(state.status.value,)] += 1
            viewers += state.viewer_count
        counters = hub.counters
        yield f.gauge("realcast_streams", "Streams known to this node, by status", streams, ["status"])
        yield f.gauge("realcast_viewers", "Viewers of all streams on this node", viewers)
        yield f.counter("realcast_refusals", "Client actions refused, by error type",
                        {(t,): n for t, n in counters.refusals.items()}, ["type"])  # fmt: skip
        yield f.counter("realcast_moderation_actions", "Moderation actions done, by event",
                        {(k,): n for k, n in counters.moderation_actions.items()}, ["action"])  # fmt: skip
        yield f.counter("realcast_api_requests", "Backend HTTP API requests, by route and status",
                        {(route, str(status)): n for (route, status), n in counters.api_requests.items()},
                        ["route", "status"])  # fmt: skip

    def _cluster(self, f: _Families, app: RealcastApp) -> Iterator[Metric]:
        stats: Mapping[str, int] | None = getattr(app.hub.nsp.adapter, "stats", None)
        if stats is None:
            return
        yield f.counter("realcast_cluster_messages", "Cluster (Redis) envelopes: published, dropped (queue full "
                        "or Redis error), received, malformed", {(k,): stats.get(k, 0) for k in _CLUSTER_STATS},
                        ["outcome"])  # fmt: skip
        yield f.counter("realcast_cluster_reconnects", "Reconnections to the cluster's Redis",
                        stats.get("reconnects", 0))  # fmt: skip
        yield f.gauge("realcast_cluster_healthy", "1 while the link to the other nodes is up",
                      1 if app.hub.nsp.adapter.healthy else 0)  # fmt: skip


class Metrics:
    """The metrics of one :class:`~realcast.app.RealcastApp`: the collector, ``/metrics``, and the samplers.

    ``start()`` once the app listens, ``stop()`` when it stops; ``port`` is the separate listener's
    bound port (0 when ``/metrics`` is on the server's own port).
    """

    def __init__(self, app: RealcastApp) -> None:
        config = app.config
        self.app = app
        self.token = config.metrics_token
        self.loop_lag = LatencyHistogram(LOOP_LAG_BUCKETS)
        self.broadcast_latency = LatencyHistogram(BROADCAST_LATENCY_BUCKETS)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RealcastCollector(app, self.loop_lag, self.broadcast_latency))
        ProcessCollector(namespace="realcast", registry=self.registry)  # RSS, CPU, open fds
        self.listener: Server | None = None
        self.port = 0
        self._lag_timer: asyncio.TimerHandle | None = None
        self._lag_due = 0.0
        if config.metrics_port is None:
            app.server.route("GET", METRICS_PATH, self.handle)
        else:
            self.listener = Server(path=None)
            self.listener.route("GET", METRICS_PATH, self.handle)

    def handle(self, request: HttpRequest) -> HttpResponse:
        """``GET /metrics``: the text exposition format, or 401 without the configured token."""
        if self.token is not None:
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self.token.encode()):
                return HttpResponse.json({"error": "a bearer token is required (metrics_token)"}, 401,
                                         {"WWW-Authenticate": 'Bearer realm="realcast-metrics"'})  # fmt: skip
        return HttpResponse(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)

    async def start(self) -> None:
        """Start sampling; open the separate listener if one is configured."""
        config = self.app.config
        self.app.server.flusher.latency = self.broadcast_latency
        loop = asyncio.get_running_loop()
        self._lag_due = loop.time() + LAG_INTERVAL
        self._lag_timer = loop.call_at(self._lag_due, self._sample_lag)
        if self.listener is not None:
            assert config.metrics_port is not None
            self.port = await self.listener.start(config.metrics_host or config.host, config.metrics_port)

    async def stop(self) -> None:
        if self._lag_timer is not None:
            self._lag_timer.cancel()
            self._lag_timer = None
        self.app.server.flusher.latency = None
        if self.listener is not None:
            await self.listener.shutdown()

    def _sample_lag(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.loop_lag.observe(max(now - self._lag_due, 0.0))
        self._lag_due = now + LAG_INTERVAL
        self._lag_timer = loop.call_at(self._lag_due, self._sample_lag)
