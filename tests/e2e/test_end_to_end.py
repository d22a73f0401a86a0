"""End to end: simulated devices behind edge agents → mosquitto → ingest → InfluxDB.

Whatever the agents published (seen by an independent subscriber and read
through the contract validator) must be exactly what InfluxDB holds.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from iotmon_contract import TelemetryValidator, telemetry_filter
from iotmon_edge import build_simulated_agent
from iotmon_services.ingest import IngestService
from iotmon_services.localstack import InfluxdProcess, MosquittoProcess
from iotmon_services.storage import DeviceSummary, StoreSettings, open_store
from tests.services.ingest.support import (
    Collector,
    ingest_settings,
    stored_values,
    unique,
    wait_until,
)

DEVICES = 150


def test_simulated_fleet_readings_arrive_in_influxdb_unchanged(
    fresh_mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    # One tenant per agent: both simulate devices env-0001…, which must not collide.
    tenants = {"single": unique("e2e-s"), "batch": unique("e2e-b")}
    database = f"e2e_{uuid.uuid4().hex[:10]}"
    store = open_store(StoreSettings(url=influxd.url, database=database))
    ingest = IngestService(ingest_settings(fresh_mosquitto, influxd.url, database, tmp_path))
    ingest.start()
    assert ingest.wait_connected(10)
    published = Collector(fresh_mosquitto, telemetry_filter())
    agents = [
        build_simulated_agent(
            tenant=tenants[mode],
            devices=DEVICES,
            interval=0.5,
            mode=mode,
            mqtt_port=fresh_mosquitto.port,
            seed=seed,
            agent_id=f"sim-{mode}",
        )
        for seed, mode in enumerate(["single", "batch"])
    ]
    try:
        for agent in agents:
            agent.start()
        assert wait_until(lambda: all(a.stats().cycles >= 4 for a in agents), 20)
    finally:
        for agent in agents:
            agent.stop()

    validator = TelemetryValidator()

    def published_readings() -> int:
        return sum(len(validator.validate(t, p)) for t, p in list(published.messages))

    # The agents flushed to the broker; let our own subscriber catch up with them.
    sent = sum(a.stats().readings - a.stats().invalid for a in agents)
    assert wait_until(lambda: published_readings() == sent, 10), (published_readings(), sent)
    expected: dict[tuple[str, str, str, int], float] = {}
    for topic, payload in list(published.messages):
        for r in validator.validate(topic, payload):
            key = (r.tenant, r.metric, r.device, r.ts_ns)
            assert key not in expected, f"reading published twice: {key}"
            expected[key] = r.value
    published.close()
    metrics = {metric for _, metric, _, _ in expected}
    assert len(expected) >= 2 * 4 * DEVICES

    def stored() -> dict[tuple[str, str, str, int], float]:
        found: dict[tuple[str, str, str, int], float] = {}
        for tenant in tenants.values():
            for metric in metrics:
                for (device, ts), value in stored_values(store, tenant, metric).items():
                    found[(tenant, metric, device, ts)] = value
        return found

    def devices() -> list[DeviceSummary]:
        return [d for tenant in tenants.values() for d in store.devices(tenant)]

    try:
        assert wait_until(lambda: len(stored()) >= len(expected), 30)
        assert stored() == expected
        counters = ingest.counters
        assert counters.dead_letters_total == 0
        # Every device and agent was marked online, then offline when its agent stopped.
        assert wait_until(lambda: len(devices()) == 2 * (DEVICES + 1), 10)
        assert wait_until(
            lambda: all(d.state is not None and d.state.value == "offline" for d in devices()), 10
        )
    finally:
        ingest.stop()
        store.close()
