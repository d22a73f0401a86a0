"""Home Assistant's MQTT discovery rules for a sensor, written for these tests from its
documentation (MQTT integration: discovery, availability, device and origin; MQTT sensor;
sensor device classes and their units). Independent of the bridge's own tables.

``check_sensor_config(topic, payload, prefix)`` raises AssertionError naming what Home
Assistant would refuse (or silently drop: it removes unknown keys from a discovery payload,
so an unknown key here is a typo that would lose a setting).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

DISCOVERY_TOPIC = re.compile(
    r"^(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config$"
)
"""After the discovery prefix: ``<component>/[<node_id>/]<object_id>/config``."""

AVAILABILITY_MODES = {"all", "any", "latest"}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
ENTITY_CATEGORIES = {"config", "diagnostic"}

# Sensor device classes with the units Home Assistant documents for them (a subset of
# its list: classes not listed here are refused by these tests).
UNITS_OF = {
    "temperature": {"°C", "°F", "K"},
    "humidity": {"%"},
    "moisture": {"%"},
    "battery": {"%"},
    "carbon_dioxide": {"ppm"},
    "carbon_monoxide": {"ppm"},
    "pressure": {"cbar", "bar", "hPa", "mmHg", "inHg", "kPa", "mbar", "Pa", "psi"},
    "atmospheric_pressure": {"cbar", "bar", "hPa", "mmHg", "inHg", "kPa", "mbar", "Pa", "psi"},
    "power": {"W", "kW"},
    "energy": {"Wh", "kWh", "MWh", "MJ", "GJ"},
    "voltage": {"V", "mV"},
    "current": {"A", "mA"},
    "illuminance": {"lx"},
    "pm25": {"µg/m³"},
    "pm10": {"µg/m³"},
    "volatile_organic_compounds": {"µg/m³"},
    "signal_strength": {"dB", "dBm"},
    "data_size": {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB"},
    "duration": {"d", "h", "min", "s", "ms"},
}

COMMON_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "device", "enabled_by_default", "entity_category", "icon", "json_attributes_template",
    "json_attributes_topic", "name", "object_id", "default_entity_id", "origin",
    "payload_available", "payload_not_available", "qos", "unique_id", "encoding",
}  # fmt: skip
SENSOR_KEYS = COMMON_KEYS | {
    "state_topic", "value_template", "device_class", "expire_after", "force_update",
    "last_reset_value_template", "options", "state_class", "suggested_display_precision",
    "unit_of_measurement",
}  # fmt: skip
AVAILABILITY_KEYS = {"topic", "payload_available", "payload_not_available", "value_template"}
DEVICE_KEYS = {
    "identifiers", "connections", "manufacturer", "model", "model_id", "name", "hw_version",
    "serial_number", "sw_version", "via_device", "suggested_area", "configuration_url",
}  # fmt: skip
ORIGIN_KEYS = {"name", "sw_version", "support_url"}


def is_topic(value: Any) -> bool:
    """A topic Home Assistant can subscribe to and we publish on: no wildcards, no NUL."""
    return (
        isinstance(value, str)
        and 0 < len(value.encode()) <= 65535
        and not set(value) & {"+", "#", "\0"}
    )


def is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value and "}}" in value


def render_lookup(template: str, payload: bytes) -> Any:
    """Render the one template form the bridge uses, ``{{ value_json.<key> }}``, as Home
    Assistant would for a JSON payload."""
    match = re.fullmatch(r"\{\{\s*value_json\.(\w+)\s*\}\}", template)
    assert match, f"not a value_json lookup: {template}"
    return json.loads(payload)[match.group(1)]


def check_sensor_config(topic: str, payload: bytes, prefix: str) -> dict[str, Any]:
    assert topic.startswith(prefix + "/"), topic
    match = DISCOVERY_TOPIC.match(topic[len(prefix) + 1 :])
    assert match, f"not a discovery topic Home Assistant reads: {topic}"
    assert match.group("component") == "sensor", topic
    config = json.loads(payload)
    assert isinstance(config, dict), "a discovery payload is a JSON object"
    unknown = set(config) - SENSOR_KEYS
    assert not unknown, f"keys Home Assistant would drop: {unknown}"
    assert is_topic(config.get("state_topic")), "state_topic is required and a topic"
    assert isinstance(config.get("unique_id"), str), "unique_id is a string"
    assert config["unique_id"], "unique_id is not empty"
    for key in ("value_template", "json_attributes_template", "availability_template"):
        if key in config:
            assert is_template(config[key]), key
    if "json_attributes_topic" in config:
        assert is_topic(config["json_attributes_topic"])
    if "qos" in config:
        assert config["qos"] in (0, 1, 2)
    if "expire_after" in config:
        assert isinstance(config["expire_after"], int)
        assert config["expire_after"] > 0
    if "entity_category" in config:
        assert config["entity_category"] in ENTITY_CATEGORIES
    _check_availability(config)
    _check_device_class(config)
    _check_device(config)
    if "origin" in config:
        origin = config["origin"]
        assert isinstance(origin, dict)
        assert not set(origin) - ORIGIN_KEYS
        assert isinstance(origin.get("name"), str), "origin.name is required"
        assert origin["name"], "origin.name is not empty"
    return config


def _check_availability(config: Mapping[str, Any]) -> None:
    if "availability" in config:
        assert "availability_topic" not in config, "availability and availability_topic exclude"
        entries = config["availability"]
        assert isinstance(entries, list)
        assert entries
        for entry in entries:
            assert not set(entry) - AVAILABILITY_KEYS, entry
            assert is_topic(entry.get("topic")), entry
            for key in ("payload_available", "payload_not_available"):
                assert isinstance(entry.get(key, ""), str)
            if "value_template" in entry:
                assert is_template(entry["value_template"])
    if "availability_mode" in config:
        assert config["availability_mode"] in AVAILABILITY_MODES


def _check_device_class(config: Mapping[str, Any]) -> None:
    state_class = config.get("state_class")
    if state_class is not None:
        assert state_class in STATE_CLASSES, state_class
    device_class = config.get("device_class")
    if device_class is None:
        return
    assert device_class in UNITS_OF, f"device class {device_class!r} unknown to these checks"
    unit = config.get("unit_of_measurement")
    # Home Assistant refuses the config when the unit does not fit the device class.
    assert unit in UNITS_OF[device_class], f"unit {unit!r} not valid for {device_class}"


def _check_device(config: Mapping[str, Any]) -> None:
    if "device" not in config:
        return
    device = config["device"]
    assert isinstance(device, dict)
    assert not set(device) - DEVICE_KEYS, set(device) - DEVICE_KEYS
    identifiers = device.get("identifiers") or []
    connections = device.get("connections") or []
    assert identifiers or connections, "a device needs identifiers or connections"
    assert all(isinstance(i, str) for i in identifiers)
    for key in DEVICE_KEYS - {"identifiers", "connections"}:
        if key in device:
            assert isinstance(device[key], str), key
