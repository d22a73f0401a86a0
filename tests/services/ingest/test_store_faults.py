"""A store that takes a write and never answers (a paused or hung influxd) costs ingest one
``store.timeout_s``, not 30 s per batch, and does not silence its health file or its stats."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from iotmon_contract import telemetry_topic
from iotmon_ingest.health import read_health
from iotmon_storage import TimeSeriesStore
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from tests.services.ingest.conftest import StartIngest
from tests.services.ingest.store_proxy import Mode, StoreProxy
from tests.services.ingest.support import (
    Publisher,
    now_us,
    single,
    stored_values,
    ts_from_us,
    unique,
    wait_until,
)


def test_a_hung_store_write_times_out_into_the_spool_while_health_and_stats_go_on(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    influxd: InfluxdProcess,
    store: TimeSeriesStore,
    database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = StoreProxy(influxd.url).start()
    try:
        tenant = unique("t")
        service = start_ingest(
            store={"url": proxy.url, "database": database, "timeout_s": 3},
            health_interval_s=0.2,
            stats_interval_s=0.5,
        )
        client = service.client
        assert client is not None
        publisher = Publisher(fresh_mosquitto)
        topic = telemetry_topic(tenant, "env-1")
        base = now_us() - 60_000_000
        expected = {("env-1", (base + i) * 1000): float(i) for i in range(200)}
        proxy.set_mode(Mode.HOLD)
        for i in range(100):
            publisher.publish(topic, single(float(i), ts_from_us(base + i)))
        publisher.flush()

        held = proxy.wait_held()
        assert held, "ingest never wrote"
        held_at = time.monotonic()
        caplog.set_level(logging.INFO, logger="iotmon_ingest.monitor")
        caplog.clear()
        # While the write hangs, the health file is rewritten and says so.
        path = service.settings.health_file
        first = read_health(path).written_at
        assert wait_until(
            lambda: any("store write pending" in r for r in read_health(path).reasons), 3
        ), read_health(path)
        assert read_health(path).written_at > first
        assert client.stats().acks == 0  # not durable yet: not acknowledged
        # One timeout later the batch is in the spool and acknowledged.
        assert wait_until(lambda: client.stats().acks == 100, 10)
        assert time.monotonic() - held_at < 10
        stats_lines = [r for r in caplog.records if r.getMessage().startswith("ingest: received=")]
        assert len(stats_lines) >= 2, "the stats went quiet while the write hung"
        assert service.counters.spooled_readings == 100
        reasons = service.health().reasons
        assert any(r.startswith("store unavailable: ") and "timed out" in r for r in reasons)

        # The store answers again: the spool is replayed, later batches stored.
        proxy.drop_held()
        proxy.set_mode(Mode.PASS)
        for i in range(100, 200):
            publisher.publish(topic, single(float(i), ts_from_us(base + i)))
        publisher.close()
        assert wait_until(lambda: stored_values(store, tenant, "temperature") == expected, 30)
        assert wait_until(lambda: service.health().reasons == (), 10), service.health()
    finally:
        proxy.stop()


def test_health_file_of_a_working_ingest_says_ok(start_ingest: StartIngest, tmp_path: Path) -> None:
    service = start_ingest(health_interval_s=0.2)
    assert wait_until(lambda: read_health(service.settings.health_file).state.value == "ok", 5)
    health = read_health(service.settings.health_file)
    assert health.client_id == service.settings.client_id
    assert not health.intake_paused
    assert service.settings.health_file.parent == tmp_path / "spool"
