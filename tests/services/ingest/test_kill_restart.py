"""`iotmon ingest` SIGKILLed while it holds messages it received but had not yet made
durable: the broker keeps them (ingest acknowledges only after the write or the spool),
so the restarted ingest stores them.

Each scenario establishes, at the moment of the kill, exactly what ingest holds
unacknowledged (a write held open by a loopback proxy in front of influxd, or a
batch the full spool would not take), checks that those readings are in neither
the store nor the spool, and after the restart that they arrived. Each runs a
second time with ingest patched to acknowledge before writing (ack_early.py),
and there the same checks must find exactly those readings lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from iotmon_contract import telemetry_topic
from iotmon_ingest.health import Health, read_health
from iotmon_ingest.spool import SpooledBatch
from iotmon_storage import StoreSettings, TimeSeriesStore, open_store
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
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

CLIENT_ID = "kill-test-ingest"
ACK_EARLY = Path(__file__).with_name("ack_early.py")
VARIANTS = ["ack-after-write", "ack-before-write"]


def start_ingest_process(
    broker: MosquittoProcess,
    influx_url: str,
    database: str,
    tmp_path: Path,
    log: Path,
    *arguments: str,
    ack_before_write: bool = False,
    **settings: str,
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",  # a SIGKILLed process leaves its whole log
        "IOTMON_INGEST_MQTT__HOST": broker.host,
        # A free port: other ingests (a test beside this one) may hold the default.
        "IOTMON_INGEST_METRICS__PORT": "0",
        "IOTMON_INGEST_MQTT__PORT": str(broker.port),
        "IOTMON_INGEST_MQTT__CLIENT_ID": CLIENT_ID,
        "IOTMON_INGEST_STORE__URL": influx_url,
        "IOTMON_INGEST_STORE__DATABASE": database,
        "IOTMON_INGEST_SPOOL_DIR": str(tmp_path / "spool"),
        "IOTMON_INGEST_REGISTRY__URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "IOTMON_INGEST_BATCH_SIZE": "1000",
        "IOTMON_INGEST_FLUSH_INTERVAL_S": "0.05",
        "IOTMON_INGEST_STATS_INTERVAL_S": "2",
        "IOTMON_INGEST_HEALTH_INTERVAL_S": "0.1",
        "IOTMON_INGEST_STORE_RETRY_MAX_S": "1",
        **{f"IOTMON_INGEST_{name.upper()}": value for name, value in settings.items()},
    }
    program = (
        [str(ACK_EARLY)]
        if ack_before_write
        else ["-c", "from iotmon_tools.cli.main import run; run()"]
    )
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, *program, "ingest", *arguments],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def health_command(tmp_path: Path, *, workers: int = 1) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")} | {
        "IOTMON_INGEST_MQTT__CLIENT_ID": CLIENT_ID,
        "IOTMON_INGEST_SPOOL_DIR": str(tmp_path / "spool"),
        "IOTMON_INGEST_WORKERS": str(workers),
    }
    return subprocess.run(
        [sys.executable, "-c", "from iotmon_ingest.cli import run; run()", "health"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def proxy(influxd: InfluxdProcess) -> Iterator[StoreProxy]:
    running = StoreProxy(influxd.url).start()
    yield running
    running.stop()


@dataclass
class Stream:
    """Single readings of one device, value i at base + i µs; a warm-up on another metric."""

    broker: MosquittoProcess
    store: TimeSeriesStore
    tenant: str
    base: int

    def __post_init__(self) -> None:
        self.publisher = Publisher(self.broker)
        self.topic = telemetry_topic(self.tenant, "env-1")

    def ts_ns(self, i: int) -> int:
        return (self.base + i) * 1000

    def publish(self, first: int, end: int) -> None:
        for i in range(first, end):
            self.publisher.publish(self.topic, single(i * 0.25, ts_from_us(self.base + i)))
            if i % 1000 == 999:
                self.publisher.flush()
        self.publisher.flush()  # every one of them is now the broker's

    def stored(self) -> dict[int, float]:
        return {
            ts: v for (_, ts), v in stored_values(self.store, self.tenant, "temperature").items()
        }

    def stored_messages(self) -> int:
        metrics = ("temperature", "humidity", "marker")
        return sum(self.store.count_readings(self.tenant, m) for m in metrics)

    def warm_up(self) -> bool:
        """Until a reading arrives the subscription (and so the session) may not exist."""

        def warmed_up() -> bool:
            self.publisher.publish(self.topic, single(1.0, ts_from_us(now_us()), metric="humidity"))
            return self.store.count_readings(self.tenant, "humidity") > 0

        if not wait_until(warmed_up, 20, interval=0.3):
            return False
        self.settle()  # no warm-up message still on its way
        return True

    def settle(self) -> None:
        """Publish a marker and wait for it: the broker delivers a session's messages in
        order (redelivered ones first), so everything before it has been handled."""
        markers = self.store.count_readings(self.tenant, "marker")
        self.publisher.publish(self.topic, single(-1.0, ts_from_us(now_us()), metric="marker"))
        self.publisher.flush()
        assert wait_until(lambda: self.store.count_readings(self.tenant, "marker") > markers, 45), (
            "the marker published last never arrived"
        )

    def close(self) -> None:
        self.publisher.close()


def temperature_stamps(lines: list[str], tenant: str) -> set[int]:
    """The timestamps of the temperature points in line protocol lines."""
    prefix = "temperature,device=env-1,"
    return {
        int(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith(prefix) and f"tenant={tenant}" in line
    }


def fresh_health(tmp_path: Path, since: float) -> Health:
    path = tmp_path / "spool" / f"{CLIENT_ID}.health.json"
    assert wait_until(lambda: path.exists() and read_health(path).written_at > since, 10)
    return read_health(path)


def spooled_stamps(tmp_path: Path) -> set[int]:
    folder = tmp_path / "spool" / CLIENT_ID
    return {
        reading.ts_ns
        for path in folder.glob("*.batch.json")
        for reading in SpooledBatch.decode(path.read_bytes()).readings
        if reading.metric == "temperature"
    }


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is not None:
        return  # killed by the test, which failed before the restart
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0, log.read_text()[-3000:]


@pytest.mark.parametrize("variant", VARIANTS)
def test_sigkill_while_a_write_is_held_then_restart_stores_what_was_held(
    fresh_mosquitto: MosquittoProcess,
    influxd: InfluxdProcess,
    proxy: StoreProxy,
    tmp_path: Path,
    variant: str,
) -> None:
    ack_before_write = variant == "ack-before-write"
    database = unique("kill_")
    store = open_store(StoreSettings(url=influxd.url, database=database))
    store.ensure_schema()
    stream = Stream(fresh_mosquitto, store, unique("t"), now_us() - 600_000_000)
    log = tmp_path / "ingest.log"
    messages = 8000
    # A long store timeout: the held write must still be open when ingest dies.
    options = {"store__timeout_s": "120"}
    ingest = start_ingest_process(
        fresh_mosquitto, proxy.url, database, tmp_path, log,
        ack_before_write=ack_before_write, **options,
    )  # fmt: skip
    try:
        assert stream.warm_up(), log.read_text()
        stream.publish(0, messages // 4)
        assert wait_until(lambda: len(stream.stored()) == messages // 4, 20)

        # InfluxDB now takes writes and never answers: ingest receives on, and the
        # batch it is writing is received and not durable.
        proxy.set_mode(Mode.HOLD)
        stream.publish(messages // 4, messages // 2)
        held = temperature_stamps(proxy.wait_held()[0].lines, stream.tenant)
        assert held, "the held write carried no readings of this test"
        at_hold = fresh_health(tmp_path, since=0).written_at
        health = fresh_health(tmp_path, since=at_hold)
        kill(ingest)
        proxy.drop_held()  # never reaches InfluxDB
        proxy.set_mode(Mode.PASS)

        stored_at_kill = set(stream.stored())
        assert not held & stored_at_kill
        assert stored_at_kill == {stream.ts_ns(i) for i in range(messages // 4)}
        assert not spooled_stamps(tmp_path), "nothing may be spooled: the store never failed"
        # What ingest had acknowledged at the kill: everything stored, and (only when it
        # acknowledges before writing) the held batch too.
        assert health.mqtt_received >= stream.stored_messages() + len(held)
        held_and_acked = health.mqtt_acks - stream.stored_messages()
        assert held_and_acked == (len(held) if ack_before_write else 0), health

        # Published while ingest is down: the broker queues them in its session.
        stream.publish(messages // 2, messages)
        ingest = start_ingest_process(
            fresh_mosquitto, proxy.url, database, tmp_path, log,
            ack_before_write=ack_before_write, **options,
        )  # fmt: skip
        stream.settle()
        expected = {stream.ts_ns(i): i * 0.25 for i in range(messages)}
        stored = stream.stored()
        missing = set(expected) - set(stored)
        if ack_before_write:
            # The check this test exists for detects the regression: exactly the
            # readings of the write held at the kill are lost.
            assert missing == held
        else:
            assert missing == set()
            assert stored == expected
    finally:
        stream.close()
        stop(ingest, log)
        store.close()
    text = log.read_text()
    assert "shutting down" in text
    assert "(session resumed)" in text, text


@pytest.mark.parametrize("variant", VARIANTS)
def test_sigkill_while_the_spool_is_full_then_restart_replays_it_and_gets_the_rest(
    fresh_mosquitto: MosquittoProcess,
    influxd: InfluxdProcess,
    proxy: StoreProxy,
    tmp_path: Path,
    variant: str,
) -> None:
    ack_before_write = variant == "ack-before-write"
    database = unique("spool_")
    store = open_store(StoreSettings(url=influxd.url, database=database))
    store.ensure_schema()
    stream = Stream(fresh_mosquitto, store, unique("t"), now_us() - 600_000_000)
    log = tmp_path / "ingest.log"
    messages = 5000
    small_spool = {"spool_max_bytes": str(96 * 1024)}
    ingest = start_ingest_process(
        fresh_mosquitto, proxy.url, database, tmp_path, log,
        ack_before_write=ack_before_write, **small_spool,
    )  # fmt: skip
    try:
        assert stream.warm_up(), log.read_text()
        stored_before = stream.stored_messages()
        proxy.set_mode(Mode.FAIL)  # InfluxDB answers 503: batches go to the spool
        stream.publish(0, messages)
        # The spool's bound is reached: ingest holds a batch it cannot make durable.
        path = tmp_path / "spool" / f"{CLIENT_ID}.health.json"
        assert wait_until(lambda: read_health(path).intake_paused, 30), log.read_text()[-3000:]
        health = fresh_health(tmp_path, since=read_health(path).written_at)
        assert health.intake_paused
        assert health.held_messages > 0
        unhealthy = health_command(tmp_path)
        assert unhealthy.returncode == 1
        assert "intake paused" in unhealthy.stdout
        kill(ingest)

        spooled = spooled_stamps(tmp_path)
        assert spooled
        assert len(spooled) < messages
        assert stream.stored_messages() == stored_before
        # Acknowledged at the kill: the stored warm-up and what the spool holds, and
        # (only when acknowledging before writing) the batch it was holding too.
        acked_not_durable = health.mqtt_acks - stored_before - len(spooled)
        assert acked_not_durable == (health.held_messages if ack_before_write else 0)

        proxy.set_mode(Mode.PASS)
        ingest = start_ingest_process(
            fresh_mosquitto, proxy.url, database, tmp_path, log,
            ack_before_write=ack_before_write,
        )  # fmt: skip
        stream.settle()
        expected = {stream.ts_ns(i): i * 0.25 for i in range(messages)}
        stored = stream.stored()
        missing = set(expected) - set(stored)
        assert spooled <= set(stored), "the spool was not replayed"
        if ack_before_write:
            assert len(missing) == health.held_messages
            assert not missing & spooled
        else:
            assert missing == set()
            assert stored == expected
        assert wait_until(lambda: not spooled_stamps(tmp_path), 10)
        healthy = health_command(tmp_path)
        assert healthy.returncode == 0, healthy
    finally:
        stream.close()
        stop(ingest, log)
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
        # One health file per worker; the health check reads both.
        assert wait_until(lambda: health_command(tmp_path, workers=2).returncode == 0, 10)
        assert health_command(tmp_path, workers=2).stdout.count("healthy: ") == 2
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
