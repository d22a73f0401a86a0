"""`iotmon ingest` SIGKILLed mid-stream loses nothing: ack after write, persistent session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from iotmon_contract import telemetry_topic
from iotmon_storage import StoreSettings, TimeSeriesStore, open_store
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from tests.services.ingest.support import (
    Publisher,
    now_us,
    single,
    stored_values,
    ts_from_us,
    unique,
    wait_until,
)

MESSAGES = 20_000


def start_ingest_process(
    broker: MosquittoProcess,
    influx_url: str,
    database: str,
    tmp_path: Path,
    log: Path,
    *arguments: str,
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "IOTMON_INGEST_MQTT__HOST": broker.host,
        "IOTMON_INGEST_MQTT__PORT": str(broker.port),
        "IOTMON_INGEST_MQTT__CLIENT_ID": "kill-test-ingest",
        "IOTMON_INGEST_STORE__URL": influx_url,
        "IOTMON_INGEST_STORE__DATABASE": database,
        "IOTMON_INGEST_SPOOL_DIR": str(tmp_path / "spool"),
        "IOTMON_INGEST_REGISTRY__URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "IOTMON_INGEST_BATCH_SIZE": "1000",
        "IOTMON_INGEST_FLUSH_INTERVAL_S": "0.05",
        "IOTMON_INGEST_STATS_INTERVAL_S": "2",
    }
    code = "from iotmon_tools.cli.main import run; run()"
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-c", code, "ingest", *arguments],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[InfluxdProcess]:
    """An influxd of the test's own: these tests pause and stop it."""
    server = InfluxdProcess(tmp_path / "influxd")
    server.start()
    yield server
    if server.pid is not None:
        os.kill(server.pid, signal.SIGCONT)
    server.stop()


def _warm_up(publisher: Publisher, store: TimeSeriesStore, tenant: str, topic: str) -> bool:
    """Until a reading arrives the subscription (and so the session) may not exist."""

    def warmed_up() -> bool:
        publisher.publish(topic, single(1.0, ts_from_us(now_us()), metric="humidity"))
        return store.count_readings(tenant, "humidity") > 0

    return wait_until(warmed_up, 20, interval=0.3)


def _settled_count(count: Callable[[], int]) -> int:
    """The count once it stops changing (InfluxDB finishing what it had been sent)."""
    previous = -1
    while (current := count()) != previous:
        previous = current
        time.sleep(0.5)
    return current


