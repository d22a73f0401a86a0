"""Every panel query, run on a real influxd filled by the simulators through the real pipeline.

``test_queries`` pins the environment panels to a small hand-made table. Here the
data is what a deployment sends: the environment simulator (its faults included)
read at minute-aligned times, encoded by the edge agent's own encoder, published to
a real mosquitto and stored by the ingest service, plus a few refused payloads; and
for the edge-agents dashboard, two agents' health readings (an outage with a
backlog and drops on one, a restart on the other, a CPU temperature only on the Pi)
made by the agent's own health code. Each panel must show exactly what was sent.
"""

from __future__ import annotations

import itertools
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
from iotmon_edge.health import HealthSnapshot, Metric, health_readings
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
    resolve_variables,
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
    # test_queries_video.py has the video one
    if dashboard["uid"] in {"iotmon-environment", "iotmon-edge-agents"}
    for panel in panels(dashboard)
    if panel.get("targets") and dashboard["uid"] not in CHECKED_ELSEWHERE
]
FLEET_PANELS = [
    pytest.param(d, p, id=f"{stem}:{p['title']}")
    for stem, d, p in PANEL_CASES
    if (d["uid"], p["title"]) in EXPECTATIONS
]


def test_every_panel_with_queries_has_an_expectation() -> None:
    assert {(d["uid"], p["title"]) for _, d, p in PANEL_CASES} == set(EXPECTATIONS) | set(
        AGENT_EXPECTATIONS
    )


@pytest.mark.integration
@pytest.mark.parametrize("one_device", [False, True], ids=["all-devices", "one-device"])
@pytest.mark.parametrize(("dashboard", "panel"), FLEET_PANELS)
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


# -- the edge-agents dashboard ---------------------------------------------------------

AGENT_DASHBOARD = "iotmon-edge-agents"


def _agent_history() -> dict[str, list[HealthSnapshot]]:
    """Ten minutes of two agents: gw-a loses its broker for four minutes (its queue fills,
    its bound drops 40 messages, it reconnects and drains); gw-b, a Pi, restarts once."""
    depth_a = [0, 0, 0, 120, 240, 360, 360, 120, 12, 4]
    age_a = [0.0, 0.0, 0.0, 55.0, 115.0, 175.0, 170.0, 30.0, 8.0, 2.0]
    dropped_a = [5, 5, 5, 5, 5, 5, 45, 45, 45, 45]
    reconnects_a = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
    rate_a = [2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 14.0, 6.0, 2.0]
    reconnects_b = [2, 2, 3, 3, 0, 0, 1, 1, 1, 1]  # restarted at minute 4
    return {
        "gw-a": [
            HealthSnapshot(
                queue_depth=depth_a[m],
                queue_bytes=depth_a[m] * 165,
                queue_oldest_age_s=age_a[m],
                queue_dropped_total=dropped_a[m],
                reconnects_total=reconnects_a[m],
                publish_rate=rate_a[m],
                rss_bytes=38_000_000 + 10_000 * m,
                cpu_percent=1.5 + m / 10,
                cpu_temperature_c=None,
            )
            for m in range(MINUTES)
        ],
        "gw-b": [
            HealthSnapshot(
                queue_depth=m % 4,
                queue_bytes=(m % 4) * 160,
                queue_oldest_age_s=0.5 * (m % 4),
                queue_dropped_total=0,
                reconnects_total=reconnects_b[m],
                publish_rate=3.0,
                rss_bytes=36_000_000,
                cpu_percent=0.8,
                cpu_temperature_c=45.0 + m / 2,
            )
            for m in range(MINUTES)
        ],
    }


@dataclass(frozen=True)
class Agents:
    tenant: str
    store: InfluxStore
    t0: datetime
    history: dict[str, list[HealthSnapshot]]

    def values(self, agent: str, metric: str) -> list[tuple[datetime, float]]:
        readings = [
            r
            for minute, snapshot in enumerate(self.history[agent])
            for r in health_readings(agent, snapshot, self.t0 + timedelta(minutes=minute))
            if r.metric == metric
        ]
        return [(r.ts, r.value) for r in readings]


@pytest.fixture(scope="module")
def agents(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Agents]:
    tenant = unique("agents")
    database = f"dashagents_{uuid.uuid4().hex[:10]}"
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    history = _agent_history()
    service = IngestService(
        ingest_settings(mosquitto, influxd.url, database, tmp_path_factory.mktemp("spool"))
    )
    service.start()
    assert service.wait_connected(10)
    publisher = Publisher(mosquitto)
    store = InfluxStore(influxd.url, database)
    sent = 0
    try:
        for agent, snapshots in history.items():
            encoder = TelemetryEncoder(tenant, agent, batch_max_readings=500)
            for minute, snapshot in enumerate(snapshots):
                readings = health_readings(agent, snapshot, t0 + timedelta(minutes=minute))
                encoded = encoder.singles(readings)
                assert encoded.invalid == 0
                for message in encoded.messages:
                    publisher.publish(message.topic, message.payload, message.qos, message.retain)
                sent += len(readings)
        publisher.close()
        assert wait_until(lambda: service.counters.readings_written == sent, 30), service.counters
        yield Agents(tenant, store, t0, history)
    finally:
        service.stop()
        store.close()


