"""End to end: simulated devices behind edge agents → mosquitto → ingest → InfluxDB → API.

Whatever the agents published (seen by an independent subscriber and read
through the contract validator) must be exactly what InfluxDB holds, and the
HTTP API, served for real on loopback, must answer with those same values.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from iotmon_api import ApiServer
from iotmon_api import Settings as ApiSettings
from iotmon_contract import TelemetryValidator, telemetry_filter
from iotmon_edge import build_simulated_agent
from iotmon_ingest import IngestService
from iotmon_registry import PrincipalKind, Principals, Registry, RegistrySettings
from iotmon_storage import DeviceSummary, StoreSettings, open_store
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from iotmon_tools.registry_import import import_agent
from tests.services.ingest.support import (
    Collector,
    ingest_settings,
    stored_values,
    unique,
    wait_until,
)

DEVICES = 150
SAMPLED_DEVICES = 12
"""Devices per tenant whose latest readings and series are checked through the API."""

Key = tuple[str, str, str, int]
"""(tenant, metric, device, ts_ns) of one reading."""


def _from_ns(ts_ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts_ns // 1000)


def _api_json(client: httpx.Client, path: str, **params: str | int) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return response.json()


def _all_devices(client: httpx.Client, tenant: str) -> dict[str, Any]:
    """Every device of the tenant, page by page (100 a page by default)."""
    devices: dict[str, Any] = {}
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"tenant": tenant}
        if cursor:
            params["cursor"] = cursor
        page = _api_json(client, "/api/v1/devices", **params)
        devices.update((d["device"], d) for d in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return devices


def check_api_answers_with_published_values(
    api_url: str, tenants: dict[str, str], tokens: dict[str, str], expected: dict[Key, float]
) -> None:
    """Devices, latest readings and 1 s buckets from the API equal what was published.

    Each tenant is read with its own operator token, which sees nothing of the other.
    """
    by_series: dict[tuple[str, str, str], list[tuple[int, float]]] = defaultdict(list)
    for (tenant, metric, device, ts_ns), value in expected.items():
        by_series[(tenant, device, metric)].append((ts_ns, value))
    for mode, tenant in tenants.items():
        auth = {"Authorization": f"Bearer {tokens[tenant]}"}
        with httpx.Client(base_url=api_url, timeout=10, headers=auth) as client:
            others = [t for t in tenants.values() if t != tenant]
            assert client.get("/api/v1/devices", params={"tenant": others[0]}).status_code == 403
            devices = _all_devices(client, tenant)
            sensors = {device for (t, device, _) in by_series if t == tenant}
            assert set(devices) == sensors | {f"sim-{mode}"}
            assert all(devices[d]["last_seen"] for d in sensors)
            sampled = sorted(sensors)[0]
            check_raw_points(
                client,
                tenant,
                sampled,
                {
                    (metric, ts_ns): value
                    for (t, metric, d, ts_ns), value in expected.items()
                    if (t, d) == (tenant, sampled)
                },
            )
            for device in sorted(sensors)[:SAMPLED_DEVICES]:
                latest = _api_json(client, f"/api/v1/devices/{tenant}/{device}/latest")
                answered = {r["metric"]: r for r in latest["data"]}
                metrics = {m for (t, d, m) in by_series if (t, d) == (tenant, device)}
                assert set(answered) == metrics
                for metric in metrics:
                    newest_ns, newest_value = max(by_series[(tenant, device, metric)])
                    got = answered[metric]
                    assert got["value"] == newest_value, (tenant, device, metric)
                    assert datetime.fromisoformat(got["ts"]) == _from_ns(newest_ns)
                    check_series(
                        client, tenant, device, metric, by_series[(tenant, device, metric)]
                    )


def check_raw_points(
    client: httpx.Client, tenant: str, device: str, expected: dict[tuple[str, int], float]
) -> None:
    """Raw points of every metric, paged through /series by cursor, are exactly those published."""
    first, last = min(ts for _, ts in expected), max(ts for _, ts in expected)
    params: dict[str, str | int] = {
        "agg": "none",
        "limit": 37,
        "start": _from_ns(first).isoformat(),
        "end": (_from_ns(last) + timedelta(seconds=1)).isoformat(),
    }
    got: dict[tuple[str, int], float] = {}
    while True:
        page = _api_json(client, f"/api/v1/devices/{tenant}/{device}/series", **params)
        for entry in page["data"]:
            for point in entry["data"]:
                ts = datetime.fromisoformat(point["ts"])
                ts_ns = (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
                assert (entry["metric"], ts_ns) not in got, "a point came twice"
                got[(entry["metric"], ts_ns)] = point["value"]
        if page["next_cursor"] is None:
            break
        params = {"cursor": page["next_cursor"], "limit": 37}
    assert got == expected


def check_series(
    client: httpx.Client, tenant: str, device: str, metric: str, readings: list[tuple[int, float]]
) -> None:
    """Mean and count per 1 s bucket (epoch-aligned, as InfluxDB groups) match the readings."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for ts_ns, value in readings:
        buckets[ts_ns // 1_000_000_000].append(value)
    start = _from_ns(min(ts for ts, _ in readings)).replace(microsecond=0)
    end = _from_ns(max(ts for ts, _ in readings)) + timedelta(seconds=1)
    for agg in ("mean", "max"):
        answer = _api_json(
            client,
            f"/api/v1/devices/{tenant}/{device}/metrics/{metric}",
            start=start.isoformat(),
            end=end.isoformat(),
            bucket=1,
            agg=agg,
        )
        got = {
            int(datetime.fromisoformat(b["start"]).timestamp()): (b["value"], b["count"])
            for b in answer["data"]
        }
        assert set(got) == set(buckets), (tenant, device, metric, agg)
        for second, values in buckets.items():
            value, count = got[second]
            assert count == len(values)
            want = sum(values) / len(values) if agg == "mean" else max(values)
            assert abs(value - want) <= 1e-9 * max(1.0, abs(want)), (second, value, want)


def test_simulated_fleet_readings_arrive_in_influxdb_unchanged(
    fresh_mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    # One tenant per agent: both simulate devices env-0001…, which must not collide.
    tenants = {"single": unique("e2e-s"), "batch": unique("e2e-b")}
    database = f"e2e_{uuid.uuid4().hex[:10]}"
    store = open_store(StoreSettings(url=influxd.url, database=database))
    settings = ingest_settings(fresh_mosquitto, influxd.url, database, tmp_path)
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
    # As an operator would: each agent's config imported, so the batch agent may
    # speak for its sensors.
    with Registry(settings.registry) as registry:
        for agent in agents:
            import_agent(registry, agent.config)
    ingest = IngestService(settings)
    ingest.start()
    assert ingest.wait_connected(10)
    published = Collector(fresh_mosquitto, telemetry_filter())
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
        with Registry(settings.registry) as registry:
            principals = Principals(registry)
            tokens = {
                tenant: principals.create(PrincipalKind.OPERATOR, tenant=tenant).token
                for tenant in tenants.values()
            }
        api = ApiServer(
            ApiSettings(
                host="127.0.0.1",
                port=0,
                environment="test",
                store=StoreSettings(url=influxd.url, database=database),
                registry=RegistrySettings(url=settings.registry.url),
            )
        )
        api.start()
        try:
            check_api_answers_with_published_values(api.url, tenants, tokens, expected)
        finally:
            api.stop()
    finally:
        ingest.stop()
        store.close()