def test_sigkill_mid_stream_then_restart_stores_every_reading_exactly(
    fresh_mosquitto: MosquittoProcess, own_influxd: InfluxdProcess, tmp_path: Path
) -> None:
    database = unique("kill_")
    tenant = unique("t")
    store = open_store(StoreSettings(url=own_influxd.url, database=database))
    store.ensure_schema()
    log = tmp_path / "ingest.log"
    topic = telemetry_topic(tenant, "env-1")
    base = now_us() - 600_000_000
    publisher = Publisher(fresh_mosquitto)
    influxd_pid = own_influxd.pid
    assert influxd_pid is not None

    def count() -> int:
        return store.count_readings(tenant, "temperature")

    def publish(first: int, end: int) -> None:
        for i in range(first, end):
            publisher.publish(topic, single(i * 0.25, ts_from_us(base + i)))
            if i % 1000 == 0:
                publisher.flush()
        publisher.flush()  # every one of them is now the broker's, acknowledged

    ingest = start_ingest_process(fresh_mosquitto, own_influxd.url, database, tmp_path, log)
    try:
        assert _warm_up(publisher, store, tenant, topic), log.read_text()
        publish(0, MESSAGES // 4)
        assert wait_until(lambda: count() > 0, 20)
        # Hold InfluxDB still: ingest keeps receiving but cannot write, so what it
        # holds when it dies is received and unacknowledged.
        os.kill(influxd_pid, signal.SIGSTOP)
        publish(MESSAGES // 4, MESSAGES // 2)
        time.sleep(1.0)
        ingest.send_signal(signal.SIGKILL)
        ingest.wait(10)
        os.kill(influxd_pid, signal.SIGCONT)
        stored_at_kill = _settled_count(count)
        # Messages the broker had acknowledged were not stored when ingest died.
        assert stored_at_kill < MESSAGES // 2
        # Published while ingest is down: the broker queues them in its session.
        publish(MESSAGES // 2, MESSAGES)

        ingest = start_ingest_process(fresh_mosquitto, own_influxd.url, database, tmp_path, log)
        assert wait_until(lambda: count() >= MESSAGES, 45), (count(), log.read_text()[-3000:])
        stored = stored_values(store, tenant, "temperature")
        assert stored == {("env-1", (base + i) * 1000): i * 0.25 for i in range(MESSAGES)}
    finally:
        publisher.close()
        ingest.send_signal(signal.SIGTERM)
        assert ingest.wait(30) == 0, log.read_text()[-3000:]
        store.close()
    text = log.read_text()
    assert "shutting down" in text
    assert "(session resumed)" in text, text


def test_sigkill_while_spooling_then_restart_replays_the_spool(
    fresh_mosquitto: MosquittoProcess, own_influxd: InfluxdProcess, tmp_path: Path
) -> None:
    database = unique("spool_")
    tenant = unique("t")
    store = open_store(StoreSettings(url=own_influxd.url, database=database))
    store.ensure_schema()
    log = tmp_path / "ingest.log"
    topic = telemetry_topic(tenant, "env-1")
    base = now_us() - 600_000_000
    messages = 5000
    publisher = Publisher(fresh_mosquitto)
    spool = tmp_path / "spool" / "kill-test-ingest"

    def spooled() -> list[Path]:
        return sorted(spool.glob("*.batch.json"))

    ingest = start_ingest_process(fresh_mosquitto, own_influxd.url, database, tmp_path, log)
    try:
        assert _warm_up(publisher, store, tenant, topic), log.read_text()
        own_influxd.stop()
        for i in range(messages):
            publisher.publish(topic, single(i * 0.5, ts_from_us(base + i)))
        publisher.flush()
        # Spooled batches are acknowledged: after the kill only the spool holds them.
        assert wait_until(lambda: len(spooled()) >= 2, 30), log.read_text()[-3000:]
        ingest.send_signal(signal.SIGKILL)
        ingest.wait(10)
        assert spooled()

        own_influxd.start()
        ingest = start_ingest_process(fresh_mosquitto, own_influxd.url, database, tmp_path, log)
        assert wait_until(lambda: store.count_readings(tenant, "temperature") >= messages, 45), (
            log.read_text()[-3000:]
        )
        stored = stored_values(store, tenant, "temperature")
        assert stored == {("env-1", (base + i) * 1000): i * 0.5 for i in range(messages)}
        assert wait_until(lambda: not spooled(), 10), spooled()
    finally:
        publisher.close()
        ingest.send_signal(signal.SIGTERM)
        assert ingest.wait(30) == 0, log.read_text()[-3000:]
        store.close()
    assert "spool drained" in log.read_text()


def test_two_worker_processes_share_the_stream_and_stop_cleanly(
    fresh_mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    database = unique("workers_")
    tenant = unique("t")
    store = open_store(StoreSettings(url=influxd.url, database=database))
    store.ensure_schema()
    log = tmp_path / "ingest.log"
    topic = telemetry_topic(tenant, "env-1")
    publisher = Publisher(fresh_mosquitto)
    ingest = start_ingest_process(
        fresh_mosquitto, influxd.url, database, tmp_path, log, "--workers", "2"
    )
    try:

        def both_subscribed() -> bool:
            text = log.read_text()
            return "worker=w0" in text and "worker=w1" in text and text.count("(session new)") == 2

        assert wait_until(both_subscribed, 30), log.read_text()
        base = now_us() - 60_000_000
        for i in range(4000):
            publisher.publish(topic, single(float(i), ts_from_us(base + i)))
        publisher.flush()
        assert wait_until(lambda: store.count_readings(tenant, "temperature") == 4000, 30)
    finally:
        publisher.close()
        ingest.send_signal(signal.SIGTERM)
        assert ingest.wait(60) == 0, log.read_text()[-3000:]
        store.close()
    # Each worker got its share of the shared subscription.
    finals = [line for line in log.read_text().splitlines() if "received=" in line]
    for worker in ("worker=w0", "worker=w1"):
        received = [int(line.split("received=")[1].split()[0]) for line in finals if worker in line]
        assert received
        assert received[-1] > 0