AgentCheck = Callable[[Agents, dict[str, Series], set[str]], None]


def agent_series(metric: str) -> AgentCheck:
    def check(agents: Agents, results: dict[str, Series], selected: set[str]) -> None:
        expected = {a: agents.values(a, metric) for a in selected if agents.values(a, metric)}
        assert by_device(results["A"]) == expected

    return check


def _growth(values: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """What non_negative_difference gives: each step's growth; a counter reset is skipped."""
    return [
        (ts, value - before)
        for (_, before), (ts, value) in itertools.pairwise(values)
        if value >= before
    ]


def agent_growth(metric: str) -> AgentCheck:
    def check(agents: Agents, results: dict[str, Series], selected: set[str]) -> None:
        expected = {a: _growth(agents.values(a, metric)) for a in selected}
        assert by_device(results["A"]) == expected

    return check


def growth_in_range(metric: str) -> AgentCheck:
    def check(agents: Agents, results: dict[str, Series], selected: set[str]) -> None:
        total = sum(v for a in selected for _, v in _growth(agents.values(a, metric)))
        (series,) = results["A"]
        assert series["values"][0][1] == total

    return check


def queued_now(agents: Agents, results: dict[str, Series], selected: set[str]) -> None:
    (series,) = results["A"]
    assert series["values"][0][1] == sum(agents.history[a][-1].queue_depth for a in selected)


def oldest_queued(agents: Agents, results: dict[str, Series], selected: set[str]) -> None:
    (series,) = results["A"]
    expected = max(agents.history[a][-1].queue_oldest_age_s for a in selected)
    assert series["values"][0][1] == expected


AGENT_EXPECTATIONS: dict[tuple[str, str], AgentCheck] = {
    (AGENT_DASHBOARD, "Queued now"): queued_now,
    (AGENT_DASHBOARD, "Oldest queued"): oldest_queued,
    (AGENT_DASHBOARD, "Dropped in range"): growth_in_range(Metric.QUEUE_DROPPED),
    (AGENT_DASHBOARD, "Reconnects in range"): growth_in_range(Metric.RECONNECTS),
    (AGENT_DASHBOARD, "Queue depth"): agent_series(Metric.QUEUE_DEPTH),
    (AGENT_DASHBOARD, "Oldest queued message"): agent_series(Metric.QUEUE_OLDEST_AGE),
    (AGENT_DASHBOARD, "Queue size"): agent_series(Metric.QUEUE_BYTES),
    (AGENT_DASHBOARD, "Published / s"): agent_series(Metric.PUBLISH_RATE),
    (AGENT_DASHBOARD, "Dropped messages"): agent_growth(Metric.QUEUE_DROPPED),
    (AGENT_DASHBOARD, "Reconnects"): agent_growth(Metric.RECONNECTS),
    (AGENT_DASHBOARD, "CPU temperature"): agent_series(Metric.CPU_TEMPERATURE),
    (AGENT_DASHBOARD, "Agent CPU"): agent_series(Metric.CPU),
    (AGENT_DASHBOARD, "Agent memory (RSS)"): agent_series(Metric.RSS),
}

AGENT_PANELS = [
    pytest.param(d, p, id=f"{stem}:{p['title']}")
    for stem, d, p in PANEL_CASES
    if (d["uid"], p["title"]) in AGENT_EXPECTATIONS
]


@pytest.mark.integration
@pytest.mark.parametrize("one_agent", [False, True], ids=["all-agents", "one-agent"])
@pytest.mark.parametrize(("dashboard", "panel"), AGENT_PANELS)
def test_agent_panel_shows_what_the_agents_sent(
    agents: Agents, dashboard: dict[str, Any], panel: dict[str, Any], one_agent: bool
) -> None:
    selected = ["gw-a"] if one_agent else ALL
    variables = resolve_variables(
        dashboard, agents.store, {"tenant": [agents.tenant], "agent": selected}
    )
    window = TimeRange(
        agents.t0 - timedelta(minutes=10), datetime.now(UTC) + timedelta(minutes=1), 60
    )
    results = {}
    for target in panel["targets"]:
        assert target["datasource"] == {"type": "influxdb", "uid": "${datasource}"}
        query = interpolate(target["query"], variables, window)
        results[target["refId"]] = agents.store.query(query)
    chosen = {"gw-a"} if one_agent else set(agents.history)
    AGENT_EXPECTATIONS[(dashboard["uid"], panel["title"])](agents, results, chosen)
