"""The bridge's pure part: discovery configs Home Assistant accepts, names that never
collide, units and device classes that fit, and only news forwarded."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotmon_contract import ValidatedReading
from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_homeassistant.entities import (
    KINDS,
    Announcement,
    Entity,
    EntityKey,
    LatestReadings,
    announced_entity,
    discovery_config,
    encode,
    ha_unit,
    node_id,
    state_payload,
    topics,
)
from iotmon_registry import Device
from tests.services.homeassistant.ha_schema import (
    DISCOVERY_TOPIC,
    check_sensor_config,
    render_lookup,
)

HOW = Announcement.of("homeassistant", "bridge-1", "iotmon-homeassistant/0.2.0")
SENSOR = Device("acme", "env-1", "Kitchen", None, "gw-1", "plant-1")
GATEWAY = Device("acme", "gw-1", "", "plant-1", None, "plant-1")
ids = st.from_regex(IDENTIFIER_PATTERN, fullmatch=True)


def config_for(metric: str, unit: str | None, device: Device = SENSOR) -> dict[str, object]:
    key = EntityKey(device.tenant, device.device, metric)
    where = topics(HOW.prefix, key)
    payload = encode(discovery_config(Entity(key, ha_unit(unit)), device, HOW))
    return check_sensor_config(where.config, payload, HOW.prefix)


@pytest.mark.parametrize(
    ("metric", "unit", "device_class", "ha"),
    [
        ("temperature", "degC", "temperature", "°C"),
        ("temperature", "degF", "temperature", "°F"),
        ("humidity", "%", "humidity", "%"),
        ("co2", "ppm", "carbon_dioxide", "ppm"),
        ("power_w", "W", "power", "W"),
        ("pm25", "ug/m3", "pm25", "µg/m³"),
        ("agent_queue_bytes", "B", "data_size", "B"),
        ("agent_cpu_temperature", "degC", "temperature", "°C"),
    ],
)
def test_known_metrics_get_their_device_class_and_home_assistants_unit(
    metric: str, unit: str, device_class: str, ha: str
) -> None:
    config = config_for(metric, unit)
    assert config["device_class"] == device_class
    assert config["unit_of_measurement"] == ha


@pytest.mark.parametrize(
    ("metric", "unit"),
    [("temperature", "celsius"), ("humidity", "g/m3"), ("co2", None), ("power_w", "mW")],
)
def test_a_unit_home_assistant_refuses_for_the_class_drops_the_class_not_the_sensor(
    metric: str, unit: str | None
) -> None:
    config = config_for(metric, unit)  # valid as checked
    assert "device_class" not in config
    assert config.get("unit_of_measurement") == unit
    assert config["state_class"] == "measurement"


def test_unknown_metrics_and_totals() -> None:
    assert config_for("flow_rate", "l/min")["state_class"] == "measurement"
    total = config_for("pulses_total", None)
    assert total["state_class"] == "total_increasing"
    assert "device_class" not in total
    health = config_for("agent_queue_depth", "msg")
    assert health["entity_category"] == "diagnostic"
    assert "entity_category" not in config_for("temperature", "degC")


def test_every_known_kind_passes_the_schema_with_its_natural_unit() -> None:
    natural = {
        "temperature": "degC", "humidity": "%", "co2": "ppm", "co": "ppm", "pressure": "hPa",
        "power_w": "W", "power": "kW", "energy_wh": "Wh", "energy_kwh": "kWh", "energy": "kWh",
        "voltage": "V", "current": "A", "battery": "%", "illuminance": "lx", "pm25": "ug/m3",
        "pm10": "ug/m3", "voc": "ug/m3", "rssi": "dBm", "agent_queue_depth": "msg",
        "agent_queue_bytes": "B", "agent_queue_oldest_age_s": "s",
        "agent_queue_dropped_total": "msg", "agent_mqtt_reconnects_total": "count",
        "agent_publish_rate": "msg/s", "agent_cpu_temperature": "degC",
        "agent_rss_bytes": "B", "agent_cpu_percent": "%",
    }  # fmt: skip
    assert set(natural) == set(KINDS)
    for metric, unit in natural.items():
        config = config_for(metric, unit)
        assert config.get("device_class") == KINDS[metric].device_class, metric


def test_availability_needs_the_bridge_the_device_and_its_gateway() -> None:
    config = config_for("temperature", "degC")
    topics_ = [entry["topic"] for entry in config["availability"]]  # type: ignore[attr-defined]
    assert topics_ == [
        "iotmon/v1/_sys/status/homeassistant/bridge-1",
        "iotmon/v1/acme/env-1/status",
        "iotmon/v1/acme/gw-1/status",
    ]
    assert config["availability_mode"] == "all"
    status = b'{"state":"online","ts":"2026-11-25T07:00:00Z","agent":"iotmon-edge/1.1.0"}'
    will = b'{"state":"offline","agent":"iotmon-edge/1.1.0"}'
    for entry in config["availability"]:  # type: ignore[attr-defined]
        assert render_lookup(entry["value_template"], status) == entry["payload_available"]
        assert render_lookup(entry["value_template"], will) == entry["payload_not_available"]
    alone = config_for("temperature", "degC", GATEWAY)
    assert len(alone["availability"]) == 2  # type: ignore[arg-type]
    assert "via_device" not in alone["device"]  # type: ignore[operator]
    assert config["device"]["via_device"] == "iotmon/acme/gw-1"  # type: ignore[index]
    assert config["device"]["name"] == "Kitchen"  # type: ignore[index]
    assert alone["device"]["name"] == "gw-1"  # type: ignore[index]


def test_value_template_reads_the_state_payload() -> None:
    config = config_for("temperature", "degC")
    reading = ValidatedReading("acme", "env-1", "temperature", 21.5, "degC", 1_764_000_000 * 10**9)
    payload = state_payload(reading)
    assert render_lookup(str(config["value_template"]), payload) == 21.5
    assert json.loads(payload)["ts"] == "2025-11-24T16:00:00.000000Z"
    assert config["json_attributes_topic"] == config["state_topic"]


@given(ids, ids, ids, ids)
def test_node_ids_are_valid_and_never_shared(t1: str, d1: str, t2: str, d2: str) -> None:
    first, second = node_id(t1, d1), node_id(t2, d2)
    for node in (first, second):
        assert DISCOVERY_TOPIC.match(f"sensor/{node}/temperature/config"), node
    if (t1, d1) != (t2, d2):
        assert first != second


def test_readable_ids_that_would_collide_are_kept_apart() -> None:
    assert node_id("a_b", "c") != node_id("a", "b_c")
    assert node_id("a.b", "c") != node_id("a_b", "c")


@given(ids, ids, st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True))
def test_unique_ids_parse_back(tenant: str, device: str, metric: str) -> None:
    key = EntityKey(tenant, device, metric)
    assert EntityKey.from_unique_id(key.unique_id) == key


def test_announced_entity_reads_only_our_configs() -> None:
    key = EntityKey("acme", "env-1", "temperature")
    ours = encode(discovery_config(Entity(key, "°C"), SENSOR, HOW))
    assert announced_entity(ours) == Entity(key, "°C")
    theirs = json.dumps({"unique_id": "iotmon/acme/env-1/x", "origin": {"name": "z2m"}})
    assert announced_entity(theirs.encode()) is None
    assert announced_entity(b"{not json") is None
    assert announced_entity(b"[]") is None


def reading(metric: str, value: float, ts: int, device: str = "env-1") -> ValidatedReading:
    return ValidatedReading("acme", device, metric, value, None, ts)


def test_only_news_is_forwarded() -> None:
    latest = LatestReadings()
    first = latest.news([reading("t", 1, 10), reading("t", 2, 20), reading("h", 5, 10)])
    assert sorted((r.metric, r.value) for r in first) == [("h", 5), ("t", 2)]
    # A drained backlog (older) after the live value: not news.
    assert latest.news([reading("t", 0, 15)]) == []
    assert [r.value for r in latest.news([reading("t", 3, 30)])] == [3]
    latest.forget("acme", "env-1")
    assert [r.value for r in latest.news([reading("t", 0, 15)])] == [0]
