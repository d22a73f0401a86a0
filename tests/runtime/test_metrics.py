"""The runtime's metrics layer: families from snapshots, the MQTT client's statistics after a
real exchange with mosquitto, and the small /metrics server, all read back with
prometheus-client's parser."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client import generate_latest

from iotmon_runtime.metrics import (
    Histogram,
    HistogramSnapshot,
    MetricsServer,
    MetricsSettings,
    SnapshotCollector,
    counter,
    histogram,
    labelled_counter,
    mqtt_client_families,
    service_registry,
)
from iotmon_runtime.mqtt import MqttClient, MqttSettings
from iotmon_tools.localstack import MosquittoProcess
from tests.services.ingest.support import unique, wait_until
from tests.utils.prometheus import parse, scrape


def test_histogram_buckets_are_cumulative_and_bounds_inclusive() -> None:
    kept = Histogram(bounds=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        kept.observe(value)
    frozen = HistogramSnapshot.empty((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        frozen = frozen.observe(value)
    assert kept.snapshot() == frozen
    registry = service_registry("unit", "iotmon-runtime")
    registry.register(SnapshotCollector(lambda: [histogram("iotmon_t_seconds", "t", frozen)]))
    scraped = parse(generate_latest(registry).decode())
    buckets = scraped.by_label("iotmon_t_seconds_bucket", "le")
    assert buckets == {"0.1": 2, "1.0": 3, "+Inf": 4}
    assert scraped.value("iotmon_t_seconds_count") == 4
    assert scraped.value("iotmon_t_seconds_sum") == pytest.approx(3.65)


def test_collectors_are_read_on_each_scrape_not_before() -> None:
    values = {"a": 1}
    registry = service_registry("unit", "iotmon-runtime")
    registry.register(
        SnapshotCollector(
            lambda: [
                counter("iotmon_things", "things", sum(values.values())),
                labelled_counter("iotmon_kinds", "by kind", "kind", values),
            ]
        )
    )
    assert parse(generate_latest(registry).decode()).value("iotmon_things_total") == 1
    values["b"] = 4
    scraped = parse(generate_latest(registry).decode())
    assert scraped.value("iotmon_things_total") == 5
    assert scraped.by_label("iotmon_kinds_total", "kind") == {"a": 1, "b": 4}
    assert scraped.value("iotmon_build_info", {"service": "unit"}) == 1


def test_mqtt_client_statistics_after_a_real_exchange(mosquitto: MosquittoProcess) -> None:
    settings = MqttSettings(host=mosquitto.host, port=mosquitto.port)
    receiver = MqttClient(settings, client_id=unique("rx-"))
    sender = MqttClient(settings, client_id=unique("tx-"))
    topic = f"iotmon/v1/{unique('t')}/env-1/telemetry"
    got: list[bytes] = []
    receiver.subscribe(topic, lambda message: got.append(message.payload))
    receiver.start()
    sender.start()
    try:
        assert receiver.wait_subscribed(10)
        assert sender.wait_connected(10)
        for i in range(5):
            assert sender.publish(topic, f"{i}".encode())
        assert sender.flush(10)
        assert wait_until(lambda: len(got) == 5, 10)
        registry = service_registry("unit", "iotmon-runtime")
        registry.register(SnapshotCollector(lambda: mqtt_client_families([receiver, sender])))
        scraped = parse(generate_latest(registry).decode())
    finally:
        sender.stop()
        receiver.stop()
    rx, tx = {"client": receiver.client_id}, {"client": sender.client_id}
    assert scraped.value("iotmon_mqtt_messages_received_total", rx) == 5
    assert scraped.value("iotmon_mqtt_messages_received_total", tx) == 0
    assert scraped.value("iotmon_mqtt_publishes_total", tx) == 5
    assert scraped.value("iotmon_mqtt_publishes_completed_total", tx) == 5
    assert scraped.value("iotmon_mqtt_connected", rx) == 1
    assert scraped.value("iotmon_mqtt_connects_total", rx) == 1
    assert scraped.value("iotmon_mqtt_reconnects_total", rx) == 0
    assert scraped.value("iotmon_mqtt_held_messages", tx) == 0


def test_server_serves_its_registry_on_metrics_only() -> None:
    registry = service_registry("unit", "iotmon-runtime")
    registry.register(SnapshotCollector(lambda: [counter("iotmon_served", "served", 7)]))
    server = MetricsServer(registry, MetricsSettings(port=0))
    server.start()
    try:
        assert scrape(server.url).value("iotmon_served_total") == 7
        with pytest.raises(urllib.error.HTTPError) as other:
            urllib.request.urlopen(server.url.replace("/metrics", "/"), timeout=5)  # noqa: S310
        assert other.value.code == 404
    finally:
        server.stop()
    assert not server.running


def test_a_disabled_server_binds_nothing() -> None:
    server = MetricsServer(
        service_registry("unit", "iotmon-runtime"), MetricsSettings(enabled=False)
    )
    server.start()
    assert not server.running
