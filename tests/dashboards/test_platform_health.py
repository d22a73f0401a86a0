"""The "platform health" dashboard, every panel run on real parts.

Grafana cannot run here. The Prometheus panels: a real Prometheus (Debian's package)
scrapes a real ingest, API and Home Assistant bridge after real traffic, and every
panel expression is evaluated by it as Grafana would send it ($__rate_interval and
$__range replaced), each result checked against what the traffic must give. The
metric names the expressions use are held to the names the services expose, read
with prometheus-client's parser. The InfluxDB panels: an edge agent's health
readings published through the real broker and ingest, queried as Grafana would.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from iotmon_api import ApiServer
from iotmon_api import Settings as ApiSettings
from iotmon_contract import status_topic, telemetry_topic
from iotmon_homeassistant import HomeAssistantBridge
from iotmon_homeassistant import Settings as BridgeSettings
from iotmon_ingest import IngestService
from iotmon_registry import Registry, RegistrySettings
from iotmon_storage import StoreSettings
from iotmon_storage.influx import InfluxStore
from iotmon_tools.localstack import (
    InfluxdProcess,
    MosquittoProcess,
    PrometheusError,
    PrometheusProcess,
)
from tests.conftest import require_prometheus
from tests.dashboards.grafana import (
    DASHBOARDS,
    DATASOURCE_UID,
    PROMETHEUS_UID,
    TimeRange,
    interpolate,
    load,
    panels,
    resolve_variables,
)
from tests.services.ingest.support import (
    Publisher,
    batch,
    ingest_settings,
    single,
    unique,
    wait_until,
)
from tests.utils.prometheus import Scrape, scrape

DASHBOARD = load(DASHBOARDS / "json" / "platform-health.json")
RATE_WINDOW = "30s"
"""What $__rate_interval becomes: many 1 s scrapes, the traffic inside it."""
READINGS = 40
BAD = {"not_json": 2, "schema": 1}
HEALTH_MINUTES = 5
RECONNECTS = [0, 0, 1, 1, 3]
"""The agent's agent_mqtt_reconnects_total at each minute (a total that only grows)."""
Vector = list[dict[str, Any]]


@dataclass(frozen=True)
class Platform:
    prometheus: PrometheusProcess
    expositions: dict[str, Scrape]
    """Each job's /metrics at the end of the traffic."""
    ingest_client: str
    bridge_client: str
    at: float
    """When to evaluate: after the traffic, inside every rate window."""
    store: InfluxStore
    tenant: str
    t0: datetime


