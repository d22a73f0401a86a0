"""Every panel query of every dashboard, run on a real influxd holding known data.

Grafana cannot run here: ``tests.dashboards.grafana`` interpolates variables and
macros as Grafana's InfluxQL datasource does, and each result is checked against
what the data written through ``InfluxStore`` must give.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from iotmon_contract import DeadLetterReason, DeviceState, ValidatedReading
from iotmon_contract.validation import ContractViolation, to_ns
from iotmon_storage import StatusEvent
from iotmon_storage.influx import InfluxStore
from iotmon_tools.localstack import InfluxdProcess
from tests.dashboards.grafana import (
    ALL,
    DASHBOARDS,
    TimeRange,
    dashboard_files,
    interpolate,
    load,
    panel_instances,
    panels,
    resolve,
    resolve_variables,
)

MINUTES = 10
INTERVAL_S = 60
Series = list[dict[str, Any]]


def _now_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


T0 = _now_minute() - timedelta(minutes=30)
"""First reading: minute-aligned so that GROUP BY time(60s) buckets hold one reading each."""


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def value(device: str, metric: str, minute: int) -> float | None:
    """The known data: acme/env-1 temperature + humidity, acme/env-2 temperature + co2."""
    table = {
        ("env-1", "temperature"): 20.0 + minute,
        ("env-1", "humidity"): 40.0 + minute / 2,
        ("env-2", "temperature"): 30.0 + minute,
        ("env-2", "co2"): 400.0 + 10 * minute,
    }
    return table.get((device, metric))


DEVICES = ("env-1", "env-2")
METRICS = ("temperature", "humidity", "co2")
DEAD_LETTERS = {DeadLetterReason.NOT_JSON: 3, DeadLetterReason.SCHEMA: 1}


def fill(store: InfluxStore) -> None:
    for minute in range(MINUTES):
        batch = [
            ValidatedReading("acme", d, m, v, None, to_ns(at(minute)))
            for d in DEVICES
            for m in METRICS
            if (v := value(d, m, minute)) is not None
        ]
        # Another tenant's device with the same metric must never show up.
        batch.append(
            ValidatedReading("other", "env-9", "temperature", 99.0, None, to_ns(at(minute)))
        )
        store.write_readings(batch, seen_at_ns=to_ns(at(minute) + timedelta(seconds=5)))
    store.write_statuses(
        [
            StatusEvent("acme", "env-1", DeviceState.ONLINE, to_ns(at(0))),
            StatusEvent("acme", "env-2", DeviceState.ONLINE, to_ns(at(0))),
            StatusEvent("acme", "env-2", DeviceState.OFFLINE, to_ns(at(8))),
            # Status only (never sent telemetry), came online long before the range.
            StatusEvent("acme", "env-3", DeviceState.ONLINE, to_ns(at(-3000))),
            StatusEvent("other", "env-9", DeviceState.ONLINE, to_ns(at(0))),
        ]
    )
    letters = [
        ContractViolation(reason, "bad").dead_letter("ingest", "iotmon/v1/acme/x/telemetry", b"{")
        for reason, count in DEAD_LETTERS.items()
        for _ in range(count)
    ]
    store.write_dead_letters(letters)  # stamped "now", inside the range


@pytest.fixture(scope="module")
def store(influxd: InfluxdProcess) -> Iterator[InfluxStore]:
    opened = InfluxStore(influxd.url, f"dash_{uuid.uuid4().hex[:12]}")
    opened.ensure_schema()
    fill(opened)
    yield opened
    opened.close()


def time_range() -> TimeRange:
    return TimeRange(at(-10), datetime.now(UTC) + timedelta(minutes=1), INTERVAL_S)


# -- what each panel must show ------------------------------------------------------


def by_tag(series: Series, tag: str) -> dict[str, list[list[Any]]]:
    return {s["tags"][tag]: s["values"] for s in series}


def non_null(rows: list[list[Any]]) -> list[tuple[datetime, float]]:
    return [(datetime.fromtimestamp(ts / 1e9, UTC), v) for ts, v, *_ in rows if v is not None]


Check = Callable[[dict[str, Series], set[str], str | None], None]
"""An expectation: the panel's results, the devices selected, the repeated value."""


def metric_series(results: dict[str, Series], devices: set[str], metric: str | None) -> None:
    assert metric is not None, "a panel per metric"
    found = by_tag(results["A"], "device")
    expected = {
        d: [(at(m), value(d, metric, m)) for m in range(MINUTES)]
        for d in devices
        if value(d, metric, 0) is not None
    }
    assert {d: non_null(rows) for d, rows in found.items()} == expected
    assert {s["name"] for s in results["A"]} == {metric}


def latest(results: dict[str, Series], devices: set[str], metric: str | None) -> None:
    assert metric is not None, "a panel per metric"
    found = {d: rows[0][1] for d, rows in by_tag(results["A"], "device").items()}
    expected = {
        d: value(d, metric, MINUTES - 1) for d in devices if value(d, metric, 0) is not None
    }
    assert found == expected


def availability(results: dict[str, Series], devices: set[str], metric: str | None) -> None:
    # Tenant-wide, whatever devices are selected: env-1 and env-3 online, env-2 offline.
    assert results["A"][0]["values"][0][1] == 2
    assert results["B"][0]["values"][0][1] == 1


