"""Every panel query, run on a real influxd filled by the simulators through the real pipeline.

``test_queries`` pins each panel to a small hand-made table. Here the data is what
a deployment sends: the environment simulator (its faults included) read at
minute-aligned times, encoded by the edge agent's own encoder, published to a
real mosquitto and stored by the ingest service, plus a few refused payloads.
Each panel must show exactly what the simulator produced.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from iotmon_contract import DeviceState
from iotmon_devices import DeviceReading, SimulatedEnvironmentConfig
from iotmon_devices.simulators.environment import SimulatedEnvironmentDriver
from iotmon_edge.messages import TelemetryEncoder, status_message
from iotmon_ingest import IngestService
from iotmon_storage.influx import InfluxStore
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from tests.dashboards.grafana import (
    ALL,
    TimeRange,
    dashboard_files,
    interpolate,
    load,
    panel_instances,
    panels,
    resolve,
)
from tests.services.ingest.support import Publisher, ingest_settings, unique, wait_until

DEVICES = 6
MINUTES = 10
INTERVAL_S = 60
OFFLINE_DEVICE = "env-0003"
BAD_PAYLOADS = {
    "not_json": [b"{not json", b"\xff\xfe"],
    "schema": [b'{"metric":"temperature","value":"warm","ts":"2026-01-01T00:00:00Z"}'],
    "bad_timestamp": [b'{"metric":"temperature","value":20,"ts":"1999-01-01T00:00:00Z"}'],
}
Series = list[dict[str, Any]]
CHECKED_ELSEWHERE = {"iotmon-platform-health"}
"""Dashboards whose panels test_platform_health runs (Prometheus and InfluxDB)."""


@dataclass(frozen=True)
class Fleet:
    """What the simulated fleet sent, as the panels must show it."""

    tenant: str
    store: InfluxStore
    readings: list[DeviceReading]
    t0: datetime

    def values(self, device: str, metric: str) -> list[tuple[datetime, float]]:
        return sorted(
            (r.ts, r.value) for r in self.readings if r.device == device and r.metric == metric
        )

    @property
    def devices(self) -> set[str]:
        return {r.device for r in self.readings}


@pytest.fixture(scope="module")
def fleet(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    tenant = unique("dash")
    database = f"dashsim_{uuid.uuid4().hex[:10]}"
    driver = SimulatedEnvironmentDriver(SimulatedEnvironmentConfig(count=DEVICES, seed=11))
    driver.start()
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    readings = [r for minute in range(MINUTES) for r in driver.read(t0 + timedelta(minutes=minute))]
    encoder = TelemetryEncoder(tenant, "sim-dash", batch_max_readings=500)
    encoded = encoder.singles(readings)
    assert encoded.invalid == 0
    service = IngestService(
        ingest_settings(mosquitto, influxd.url, database, tmp_path_factory.mktemp("spool"))
    )
    service.start()
    assert service.wait_connected(10)
    publisher = Publisher(mosquitto)
    store = InfluxStore(influxd.url, database)
    try:
        for device in driver.device_ids:
            state = DeviceState.OFFLINE if device == OFFLINE_DEVICE else DeviceState.ONLINE
            status = status_message(tenant, device, state, t0, "iotmon-edge/test")
            publisher.publish(status.topic, status.payload, status.qos, retain=False)
        for message in encoded.messages:
            publisher.publish(message.topic, message.payload, message.qos, message.retain)
        for reason, payloads in BAD_PAYLOADS.items():
            for index, payload in enumerate(payloads):
                publisher.publish(f"iotmon/v1/{tenant}/bad-{reason}-{index}/telemetry", payload)
        publisher.close()
        expected_dead = sum(len(p) for p in BAD_PAYLOADS.values())
        assert wait_until(
            lambda: (
                service.counters.readings_written == len(readings)
                and service.counters.dead_letters_total == expected_dead
                and service.counters.statuses_written == DEVICES
            ),
            30,
        ), service.counters
        yield Fleet(tenant, store, readings, t0)
    finally:
        service.stop()
        driver.stop()
        store.close()


def time_range(fleet: Fleet) -> TimeRange:
    return TimeRange(fleet.t0 - timedelta(minutes=10), datetime.now(UTC) + timedelta(minutes=1), 60)


def by_device(series: Series) -> dict[str, list[tuple[datetime, float]]]:
    return {
        s["tags"]["device"]: [
            (datetime.fromtimestamp(ts / 1e9, UTC), v) for ts, v, *_ in s["values"] if v is not None
        ]
        for s in series
    }


Check = Callable[[Fleet, dict[str, Series], set[str], str | None], None]
"""An expectation: what was sent, the panel's results, the devices selected, the
repeated value (the metric of a per-metric panel)."""


def metric_series(
    fleet: Fleet, results: dict[str, Series], devices: set[str], metric: str | None
) -> None:
    assert metric is not None
    # One reading a minute, so each minute's mean is that reading.
    expected = {d: fleet.values(d, metric) for d in devices if fleet.values(d, metric)}
    assert by_device(results["A"]) == expected


def latest(fleet: Fleet, results: dict[str, Series], devices: set[str], metric: str | None) -> None:
    assert metric is not None
    found = {d: rows[0][1] for d, rows in by_device(results["A"]).items()}
    expected = {d: fleet.values(d, metric)[-1][1] for d in devices if fleet.values(d, metric)}
    assert found == expected


def availability(
    fleet: Fleet, results: dict[str, Series], devices: set[str], metric: str | None
) -> None:
    assert results["A"][0]["values"][0][1] == DEVICES - 1
    assert results["B"][0]["values"][0][1] == 1


def readings_per_second(
    fleet: Fleet, results: dict[str, Series], devices: set[str], metric: str | None
) -> None:
    # _device_seen is stamped when ingest received the readings: the rate integrates
    # to the number of readings the selected devices sent.
    rates = [rate for _, rate in results["A"][0]["values"]]
    sent = sum(1 for r in fleet.readings if r.device in devices)
    assert sum(rates) * INTERVAL_S == pytest.approx(sent)


def dead_letters_by_reason(
    fleet: Fleet, results: dict[str, Series], devices: set[str], metric: str | None
) -> None:
    totals: dict[str, int] = defaultdict(int)
    for series in results["A"]:
        totals[series["tags"]["reason"]] += sum(row[1] for row in series["values"])
    assert dict(totals) == {reason: len(p) for reason, p in BAD_PAYLOADS.items()}


def recent_dead_letters(
    fleet: Fleet, results: dict[str, Series], devices: set[str], metric: str | None
) -> None:
    (series,) = results["A"]
    rows = series["values"]
    assert len(rows) == sum(len(p) for p in BAD_PAYLOADS.values())
    assert {r[2] for r in rows} == set(BAD_PAYLOADS)
    assert all(f"iotmon/v1/{fleet.tenant}/bad-" in r[3] for r in rows)


EXPECTATIONS: dict[tuple[str, str], Check] = {
    ("iotmon-environment", "Device availability"): availability,
    ("iotmon-environment", "Readings / s"): readings_per_second,
    ("iotmon-environment", "Dead letters by reason"): dead_letters_by_reason,
    ("iotmon-environment", "$metric"): metric_series,
    ("iotmon-environment", "Latest $metric"): latest,
    ("iotmon-environment", "Recent dead letters"): recent_dead_letters,
}

PANEL_CASES = [
    (path.stem, dashboard, panel)
    for path in dashboard_files()
    for dashboard in [load(path)]
    if dashboard["uid"] == "iotmon-environment"  # test_queries_video.py has the video one
    for panel in panels(dashboard)
    if panel.get("targets") and dashboard["uid"] not in CHECKED_ELSEWHERE
]
PANELS = [pytest.param(d, p, id=f"{stem}:{p['title']}") for stem, d, p in PANEL_CASES]


def test_every_panel_with_queries_has_an_expectation() -> None:
    assert {(d["uid"], p["title"]) for _, d, p in PANEL_CASES} == set(EXPECTATIONS)


@pytest.mark.integration
@pytest.mark.parametrize("one_device", [False, True], ids=["all-devices", "one-device"])
@pytest.mark.parametrize(("dashboard", "panel"), PANELS)
def test_panel_shows_what_the_simulated_fleet_sent(
    fleet: Fleet, dashboard: dict[str, Any], panel: dict[str, Any], one_device: bool
) -> None:
    selected = ["env-0002"] if one_device else ALL
    resolved = resolve(
        dashboard, fleet.store, {"tenant": [fleet.tenant], "device": selected, "metric": ALL}
    )
    devices = {"env-0002"} if one_device else fleet.devices
    assert len(fleet.devices) == DEVICES
    instances = panel_instances(panel, resolved)
    if panel.get("repeat") == "metric":
        sent = {r.metric for r in fleet.readings if r.device in devices}
        assert {i.repeat_value for i in instances} == sent
    for instance in instances:
        results = {}
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "influxdb", "uid": "${datasource}"}
            query = interpolate(target["query"], instance.variables, time_range(fleet))
            results[target["refId"]] = fleet.store.query(query)
        check = EXPECTATIONS[(dashboard["uid"], panel["title"])]
        check(fleet, results, devices, instance.repeat_value)