@pytest.fixture(scope="module")
def platform(
    influxd: InfluxdProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    require_prometheus()
    folder = tmp_path_factory.mktemp("platform")
    # A broker of its own: the traffic leaves retained statuses, which a shared broker
    # would hand to every later ingest test's status subscription.
    mosquitto = MosquittoProcess(folder / "mosquitto")
    mosquitto.start()
    database = f"health_{uuid.uuid4().hex[:10]}"
    tenant = unique("p")
    settings = ingest_settings(mosquitto, influxd.url, database, folder)
    registry_settings = RegistrySettings(url=settings.registry.url)
    with Registry(registry_settings) as registry:
        registry.add_device(tenant, "env-1")
    ingest = IngestService(settings)
    bridge = HomeAssistantBridge(
        BridgeSettings(
            environment="test",
            instance_id=unique("b"),
            mqtt={"host": mosquitto.host, "port": mosquitto.port},
            registry={"url": registry_settings.url},
            discovery_prefix=f"ha-{uuid.uuid4().hex[:8]}",
            tenant=tenant,
            metrics={"port": 0},
        )
    )
    api = ApiServer(
        ApiSettings(
            port=0,
            store=StoreSettings(url=influxd.url, database=database),
            registry=registry_settings,
            log_level="WARNING",
        )
    )
    ingest.start()
    bridge.start()
    api.start()
    prometheus: PrometheusProcess | None = None
    try:
        assert ingest.wait_connected(10)
        assert bridge.wait_ready(10)
        targets = {
            "ingest": ingest.metrics_url,
            "api": f"{api.url}/metrics",
            "homeassistant": bridge.metrics_url,
        }
        # A label series Prometheus first sees with its first request already counted
        # loses it to rate(): let the API's series exist before the first scrape.
        with httpx.Client(base_url=api.url, timeout=10) as http:
            http.get("/health")
            http.get("/api/v1/devices")
        prometheus = PrometheusProcess(
            folder / "prometheus",
            {job: [url.split("/")[2]] for job, url in targets.items() if url is not None},
        )
        prometheus.start()
        server = prometheus
        # Scraped at least once before the traffic: rates start from it.
        assert wait_until(lambda: len(server.query("up == 1")) == 3, 20), (
            "Prometheus did not scrape the three services"
        )
        t0 = _traffic(mosquitto, ingest, tenant, api.url)
        expected = READINGS + sum(BAD.values()) + 1 + 1 + HEALTH_MINUTES
        assert wait_until(lambda: ingest.counters.acked == expected, 20), ingest.counters
        assert wait_until(lambda: bridge.snapshot().states_published >= 1, 10)
        # Scraped again after the traffic.
        assert wait_until(
            lambda: _sum(server.query("iotmon_ingest_messages_acked_total")) == expected,
            20,
        )
        time.sleep(2)
        expositions = {job: scrape(url) for job, url in targets.items() if url is not None}
        store = InfluxStore(influxd.url, database)
        client = ingest.client
        assert client is not None
        assert bridge.client is not None
        yield Platform(
            prometheus,
            expositions,
            client.client_id,
            bridge.client.client_id,
            time.time(),
            store,
            tenant,
            t0,
        )
        store.close()
    finally:
        if prometheus is not None:
            prometheus.stop()
        api.stop()
        bridge.stop()
        ingest.stop()
        mosquitto.stop()


def _traffic(broker: MosquittoProcess, ingest: IngestService, tenant: str, api: str) -> datetime:
    """Readings, refused messages, an agent's health telemetry, API calls."""
    publisher = Publisher(broker)
    now = datetime.now(UTC)
    for i in range(READINGS):
        ts = now - timedelta(seconds=READINGS - i)
        publisher.publish(telemetry_topic(tenant, "env-1"), single(20.0 + i, ts))
    for reason, count in BAD.items():
        payload = b"{not json" if reason == "not_json" else b'{"metric":"t","value":"x"}'
        for _ in range(count):
            publisher.publish(telemetry_topic(tenant, "env-1"), payload)
    publisher.publish(status_topic(tenant, "env-1"), b'{"state":"online"}', retain=True)
    publisher.publish(status_topic(tenant, "agent-1"), b'{"state":"online"}', retain=True)
    t0 = now.replace(second=0, microsecond=0) - timedelta(minutes=30)
    for minute in range(HEALTH_MINUTES):
        ts = t0 + timedelta(minutes=minute)
        health = [
            (None, "agent_queue_depth", float(minute), ts),
            (None, "agent_mqtt_reconnects_total", float(RECONNECTS[minute]), ts),
        ]
        publisher.publish(telemetry_topic(tenant, "agent-1"), batch(health))
    publisher.close()
    with httpx.Client(base_url=api, timeout=10) as http:
        for _ in range(3):
            assert http.get("/health").status_code == 200
        assert http.get("/api/v1/devices").status_code == 401
    return t0


def _sum(vector: Vector) -> float:
    return sum(float(sample["value"][1]) for sample in vector)


def _one(vector: Vector) -> float:
    """The value of a vector that must hold exactly one sample (an empty vector, what a
    misspelt metric gives, sums to 0 and would pass for "nothing happened")."""
    assert len(vector) == 1, vector
    return float(vector[0]["value"][1])


def _values(vector: Vector, label: str) -> dict[str, float]:
    return {s["metric"].get(label, ""): float(s["value"][1]) for s in vector}


def grafana_expression(expr: str) -> str:
    """Grafana's Prometheus macros, as it would expand them for this dashboard."""
    expr = expr.replace("$__rate_interval", RATE_WINDOW).replace("$__range", "10m")
    leftover = re.search(r"\$\{?\w+", expr)
    assert leftover is None, f"{leftover.group(0) if leftover else ''} left in {expr}"
    return expr


# -- what each Prometheus panel must show ------------------------------------------

Check = Callable[[Platform, dict[str, Vector]], None]


def targets_up(p: Platform, r: dict[str, Vector]) -> None:
    assert _values(r["A"], "job") == {"ingest": 1, "api": 1, "homeassistant": 1}


def broker_connections(p: Platform, r: dict[str, Vector]) -> None:
    assert _values(r["A"], "client") == {p.ingest_client: 1, p.bridge_client: 1}


def no_reconnects(p: Platform, r: dict[str, Vector]) -> None:
    assert _values(r["A"], "job") == {"ingest": 0, "homeassistant": 0}


def messages_in(p: Platform, r: dict[str, Vector]) -> None:
    assert _one(r["A"]) > 0
    assert _one(r["B"]) > 0


def readings_stored(p: Platform, r: dict[str, Vector]) -> None:
    stored = _values(r["A"], "path")
    assert stored["direct"] > 0
    assert stored["replay"] == 0


def dead_letters(p: Platform, r: dict[str, Vector]) -> None:
    rates = _values(r["A"], "reason")
    # Every reason has a series (0 until it happens), so the first ones are not lost.
    assert {reason for reason, rate in rates.items() if rate > 0} == set(BAD)
    assert "oversized" in rates


def write_latency(p: Platform, r: dict[str, Vector]) -> None:
    for ref in ("A", "B"):
        (sample,) = r[ref]
        assert 0 < float(sample["value"][1]) <= 10, sample


def spool(p: Platform, r: dict[str, Vector]) -> None:
    assert _one(r["A"]) == 0
    assert _one(r["B"]) == 0


def queues(p: Platform, r: dict[str, Vector]) -> None:
    assert len(r["A"]) == 1
    assert len(r["B"]) == 1
    assert _values(r["C"], "job") == {"ingest": 0, "homeassistant": 0}


def store_up(p: Platform, r: dict[str, Vector]) -> None:
    assert _one(r["A"]) == 1


def intake_paused(p: Platform, r: dict[str, Vector]) -> None:
    assert _one(r["A"]) == 0


def store_failures(p: Platform, r: dict[str, Vector]) -> None:
    assert _one(r["A"]) == 0


def api_requests(p: Platform, r: dict[str, Vector]) -> None:
    by_status = _values(r["A"], "status")
    assert by_status["200"] > 0
    assert by_status["401"] > 0


def api_latency(p: Platform, r: dict[str, Vector]) -> None:
    routes = _values(r["A"], "route")
    assert "/health" in routes
    assert "/api/v1/devices" in routes


def per_process(p: Platform, r: dict[str, Vector]) -> None:
    assert set(_values(r["A"], "job")) == {"ingest", "api", "homeassistant"}
    assert all(v > 0 for v in _values(r["A"], "job").values())


def bridge_states(p: Platform, r: dict[str, Vector]) -> None:
    assert _one(r["A"]) > 0
    assert _one(r["B"]) == 0


def bridge_entities(p: Platform, r: dict[str, Vector]) -> None:
    assert _one(r["A"]) == 1  # env-1's temperature
    assert _one(r["B"]) == 1  # env-1 registered


PROMETHEUS_EXPECTATIONS: dict[str, Check] = {
    "Targets up": targets_up,
    "Broker connections": broker_connections,
    "MQTT reconnects in range": no_reconnects,
    "Messages in / s": messages_in,
    "Readings stored / s": readings_stored,
    "Dead letters / s": dead_letters,
    "Store write latency": write_latency,
    "Spool": spool,
    "Queues": queues,
    "Store": store_up,
    "Intake paused": intake_paused,
    "Store failures in range": store_failures,
    "API requests / s": api_requests,
    "API latency p99 by route": api_latency,
    "Memory (RSS)": per_process,
    "CPU": per_process,
    "States published / s": bridge_states,
    "Entities": bridge_entities,
}


KIND = {PROMETHEUS_UID: "prometheus", DATASOURCE_UID: "influxdb"}


def _panels(uid: str) -> list[dict[str, Any]]:
    """The panels on that datasource (chosen through a datasource variable of its kind)."""
    return [p for p in panels(DASHBOARD) if p.get("datasource", {}).get("type") == KIND[uid]]


PROMETHEUS_PANELS = [pytest.param(p, id=p["title"]) for p in _panels(PROMETHEUS_UID)]
INFLUX_PANELS = [pytest.param(p, id=p["title"]) for p in _panels(DATASOURCE_UID)]


def test_every_panel_has_an_expectation() -> None:
    assert {p["title"] for p in _panels(PROMETHEUS_UID)} == set(PROMETHEUS_EXPECTATIONS)
    assert {p["title"] for p in _panels(DATASOURCE_UID)} == set(INFLUX_EXPECTATIONS)


@pytest.mark.integration
@pytest.mark.parametrize("panel", PROMETHEUS_PANELS)
def test_prometheus_panel_on_a_real_prometheus(platform: Platform, panel: dict[str, Any]) -> None:
    results = {
        target["refId"]: platform.prometheus.query(grafana_expression(target["expr"]), platform.at)
        for target in panel["targets"]
    }
    PROMETHEUS_EXPECTATIONS[panel["title"]](platform, results)


def test_prometheus_refuses_what_is_not_promql(platform: Platform) -> None:
    """The evaluation above can fail: a broken expression is an error, not an empty panel."""
    with pytest.raises(PrometheusError, match="parse error"):
        platform.prometheus.query("sum by (job (up)")


METRIC_NAME = re.compile(r"\b((?:iotmon|process)_[a-z0-9_]+|up)\b")


def test_every_metric_a_panel_names_is_exposed_by_a_service(platform: Platform) -> None:
    exposed = set().union(*(e.sample_names() for e in platform.expositions.values()))
    named = {
        name
        for panel in _panels(PROMETHEUS_UID)
        for target in panel["targets"]
        for name in METRIC_NAME.findall(target["expr"])
    }
    assert "iotmon_ingest_store_write_seconds_bucket" in named
    assert named - {"up"} <= exposed, sorted(named - {"up"} - exposed)


# -- the InfluxDB panels: the agents' health telemetry ---------------------------------


def agent_queue_depth(p: Platform, series: list[dict[str, Any]]) -> None:
    (agent,) = series
    assert agent["tags"]["device"] == "agent-1"
    values = [v for _, v in agent["values"] if v is not None]
    assert values == [float(m) for m in range(HEALTH_MINUTES)]


def agent_reconnects(p: Platform, series: list[dict[str, Any]]) -> None:
    (agent,) = series
    assert agent["tags"]["device"] == "agent-1"
    steps = [RECONNECTS[i + 1] - RECONNECTS[i] for i in range(HEALTH_MINUTES - 1)]
    assert [v for _, v in agent["values"]] == steps


INFLUX_EXPECTATIONS = {
    "Agent queue depth": agent_queue_depth,
    "Agent reconnects": agent_reconnects,
}


@pytest.mark.integration
@pytest.mark.parametrize("panel", INFLUX_PANELS)
def test_agent_health_panel_on_readings_sent_through_ingest(
    platform: Platform, panel: dict[str, Any]
) -> None:
    variables = resolve_variables(DASHBOARD, platform.store, {"tenant": [platform.tenant]})
    window = TimeRange(platform.t0 - timedelta(minutes=1), datetime.now(UTC), 60)
    (target,) = panel["targets"]
    series = platform.store.query(interpolate(target["query"], variables, window))
    INFLUX_EXPECTATIONS[panel["title"]](platform, series)


def test_the_dashboard_is_provisioned_from_its_folder(tmp_path: Path) -> None:
    assert DASHBOARD["uid"] == "iotmon-platform-health"
    assert {p["datasource"]["uid"] for p in panels(DASHBOARD) if p["type"] != "row"} == {
        "${prometheus}",
        "${datasource}",
    }
