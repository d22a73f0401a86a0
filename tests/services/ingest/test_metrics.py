"""Ingest's /metrics after real runs, read with prometheus-client's parser: every counter
says what happened (readings stored, dead letters by reason, acks, spool depth)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from iotmon_contract import DeadLetterReason, event_topic, status_topic, telemetry_topic
from iotmon_ingest import IngestService, IngestSettings
from iotmon_runtime.metrics import MetricsServerError
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from tests.services.ingest.conftest import StartIngest
from tests.services.ingest.store_proxy import Mode, StoreProxy
from tests.services.ingest.support import (
    Publisher,
    batch,
    ingest_settings,
    now_us,
    single,
    ts_from_us,
    unique,
    wait_until,
)
from tests.utils.prometheus import Scrape, scrape


def _metrics(service: IngestService) -> Scrape:
    url = service.metrics_url
    assert url is not None, "ingest serves no /metrics"
    return scrape(url)


def test_metrics_count_what_a_real_run_received_stored_and_refused(
    start_ingest: StartIngest, fresh_mosquitto: MosquittoProcess
) -> None:
    service = start_ingest()
    tenant = unique("t")
    publisher = Publisher(fresh_mosquitto)
    base = now_us() - 60_000_000
    for i in range(30):
        publisher.publish(telemetry_topic(tenant, "env-1"), single(float(i), ts_from_us(base + i)))
    gateway_batch = batch([(None, "humidity", float(i), ts_from_us(base + i)) for i in range(5)])
    publisher.publish(telemetry_topic(tenant, "gw-1"), gateway_batch)
    publisher.publish(telemetry_topic(tenant, "env-2"), b"{not json")
    publisher.publish(telemetry_topic(tenant, "env-2"), b'{"metric":"t","value":"warm"}')
    publisher.publish(
        status_topic(tenant, "env-1"), b'{"state":"online","ts":"2026-01-01T00:00:00Z"}'
    )
    read_at = ts_from_us(base).isoformat().replace("+00:00", "Z")
    tag_read = {"type": "tag_read", "ts": read_at, "seq": 1, "tag": "T1", "rssi": -50.0}
    publisher.publish(event_topic(tenant, "door-1"), json.dumps(tag_read).encode())
    publisher.flush()
    messages = 30 + 1 + 2 + 1 + 1
    assert wait_until(lambda: service.counters.acked == messages, 20), (
        f"ingest acknowledged {service.counters.acked} of {messages}"
    )

    metrics = _metrics(service)
    assert metrics.value("iotmon_ingest_messages_received_total") == messages
    assert metrics.value("iotmon_ingest_messages_acked_total") == messages
    assert metrics.value("iotmon_ingest_readings_stored_total", {"path": "direct"}) == 35
    assert metrics.value("iotmon_ingest_readings_stored_total", {"path": "replay"}) == 0
    assert metrics.value("iotmon_ingest_statuses_stored_total") == 1
    assert metrics.value("iotmon_ingest_events_stored_total") == 1
    dead = metrics.by_label("iotmon_ingest_dead_letters_total", "reason")
    assert {reason: count for reason, count in dead.items() if count} == {
        "not_json": 1,
        "schema": 1,
    }
    assert set(dead) == {reason.value for reason in DeadLetterReason}
    snapshot = service.counters
    assert metrics.value("iotmon_ingest_batches_total") == snapshot.batches > 0
    # One histogram observation per store write, the sum their total time.
    assert metrics.value("iotmon_ingest_store_write_seconds_count") == snapshot.writes > 0
    assert metrics.value("iotmon_ingest_store_write_seconds_sum") == pytest.approx(
        snapshot.write_seconds_total
    )
    assert metrics.value(
        "iotmon_ingest_store_write_seconds_bucket", {"le": "+Inf"}
    ) == metrics.value("iotmon_ingest_store_write_seconds_count")
    assert metrics.value("iotmon_ingest_spool_batches") == 0
    assert metrics.value("iotmon_ingest_store_up") == 1
    assert metrics.value("iotmon_ingest_intake_paused") == 0
    # The shared client's own statistics, labelled with its client id.
    client = service.client
    assert client is not None
    labels = {"client": client.client_id}
    assert metrics.value("iotmon_mqtt_messages_received_total", labels) == messages
    assert metrics.value("iotmon_mqtt_acks_total", labels) == messages
    assert metrics.value("iotmon_mqtt_connected", labels) == 1
    assert metrics.value("iotmon_mqtt_connects_total", labels) == 1
    assert metrics.value("iotmon_mqtt_reconnects_total", labels) == 0
    # Dead letters went out on the dead-letter topic through the same client.
    assert metrics.value("iotmon_mqtt_publishes_total", labels) >= 2
    assert metrics.value("iotmon_build_info", {"service": "ingest"}) == 1
    assert metrics.value("process_resident_memory_bytes") > 0
    publisher.close()


def test_spool_depth_and_bytes_while_the_store_is_down(
    start_ingest: StartIngest, fresh_mosquitto: MosquittoProcess, influxd: InfluxdProcess,
    database: str,
) -> None:  # fmt: skip
    proxy = StoreProxy(influxd.url).start()
    try:
        proxy.set_mode(Mode.FAIL)
        service = start_ingest(store={"url": proxy.url, "database": database})
        tenant = unique("t")
        publisher = Publisher(fresh_mosquitto)
        base = now_us() - 60_000_000
        for i in range(20):
            publisher.publish(
                telemetry_topic(tenant, "env-1"), single(float(i), ts_from_us(base + i))
            )
        publisher.flush()
        assert wait_until(lambda: service.counters.spooled_readings == 20, 20)
        metrics = _metrics(service)
        assert metrics.value("iotmon_ingest_store_up") == 0
        assert metrics.value("iotmon_ingest_store_failures_total") >= 1
        spooled = metrics.value("iotmon_ingest_spool_batches")
        assert spooled == metrics.value("iotmon_ingest_spooled_batches_total") >= 1
        assert metrics.value("iotmon_ingest_spooled_readings_total") == 20
        spool_files = list((service.settings.spool_folder).glob("*.batch.json"))
        assert metrics.value("iotmon_ingest_spool_bytes") == sum(
            p.stat().st_size for p in spool_files
        )
        assert metrics.value("iotmon_ingest_readings_stored_total", {"path": "direct"}) == 0

        proxy.set_mode(Mode.PASS)
        assert wait_until(lambda: service.counters.replayed_readings == 20, 30)
        after = _metrics(service)
        assert after.value("iotmon_ingest_readings_stored_total", {"path": "replay"}) == 20
        assert after.value("iotmon_ingest_spool_batches") == 0
        assert after.value("iotmon_ingest_spool_bytes") == 0
        assert after.value("iotmon_ingest_store_up") == 1
        publisher.close()
    finally:
        proxy.stop()


def test_only_metrics_is_served(start_ingest: StartIngest) -> None:
    service = start_ingest()
    url = service.metrics_url
    assert url is not None
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url.replace("/metrics", "/admin"), timeout=5)  # noqa: S310
    assert refused.value.code == 404


def test_metrics_stop_with_the_service(start_ingest: StartIngest) -> None:
    service = start_ingest()
    url = service.metrics_url
    assert url is not None
    service.stop()
    assert service.metrics_url is None
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)  # noqa: S310


def test_a_taken_metrics_port_fails_the_start_naming_the_variable(
    fresh_mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = ingest_settings(
            fresh_mosquitto, influxd.url, unique("db_"), tmp_path, metrics={"port": port}
        )
        service = IngestService(settings)
        with pytest.raises(MetricsServerError, match="IOTMON_INGEST_METRICS__PORT"):
            service.start()
        # Nothing was left running: the start failed before connecting.
        assert service.client is None
        assert service.run() == 2
        assert service.failure is not None
        assert str(port) in service.failure


def test_disabled_metrics_serve_nothing(start_ingest: StartIngest) -> None:
    service = start_ingest(metrics={"enabled": False})
    assert service.metrics_url is None


def test_workers_serve_metrics_on_consecutive_ports() -> None:
    settings = IngestSettings(workers=3, metrics={"port": 9301})
    assert [settings.for_worker(i).metrics.port for i in range(3)] == [9301, 9302, 9303]
    free = IngestSettings(workers=2, metrics={"port": 0})
    assert [free.for_worker(i).metrics.port for i in range(2)] == [0, 0]
    with pytest.raises(ValueError, match="65535"):
        IngestSettings(workers=2, metrics={"port": 65535}).for_worker(1)
