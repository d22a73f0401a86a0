"""A full spool pauses intake instead of stopping ingest, loses nothing, and resumes by itself.

InfluxDB is stopped, so every batch goes to the spool; the spool's disk is a
real small filesystem (a tmpfs, mounted as root) or the spool's byte bound.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from iotmon_contract import telemetry_topic
from iotmon_ingest import IngestService
from iotmon_ingest.spool import SpooledBatch
from iotmon_storage import StoreSettings, TimeSeriesStore, open_store
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from tests.services.ingest.conftest import StartIngest
from tests.services.ingest.support import (
    Publisher,
    now_us,
    single,
    stored_values,
    ts_from_us,
    unique,
    wait_until,
)

MESSAGES = 6000
DISK_BYTES = 2 * 1024 * 1024
LEFT_FREE = 256 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of the test's own."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)], check=True
    )
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[InfluxdProcess]:
    server = InfluxdProcess(tmp_path / "influxd")
    server.start()
    yield server
    server.stop()


def spooled_readings(folder: Path) -> int:
    return sum(
        len(SpooledBatch.decode(path.read_bytes()).readings) for path in folder.glob("*.batch.json")
    )


def health_command(service: IngestService) -> subprocess.CompletedProcess[str]:
    """``iotmon-ingest health`` as the container's health check runs it: same settings."""
    settings = service.settings
    env = {key: value for key, value in os.environ.items() if not key.startswith("IOTMON_")} | {
        "IOTMON_INGEST_SPOOL_DIR": str(settings.spool_dir),
        "IOTMON_INGEST_INSTANCE_ID": settings.instance_id,
        "IOTMON_INGEST_ENVIRONMENT": "test",
    }
    return subprocess.run(
        [sys.executable, "-c", "from iotmon_ingest.cli import run; run()", "health"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Scenario:
    """Ingest with its store stopped, fed MESSAGES single readings."""

    def __init__(
        self,
        start_ingest: StartIngest,
        broker: MosquittoProcess,
        influxd: InfluxdProcess,
        spool_dir: Path,
        **overrides: object,
    ) -> None:
        self.influxd = influxd
        self.database = unique("full_")
        self.tenant = unique("t")
        self.store: TimeSeriesStore = open_store(
            StoreSettings(url=influxd.url, database=self.database)
        )
        self.store.ensure_schema()
        self.service = start_ingest(
            influx_url=influxd.url,
            store={"url": influxd.url, "database": self.database},
            spool_dir=spool_dir,
            health_interval_s=0.3,
            **overrides,
        )
        client = self.service.client
        assert client is not None
        self.client = client
        self.spool = spool_dir / self.service.settings.client_id
        self.publisher = Publisher(broker)
        self.topic = telemetry_topic(self.tenant, "env-1")
        self.base = now_us() - 600_000_000
        self.expected = {("env-1", (self.base + i) * 1000): float(i) for i in range(MESSAGES)}

    def publish(self, first: int, end: int) -> None:
        for i in range(first, end):
            self.publisher.publish(self.topic, single(float(i), ts_from_us(self.base + i)))
            if i % 500 == 499:
                self.publisher.flush()
        self.publisher.flush()  # the broker has them all

    def stored(self) -> dict[tuple[str, int], float]:
        return stored_values(self.store, self.tenant, "temperature")

    def check_paused_and_nothing_acked_that_is_not_durable(self) -> int:
        service, client = self.service, self.client
        assert wait_until(lambda: service.health().intake_paused, 30), service.health()
        health = service.health()
        assert health.held_messages > 0
        assert any(r.startswith("spool full: intake paused") for r in health.reasons), health
        assert not service.stop_event.is_set()
        # Reading from the broker stopped: what was received stays put, the rest
        # waits in the broker's session.
        received = client.stats().received
        assert not wait_until(lambda: client.stats().received > received, 1.5)
        assert received < MESSAGES
        # Every acknowledged message is in the spool (the store is down); the held
        # batch and everything after it are not acknowledged.
        acks = client.stats().acks
        assert acks == spooled_readings(self.spool)
        assert acks + health.held_messages <= received
        assert not list(self.spool.glob(".*.tmp"))
        assert service.counters.spool_failures >= 1
        return acks

    def check_everything_stored_once_the_store_is_back(self) -> None:
        self.influxd.start()
        assert wait_until(lambda: self.stored() == self.expected, 60), len(self.stored())
        assert wait_until(lambda: self.service.health().spool_batches == 0, 20)
        assert not list(self.spool.glob("*.batch.json"))
        assert not (self.spool / "rejected").exists()
        assert wait_until(lambda: self.client.stats().acks == MESSAGES, 10)

    def close(self) -> None:
        self.publisher.close()
        self.store.close()


def test_a_full_spool_disk_pauses_intake_and_resumes_when_space_returns(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    own_influxd: InfluxdProcess,
    small_disk: Path,
) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (DISK_BYTES - LEFT_FREE))
    scenario = Scenario(start_ingest, fresh_mosquitto, own_influxd, small_disk)
    try:
        service = scenario.service
        own_influxd.stop()
        scenario.publish(0, MESSAGES)
        scenario.check_paused_and_nothing_acked_that_is_not_durable()

        # The health check says so: the health file (on the full disk, rewritten in
        # place) is fresh and reports the pause.
        checked = health_command(service)
        assert checked.returncode == 1, checked
        assert "spool full: intake paused" in checked.stdout
        assert "No space left on device" in checked.stdout

        filler.unlink()  # space returns; nothing else is done
        assert wait_until(lambda: scenario.client.stats().acks == MESSAGES, 30), service.health()
        assert not service.health().intake_paused
        assert spooled_readings(scenario.spool) == MESSAGES
        checked = health_command(service)
        assert checked.returncode == 0, checked
        assert "store unavailable" in checked.stdout

        scenario.check_everything_stored_once_the_store_is_back()
        assert health_command(service).returncode == 0
    finally:
        scenario.close()


def test_the_spool_byte_bound_pauses_intake_like_a_full_disk(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    own_influxd: InfluxdProcess,
    tmp_path: Path,
) -> None:
    scenario = Scenario(
        start_ingest, fresh_mosquitto, own_influxd, tmp_path / "spool", spool_max_bytes=128 * 1024
    )
    try:
        own_influxd.stop()
        scenario.publish(0, MESSAGES)
        scenario.check_paused_and_nothing_acked_that_is_not_durable()
        health = scenario.service.health()
        assert health.spool_bytes <= 128 * 1024
        assert any("spool_max_bytes reached" in reason for reason in health.reasons)
        # The store returning drains the spool and takes the held batch: intake resumes.
        scenario.check_everything_stored_once_the_store_is_back()
        assert not scenario.service.health().intake_paused
    finally:
        scenario.close()