def readings_per_second(results: dict[str, Series], devices: set[str], metric: str | None) -> None:
    rows = results["A"][0]["values"]
    per_minute = {d: sum(value(d, m, 0) is not None for m in METRICS) for d in devices}
    expected_rate = sum(per_minute.values()) / INTERVAL_S
    rates = {datetime.fromtimestamp(ts / 1e9, UTC): rate for ts, rate in rows}
    assert [rates[at(m)] for m in range(MINUTES)] == pytest.approx([expected_rate] * MINUTES)
    assert sum(rates.values()) * INTERVAL_S == pytest.approx(MINUTES * sum(per_minute.values()))


def dead_letters_by_reason(
    results: dict[str, Series], devices: set[str], metric: str | None
) -> None:
    totals = {
        reason: sum(row[1] for row in rows)
        for reason, rows in by_tag(results["A"], "reason").items()
    }
    assert totals == {reason.value: count for reason, count in DEAD_LETTERS.items()}


def recent_dead_letters(results: dict[str, Series], devices: set[str], metric: str | None) -> None:
    (series,) = results["A"]
    assert series["columns"] == ["time", "service", "reason", "topic", "detail", "payload_bytes"]
    rows = series["values"]
    assert len(rows) == sum(DEAD_LETTERS.values())
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)
    assert {r[1] for r in rows} == {"ingest"}
    assert {r[2] for r in rows} == {reason.value for reason in DEAD_LETTERS}


EXPECTATIONS: dict[tuple[str, str], Check] = {
    ("iotmon-environment", "Device availability"): availability,
    ("iotmon-environment", "Readings / s"): readings_per_second,
    ("iotmon-environment", "Dead letters by reason"): dead_letters_by_reason,
    ("iotmon-environment", "$metric"): metric_series,
    ("iotmon-environment", "Latest $metric"): latest,
    ("iotmon-environment", "Recent dead letters"): recent_dead_letters,
}

HAND_MADE = {"iotmon-environment"}
"""Dashboards checked on this hand-made table. The edge-agents dashboard is checked on
data sent through the pipeline (test_queries_simulated), the platform-health one on real
services, a real Prometheus and real agent telemetry (test_platform_health), the video one
in test_queries_video."""

PANEL_CASES = [
    (path.stem, load(path), panel)
    for path in dashboard_files()
    if load(path)["uid"] == "iotmon-environment"  # test_queries_video.py has the video one
    for panel in panels(load(path))
    if panel.get("targets") and load(path)["uid"] in HAND_MADE
]
PANELS = [pytest.param(d, p, id=f"{stem}:{p['title']}") for stem, d, p in PANEL_CASES]


def test_every_panel_with_queries_has_an_expectation() -> None:
    assert PANEL_CASES, "no dashboards found"
    titles = {(d["uid"], p["title"]) for _, d, p in PANEL_CASES}
    assert titles == set(EXPECTATIONS)


def metrics_of(devices: set[str]) -> set[str]:
    return {m for d in devices for m in METRICS if value(d, m, 0) is not None}


@pytest.mark.parametrize(
    ("selection", "devices"),
    [
        pytest.param({"tenant": ["acme"], "device": ALL}, set(DEVICES), id="all-devices"),
        pytest.param({"tenant": ["acme"], "device": ["env-2"]}, {"env-2"}, id="one-device"),
        pytest.param({"tenant": ["acme"], "device": ["env-1", "env-2"]}, set(DEVICES), id="two"),
        pytest.param(
            {"tenant": ["acme"], "device": ALL, "metric": ["humidity"]},
            set(DEVICES),
            id="one-metric",
        ),
    ],
)
@pytest.mark.parametrize(("dashboard", "panel"), PANELS)
def test_panel_queries_return_expected_data(
    store: InfluxStore,
    dashboard: dict[str, Any],
    panel: dict[str, Any],
    selection: dict[str, Any],
    devices: set[str],
) -> None:
    resolved = resolve(dashboard, store, {"metric": ALL, **selection})
    instances = panel_instances(panel, resolved)
    if panel.get("repeat") == "metric":
        # One panel per metric the selected devices report (or per metric picked).
        wanted = set(selection.get("metric", metrics_of(devices)))
        assert {i.repeat_value for i in instances} == wanted
    for instance in instances:
        results = {}
        for target in panel["targets"]:
            assert target.get("rawQuery") is True, f"{target['refId']}: raw InfluxQL expected"
            assert target["datasource"]["uid"] == "${datasource}"
            query = interpolate(target["query"], instance.variables, time_range())
            results[target["refId"]] = store.query(query)
        EXPECTATIONS[(dashboard["uid"], panel["title"])](results, devices, instance.repeat_value)


def test_variables_offer_tenants_their_devices_and_metrics(store: InfluxStore) -> None:
    dashboard = load(DASHBOARDS / "json" / "environment.json")
    # "All" is the variable's allValue, a regex, not the list of every device.
    everything = resolve(dashboard, store, {"tenant": ["acme"], "device": ALL, "metric": ALL})
    assert everything.formatted == {
        "tenant": "acme",
        "device": ".*",
        "metric": "[a-z][a-z0-9_]*",
    }
    assert everything.picked["device"] == ["env-1", "env-2"]
    assert everything.picked["metric"] == ["co2", "humidity", "temperature"]
    # The platform's own measurements (_device_seen…) carry the same tags: not metrics.
    assert resolve_variables(dashboard, store, {"tenant": ["other"], "metric": ALL}) == {
        "tenant": "other",
        "device": r"env\-9",
        "metric": "[a-z][a-z0-9_]*",
    }
    picked = resolve(dashboard, store, {"tenant": ["acme"], "device": ["env-2"], "metric": ALL})
    assert picked.formatted["device"] == r"env\-2"
    assert picked.picked["metric"] == ["co2", "temperature"]
