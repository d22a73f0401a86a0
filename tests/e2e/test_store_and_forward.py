"""Store-and-forward end to end: broker outage under load, ``kill -9`` of the agent during it.

A real ``iotmon-edge run`` process with a durable queue publishes 40 sensors four
times a second through a real mosquitto to a real ingest and influxd. The broker
is stopped under load, the agent is SIGKILLed during the outage and started again
on the same queue, then the broker comes back. Every reading the agent numbered
must be in InfluxDB exactly once, and each device's series must be its readings
in the order they were numbered.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from iotmon_contract import SingleReading, parse_telemetry, telemetry_filter
from iotmon_contract.validation import to_ns
from iotmon_ingest import IngestService
from iotmon_storage import StoreSettings, open_store
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from tests.edge.recorder import Received, recording
from tests.services.ingest.support import ingest_settings, stored_values, unique, wait_until

EDGE_COMMAND = str(Path(sys.executable).with_name("iotmon-edge"))
SENSORS = 40
INTERVAL_S = 0.25
TIMEOUT = 60.0


@dataclass(frozen=True)
class Numbered:
    device: str
    seq: int
    metric: str
    ts_ns: int
    value: float


def _spawn(config: Path, broker: MosquittoProcess, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")},
        "IOTMON_EDGE_MQTT__HOST": broker.host,
        "IOTMON_EDGE_MQTT__PORT": str(broker.port),
        "IOTMON_EDGE_MQTT__RECONNECT_MAX_S": "1",
    }
    with log.open("ab") as output:
        return subprocess.Popen(
            [EDGE_COMMAND, "run", "--config", str(config)], env=env, stdout=output, stderr=output
        )


def _queue_rows(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM queue").fetchone()[0])
    finally:
        db.close()


def _sequences(path: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT stream, next FROM sequences"))
    finally:
        db.close()


def _numbered(message: Received) -> Numbered:
    reading = parse_telemetry(message.payload)
    assert isinstance(reading, SingleReading)
    assert reading.seq is not None
    device = message.topic.split("/")[3]
    return Numbered(device, reading.seq, reading.metric, to_ns(reading.ts), reading.value)


def test_every_reading_reaches_influxdb_once_through_an_outage_and_a_kill_9(
    fresh_mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    broker = fresh_mosquitto
    tenant = unique("sf")
    database = f"sf_{uuid.uuid4().hex[:10]}"
    queue = tmp_path / "queue.db"
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"tenant: {tenant}\nagent_id: gw-1\npublish_interval_s: {INTERVAL_S}\n"
        f"queue: {{path: {queue}}}\nhealth: {{interval_s: 1, thermal_zone: null}}\n"
        f"drivers:\n  - type: simulated_environment\n    count: {SENSORS}\n    seed: 4\n"
        "    faults: {dropout_rate: 0, spike_rate: 0, stuck_rate: 0}\n"
    )
    log = tmp_path / "agent.log"
    store = open_store(StoreSettings(url=influxd.url, database=database))
    # A plain subscription in a persistent session: mosquitto keeps it, and what arrives
    # while ingest reconnects, across its own restart.
    ingest = IngestService(
        ingest_settings(
            broker,
            influxd.url,
            database,
            tmp_path,
            mqtt={"host": broker.host, "port": broker.port, "reconnect_max_s": 1},
        )
    )
    ingest.start()
    assert ingest.wait_connected(10)
    agent = None
    try:
        with recording(broker.host, broker.port, telemetry_filter(tenant), persistent=True) as seen:
            agent = _spawn(config, broker, log)
            assert seen.wait_for(lambda m: len(m) >= 6 * SENSORS * 3, 20), log.read_text()
            broker.stop()  # under load
            outage_from = datetime.now(UTC)
            time.sleep(1.5)
            agent.send_signal(signal.SIGKILL)
            agent.wait(10)
            queued_at_kill = _queue_rows(queue)
            assert queued_at_kill > 0
            agent = _spawn(config, broker, log)  # on the same queue, the broker still away
            time.sleep(1.5)
            outage_to = datetime.now(UTC)
            broker.start()
            # Drained: the queue file is empty again and the agent keeps up.
            assert wait_until(lambda: _queue_rows(queue) < 2 * SENSORS * 3, TIMEOUT)
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(30) == 0, log.read_text()[-3000:]
            agent = None
            assert _queue_rows(queue) == 0
            sequences = _sequences(queue)
            numbered_total = sum(n for s, n in sequences.items() if s.startswith("telemetry:"))
            # Until every number arrived (or long enough to say which did not, below).
            seen.wait_for(
                lambda m: (
                    len({(x.topic, json.loads(x.payload)["seq"]) for x in m}) >= numbered_total
                ),
                30,
            )
            time.sleep(0.5)  # late duplicates, if any, are part of the picture
            arrivals = [_numbered(m) for m in seen.messages()]
        _check_wire(arrivals, sequences, outage_from, outage_to)
        readings = {(r.device, r.seq): r for r in arrivals}
        metrics = {r.metric for r in readings.values()}

        def stored() -> dict[tuple[str, str, int], float]:
            return {
                (device, metric, ts): value
                for metric in metrics
                for (device, ts), value in stored_values(store, tenant, metric).items()
            }

        expected = {(r.device, r.metric, r.ts_ns): r.value for r in readings.values()}
        assert len(expected) == len(readings)  # one timestamp per numbered reading
        assert wait_until(lambda: len(stored()) >= len(expected), TIMEOUT), (
            len(stored()),
            len(expected),
        )
        assert stored() == expected  # exactly once: every reading, nothing else
        _check_series_order(readings)
        assert ingest.counters.dead_letters_total == 0
    finally:
        if agent is not None:
            agent.kill()
        ingest.stop()
        store.close()


def _check_wire(
    arrivals: list[Numbered],
    sequences: dict[str, int],
    outage_from: datetime,
    outage_to: datetime,
) -> None:
    """Every number arrived (at least once, copies identical); what was taken during the
    outage arrived oldest first per device."""
    copies: dict[tuple[str, int], set[Numbered]] = defaultdict(set)
    for reading in arrivals:
        copies[(reading.device, reading.seq)].add(reading)
    assert all(len(variants) == 1 for variants in copies.values()), "a number was reused"
    by_device: dict[str, set[int]] = defaultdict(set)
    for device, seq in copies:
        by_device[device].add(seq)
    assert set(by_device) == {f"env-{n:04d}" for n in range(1, SENSORS + 1)} | {"gw-1"}
    for device, seqs in by_device.items():
        missing = set(range(sequences[f"telemetry:{device}"])) - seqs
        assert not missing, f"{device}: {len(missing)} numbered reading(s) never arrived"
        assert max(seqs) < sequences[f"telemetry:{device}"], device
    duplicates = len(arrivals) - len(copies)
    print(f"{len(arrivals)} arrivals, {len(copies)} readings, {duplicates} duplicates")  # noqa: T201
    start, end = to_ns(outage_from), to_ns(outage_to)
    first_seen: dict[str, list[int]] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for reading in arrivals:
        key = (reading.device, reading.seq)
        if key in seen:
            continue
        seen.add(key)
        if start <= reading.ts_ns < end:
            first_seen[reading.device].append(reading.seq)
    assert len(first_seen) == SENSORS + 1
    for device, order in first_seen.items():
        assert order == sorted(order), f"{device}: backlog not drained oldest first"


def _check_series_order(readings: dict[tuple[str, int], Numbered]) -> None:
    """Numbered in the order taken: by sequence, each device's timestamps only go forward."""
    by_device: dict[str, list[Numbered]] = defaultdict(list)
    for reading in readings.values():
        by_device[reading.device].append(reading)
    for device, items in by_device.items():
        items.sort(key=lambda r: r.seq)
        stamps = [r.ts_ns for r in items]
        assert stamps == sorted(stamps), device
