"""Prometheus /metrics over real HTTP after real python-socketio clients connect, chat, get refused
and get moderated; parsed with prometheus_client's own parser. Token protection, separate port,
configuration."""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engineio_min import LatencyHistogram
from realcast.__main__ import main
from realcast.config import CliOptions, ServerConfig, describe_config, load_config
from realcast.errors import ConfigError
from realcast.workers import check_workers

from .harness import APP_A, STREAM, TIMEOUT, Harness

S = {"stream_id": STREAM}
METRICS_TOKEN = "scrape-token-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    return await asyncio.wait_for(asyncio.to_thread(_get, url, headers), TIMEOUT + 1)


async def scrape(url: str, headers: dict[str, str] | None = None) -> Samples:
    """Every sample of ``url`` (a /metrics URL), keyed by (sample name, labels without node)."""
    status, content_type, text = await get(url, headers)
    assert status == 200, text
    assert content_type.startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if family.name.startswith("realcast_") and not family.name.startswith("realcast_process"):
                assert labels.pop("node") == "standalone", sample
            samples[(sample.name, frozenset(labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
async def rc_quiet(tmp_path: Path) -> AsyncIterator[Harness]:
    """A server that sends no presence broadcasts (presence_limit 0), so broadcast counts are exact."""
    harness = Harness(tmp_path / "data", presence_limit=0)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def test_metrics_follow_clients_chat_refusals_moderation_and_the_api(rc_quiet: Harness) -> None:
    rc = rc_quiet
    url = rc.url + "/metrics"
    first = await scrape(url)
    assert value(first, "realcast_connections", transport="websocket") == 0
    assert value(first, "realcast_handshake_failures_total", reason="connect_refused") == 0

    mod = await rc.user("mod", "Mod", moderator_of=[STREAM])
    viewer = await rc.user("viewer", "Viewer")
    poller = await rc.user("poller", "Poller", transports=("polling",))
    refused = rc.peer()
    with pytest.raises(Exception):  # noqa: B017 - python-socketio raises its ConnectionError
        await refused.connect({"token": "not-a-jwt", "app_id": APP_A.app_id})
    assert (await refused.connect_errors.get())["data"]["type"] == "authentication_failed"
    for peer in (mod, viewer, poller):
        assert (await peer.call("chat:join", S))["ok"] is True

    before = await scrape(url)
    assert value(before, "realcast_connections", transport="websocket") == 2
    assert value(before, "realcast_connections", transport="polling") == 1
    assert value(before, "realcast_handshakes_total", transport="websocket") >= 2
    assert value(before, "realcast_handshakes_total", transport="polling") >= 1
    assert value(before, "realcast_handshake_failures_total", reason="connect_refused") == 1
    assert value(before, "realcast_refusals_total", type="authentication_failed") == 1
    assert value(before, "realcast_sockets") == 3
    assert value(before, "realcast_events_received_total", event="chat:join") == 3

    for n in range(4):
        assert (await viewer.call("chat:message", {"stream_id": STREAM, "message": f"m{n}"}))["ok"] is True
    for peer in (mod, viewer, poller):
        for _ in range(4):
            await peer.next("chat:message")
    await viewer.emit("no:such-event", {})
    refusal = await viewer.call("moderation:ban", {"stream_id": STREAM, "target_user_id": "mod"})
    assert refusal["error"]["type"] == "permission_denied"
    empty = await viewer.call("chat:message", {"stream_id": STREAM, "message": ""})
    assert empty["error"]["type"] == "invalid_request"

    after = await scrape(url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # 4 messages to a chat of 3: 4 broadcasts, 12 deliveries, each a frame of the same size.
    assert delta("realcast_events_received_total", event="chat:message") == 5
    assert delta("realcast_events_received_total", event="moderation:ban") == 1
    assert delta("realcast_events_received_total", event="other") == 1
    assert delta("realcast_broadcasts_total") == 4
    assert delta("realcast_deliveries_total") == 12
    assert delta("realcast_broadcast_bytes_total") > 12 * len('42["chat:message",{"message":"m0"}]')
    assert delta("realcast_broadcast_bytes_total") % 12 == 0
    assert delta("realcast_messages_sent_total") >= 4 + 4  # the broadcasts, once each, and the acks
    assert delta("realcast_refusals_total", type="permission_denied") == 1
    assert delta("realcast_refusals_total", type="invalid_request") == 1
    assert value(after, "realcast_moderation_actions_total", action="moderation:ban") == 0
    assert value(after, "realcast_dropped_frames_total") == 0
    assert value(after, "realcast_slow_consumers_cut_total", cause="client_buffer") == 0
    assert value(after, "realcast_broadcast_latency_seconds_count") >= 4 - 1  # turns that broadcast
    assert value(after, "realcast_broadcast_latency_seconds_sum") > 0

    # Moderation: a mute is counted once done; the muted user's message is refused.
    ack = await mod.call("moderation:mute", {"stream_id": STREAM, "target_user_id": "viewer", "duration": 60})
    assert ack["ok"] is True
    muted = await viewer.call("chat:message", {"stream_id": STREAM, "message": "hi"})
    assert muted["error"]["type"] == "permission_denied"
    # Backend API: going live, a bad key, an unknown route.
    status, _ = await rc.http("POST", f"/api/v1/apps/{APP_A.app_id}/streams/{STREAM}/live", {"title": "t"})
    assert status == 200
    status, _ = await rc.http("GET", f"/api/v1/apps/{APP_A.app_id}/streams/{STREAM}", api_key="wrong-key-0123456789")
    assert status == 401
    status, _ = await rc.http("GET", f"/api/v1/apps/{APP_A.app_id}/nothing")
    assert status == 404
    await poller.close()
    await asyncio.sleep(LAG_WAIT)

    last = await scrape(url)
    assert value(last, "realcast_moderation_actions_total", action="moderation:mute") == 1
    assert value(last, "realcast_refusals_total", type="permission_denied") == 2
    assert value(last, "realcast_api_requests_total", route="live", status="200") == 1
    assert value(last, "realcast_api_requests_total", route="status", status="401") == 1
    assert value(last, "realcast_api_requests_total", route="other", status="404") == 1
    assert value(last, "realcast_streams", status="live") == 1
    assert value(last, "realcast_connections", transport="polling") == 0
    assert value(last, "realcast_event_loop_lag_seconds_count") >= 1
    assert value(last, "realcast_event_loop_lag_seconds_bucket", le="+Inf") == value(
        last, "realcast_event_loop_lag_seconds_count"
    )
    assert value(last, "realcast_process_resident_memory_bytes") > 0
    assert value(last, "realcast_node_info", version=__import__("realcast").__version__) == 1
    # A single server has no cluster adapter, so no cluster families.
    assert not any(name.startswith("realcast_cluster") for name, _ in last)


LAG_WAIT = 0.6  # more than metrics.LAG_INTERVAL: at least one event-loop lag sample


async def test_an_unparseable_event_counts_as_other(rc_quiet: Harness) -> None:
    """Engine.IO-level checks: a bad handshake is a failure by reason, bad JSON an "other" event."""
    rc = rc_quiet
    status, _, _ = await get(rc.url + "/socket.io/?EIO=3&transport=polling")
    assert status == 400
    status, _, _ = await get(rc.url + "/socket.io/?EIO=4&transport=carrier-pigeon")
    assert status == 400
    samples = await scrape(rc.url + "/metrics")
    assert value(samples, "realcast_handshake_failures_total", reason="unsupported_protocol_version") == 1
    assert value(samples, "realcast_handshake_failures_total", reason="transport_unknown") == 1


async def test_metrics_token_is_required_when_configured(tmp_path: Path) -> None:
    rc = Harness(tmp_path / "data", metrics_token=METRICS_TOKEN)
    await rc.start()
    try:
        url = rc.url + "/metrics"
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": METRICS_TOKEN}):
            status, _, body = await get(url, headers)
            assert status == 401, headers
            assert "metrics_token" in body
        await rc.user("viewer", "Viewer")
        samples = await scrape(url, {"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert value(samples, "realcast_connections", transport="websocket") == 1
    finally:
        await rc.stop()


async def test_metrics_on_a_separate_port_only(tmp_path: Path) -> None:
    rc = Harness(tmp_path / "data", metrics_port=0)
    await rc.start()
    try:
        assert rc.app is not None and rc.app.metrics is not None
        metrics_port = rc.app.metrics.port
        assert metrics_port not in (0, int(rc.url.rsplit(":", 1)[1]))
        status, _, _ = await get(rc.url + "/metrics")
        assert status == 404
        await rc.user("viewer", "Viewer")
        samples = await scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        assert value(samples, "realcast_connections", transport="websocket") == 1
        # The metrics listener serves no Socket.IO.
        status, _, _ = await get(f"http://127.0.0.1:{metrics_port}/socket.io/?EIO=4&transport=polling")
        assert status == 404
    finally:
        await rc.stop()
    # Its port is closed with the server.
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", metrics_port)


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    rc = Harness(tmp_path / "data", metrics=False)
    await rc.start()
    try:
        status, _, _ = await get(rc.url + "/metrics")
        assert status == 404
    finally:
        await rc.stop()


def test_metrics_settings_from_file_environment_and_flags(tmp_path: Path, capsys: Any) -> None:
    config_file = tmp_path / "realcast.toml"
    config_file.write_text(f'[server]\nmetrics_port = 9100\nmetrics_token = "{METRICS_TOKEN}"\n')
    config = load_config(CliOptions(config=config_file), env={})
    assert (config.metrics, config.metrics_port, config.metrics_token) == (True, 9100, METRICS_TOKEN)
    env = {"REALCAST_METRICS_PORT": "9200", "REALCAST_METRICS_HOST": "10.1.2.3", "REALCAST_METRICS": "off"}
    config = load_config(CliOptions(config=config_file), env=env)
    assert (config.metrics, config.metrics_port, config.metrics_host) == (False, 9200, "10.1.2.3")
    config = load_config(CliOptions(config=config_file, metrics_port=9300, metrics=True), env=env)
    assert (config.metrics, config.metrics_port) == (True, 9300)
    # The token is a secret: never printed.
    assert 'metrics_token = "(set)"' in describe_config(config)
    assert METRICS_TOKEN not in "\n".join(describe_config(config))
    for env, message in [
        ({"REALCAST_METRICS_TOKEN": "short"}, "REALCAST_METRICS_TOKEN must be at least 16 characters"),
        ({"REALCAST_METRICS_PORT": "70000"}, "REALCAST_METRICS_PORT must be in 0..65535"),
        ({"REALCAST_METRICS_PORT": "x"}, "REALCAST_METRICS_PORT must be an integer"),
        ({"REALCAST_METRICS_PORT": "8080"}, "REALCAST_METRICS_PORT must differ from port"),
        ({"REALCAST_METRICS": "maybe"}, "REALCAST_METRICS must be true or false"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(CliOptions(), env=env)
    assert ServerConfig(port=8080, metrics_port=8080, metrics_host="127.0.0.2").metrics_port == 8080
    code = main(["check-config", "--data-dir", str(tmp_path / "d"), "--metrics-port", "9400", "--no-metrics"])
    out = capsys.readouterr().out
    assert code == 0
    assert "metrics = false" in out and "metrics_port = 9400" in out and "metrics_token = null" in out


def test_each_worker_gets_its_own_metrics_port() -> None:
    base = ServerConfig(port=8080, workers=3, redis_url="redis://127.0.0.1:1/0", database_url="postgresql://x/y")
    check_workers(replace(base, metrics_port=9100))  # 9100..9102: fine
    with pytest.raises(ConfigError, match=re.escape("ports 8079..8081, which must be at most 65535 and not include")):
        check_workers(replace(base, metrics_port=8079))
    with pytest.raises(ConfigError, match=re.escape("ports 65534..65536")):
        check_workers(replace(base, metrics_port=65534))


def test_latency_buckets_count_a_bound_as_within_it() -> None:
    histogram = LatencyHistogram((0.001, 0.01))
    for seconds in (0.0005, 0.001, 0.002, 0.5):
        histogram.observe(seconds)
    assert histogram.counts == [2, 1, 1]  # le=0.001 holds 0.001 itself, as Prometheus buckets do
    assert histogram.total == pytest.approx(0.5035)
