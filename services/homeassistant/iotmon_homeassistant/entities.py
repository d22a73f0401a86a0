"""What Home Assistant is told: one sensor entity per (device, metric), pure and I/O-free.

An entity's discovery config (``<prefix>/sensor/<node_id>/<metric>/config``, retained)
names a state topic of its own, ``…/<metric>/state``, where the bridge publishes
``{"value": …, "ts": …}`` for that one metric. One telemetry topic carries many
metrics, and a gateway's batches carry its children's readings too, so pointing
Home Assistant at the telemetry topic would make every sensor run a template over
every batch; a state topic per metric keeps its templates one lookup.

Units: the contract's units (``degC``) become Home Assistant's (``°C``); a device
class is claimed only with a unit Home Assistant accepts for it (it refuses the
whole config otherwise), else the sensor goes without one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from iotmon_contract import ValidatedReading, service_status_topic, status_topic
from iotmon_homeassistant.config import SERVICE_NAME
from iotmon_registry import Device

MANUFACTURER = "iotmon"
ORIGIN = "iotmon"
UNIQUE_ID_PREFIX = "iotmon/"
AVAILABLE, NOT_AVAILABLE = "online", "offline"
"""The contract's ``DeviceStatus.state`` values, read by ``STATE_TEMPLATE``."""
STATE_TEMPLATE = "{{ value_json.state }}"
VALUE_TEMPLATE = "{{ value_json.value }}"
ATTRIBUTES_TEMPLATE = "{{ {'measured_at': value_json.ts} | tojson }}"

UNITS = {
    "degC": "°C",
    "degF": "°F",
    "ug/m3": "µg/m³",
    "mg/m3": "mg/m³",
    "m3": "m³",
    "m3/h": "m³/h",
    "uS/cm": "µS/cm",
}
"""Contract spellings (ASCII) → Home Assistant's; any other unit is passed as it is."""

_TEMPERATURE = frozenset({"°C", "°F", "K"})
_PRESSURE = frozenset({"Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi"})
_DATA_SIZE = frozenset(
    {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB"}
)
_DURATION = frozenset({"d", "h", "min", "s", "ms"})

DEVICE_CLASS_UNITS: Mapping[str, frozenset[str]] = {
    "temperature": _TEMPERATURE,
    "humidity": frozenset({"%"}),
    "moisture": frozenset({"%"}),
    "battery": frozenset({"%"}),
    "carbon_dioxide": frozenset({"ppm"}),
    "carbon_monoxide": frozenset({"ppm"}),
    "pressure": _PRESSURE,
    "atmospheric_pressure": _PRESSURE,
    "power": frozenset({"W", "kW"}),
    "energy": frozenset({"Wh", "kWh", "MWh"}),
    "voltage": frozenset({"V", "mV"}),
    "current": frozenset({"A", "mA"}),
    "illuminance": frozenset({"lx"}),
    "pm25": frozenset({"µg/m³"}),
    "pm10": frozenset({"µg/m³"}),
    "volatile_organic_compounds": frozenset({"µg/m³"}),
    "signal_strength": frozenset({"dB", "dBm"}),
    "data_size": _DATA_SIZE,
    "duration": _DURATION,
}
"""Units Home Assistant accepts per sensor device class (its sensor documentation);
only the classes this bridge claims."""


@dataclass(frozen=True, slots=True)
class SensorKind:
    device_class: str | None
    state_class: str = "measurement"
    diagnostic: bool = False
    """The agent's own health (queue, CPU…): shown apart from the device's readings."""


KINDS: Mapping[str, SensorKind] = {
    "temperature": SensorKind("temperature"),
    "humidity": SensorKind("humidity"),
    "co2": SensorKind("carbon_dioxide"),
    "co": SensorKind("carbon_monoxide"),
    "pressure": SensorKind("pressure"),
    "power_w": SensorKind("power"),
    "power": SensorKind("power"),
    "energy_wh": SensorKind("energy", "total_increasing"),
    "energy_kwh": SensorKind("energy", "total_increasing"),
    "energy": SensorKind("energy", "total_increasing"),
    "voltage": SensorKind("voltage"),
    "current": SensorKind("current"),
    "battery": SensorKind("battery"),
    "illuminance": SensorKind("illuminance"),
    "pm25": SensorKind("pm25"),
    "pm10": SensorKind("pm10"),
    "voc": SensorKind("volatile_organic_compounds"),
    "rssi": SensorKind("signal_strength", diagnostic=True),
    "agent_queue_depth": SensorKind(None, diagnostic=True),
    "agent_queue_bytes": SensorKind("data_size", diagnostic=True),
    "agent_queue_oldest_age_s": SensorKind("duration", diagnostic=True),
    "agent_queue_dropped_total": SensorKind(None, "total_increasing", diagnostic=True),
    "agent_mqtt_reconnects_total": SensorKind(None, "total_increasing", diagnostic=True),
    "agent_publish_rate": SensorKind(None, diagnostic=True),
    "agent_cpu_temperature": SensorKind("temperature", diagnostic=True),
    "agent_rss_bytes": SensorKind("data_size", diagnostic=True),
    "agent_cpu_percent": SensorKind(None, diagnostic=True),
}
"""Known metrics (the simulators', common sensors', the edge agent's health); any other
metric is a plain measurement sensor (``…_total``: a growing total)."""


def kind_of(metric: str) -> SensorKind:
    known = KINDS.get(metric)
    if known is not None:
        return known
    if metric.endswith("_total"):
        return SensorKind(None, "total_increasing", diagnostic=metric.startswith("agent_"))
    return SensorKind(None, diagnostic=metric.startswith("agent_"))


def ha_unit(unit: str | None) -> str | None:
    return None if unit is None else UNITS.get(unit, unit)


@dataclass(frozen=True, slots=True)
class EntityKey:
    tenant: str
    device: str
    metric: str

    @property
    def unique_id(self) -> str:
        """Stable and unique: ids cannot contain ``/``, so it also parses back."""
        return f"{UNIQUE_ID_PREFIX}{self.tenant}/{self.device}/{self.metric}"

    @classmethod
    def from_unique_id(cls, unique_id: str) -> EntityKey | None:
        if not unique_id.startswith(UNIQUE_ID_PREFIX):
            return None
        parts = unique_id[len(UNIQUE_ID_PREFIX) :].split("/")
        return cls(*parts) if len(parts) == 3 and all(parts) else None


def node_id(tenant: str, device: str) -> str:
    """The discovery topic's node id: Home Assistant allows ``[a-zA-Z0-9_-]``, our ids
    also ``.``, and ``_``/``-`` occur inside ids, so the readable part alone could name
    two devices alike; a short hash of the exact ids keeps them apart."""
    digest = hashlib.sha256(f"{tenant}/{device}".encode()).hexdigest()[:8]
    return f"iotmon_{tenant}_{device}".replace(".", "_") + f"_{digest}"


@dataclass(frozen=True, slots=True)
class Topics:
    config: str
    state: str


def topics(prefix: str, key: EntityKey) -> Topics:
    base = f"{prefix}/sensor/{node_id(key.tenant, key.device)}/{key.metric}"
    return Topics(f"{base}/config", f"{base}/state")


@dataclass(frozen=True, slots=True)
class Entity:
    """An announced sensor: its key and the Home Assistant unit it was announced with."""

    key: EntityKey
    unit: str | None


@dataclass(frozen=True, slots=True)
class Announcement:
    """How the bridge describes every entity (from its settings)."""

    prefix: str
    bridge_status_topic: str
    software: str
    device_availability: bool = True
    expire_after_s: int | None = None

    @classmethod
    def of(
        cls,
        prefix: str,
        instance: str,
        software: str,
        *,
        device_availability: bool = True,
        expire_after_s: int | None = None,
    ) -> Announcement:
        return cls(
            prefix,
            service_status_topic(SERVICE_NAME, instance),
            software,
            device_availability,
            expire_after_s,
        )


def _availability(topic: str) -> dict[str, str]:
    return {
        "topic": topic,
        "value_template": STATE_TEMPLATE,
        "payload_available": AVAILABLE,
        "payload_not_available": NOT_AVAILABLE,
    }


def discovery_config(entity: Entity, device: Device, how: Announcement) -> dict[str, Any]:
    """The retained discovery payload of one sensor (full key names, no abbreviations)."""
    key = entity.key
    kind = kind_of(key.metric)
    unit = entity.unit
    device_class = kind.device_class
    if device_class is not None and unit not in DEVICE_CLASS_UNITS.get(device_class, ()):
        device_class = None
    availability = [_availability(how.bridge_status_topic)]
    if how.device_availability:
        availability.append(_availability(status_topic(key.tenant, key.device)))
        if device.gateway is not None:
            # A crashed gateway's will marks only the gateway offline; its children keep
            # their retained "online" (the edge agent's docstring), so both must say so.
            availability.append(_availability(status_topic(key.tenant, device.gateway)))
    state_topic = topics(how.prefix, key).state
    config: dict[str, Any] = {
        "name": key.metric.replace("_", " ").capitalize(),
        "unique_id": key.unique_id,
        "state_topic": state_topic,
        "value_template": VALUE_TEMPLATE,
        "json_attributes_topic": state_topic,
        "json_attributes_template": ATTRIBUTES_TEMPLATE,
        "state_class": kind.state_class,
        "availability": availability,
        "availability_mode": "all",
        "qos": 1,
        "device": _device(device),
        "origin": {"name": ORIGIN, "sw_version": how.software},
    }
    if unit is not None:
        config["unit_of_measurement"] = unit
    if device_class is not None:
        config["device_class"] = device_class
    if kind.diagnostic:
        config["entity_category"] = "diagnostic"
    if how.expire_after_s is not None:
        config["expire_after"] = how.expire_after_s
    return config


def _device(device: Device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "identifiers": [device_identifier(device.tenant, device.device)],
        "name": device.name or device.device,
        "manufacturer": MANUFACTURER,
        "model": "gateway child" if device.gateway else "device",
    }
    if device.gateway is not None:
        info["via_device"] = device_identifier(device.tenant, device.gateway)
    if device.effective_site is not None:
        info["suggested_area"] = device.effective_site
    return info


def device_identifier(tenant: str, device: str) -> str:
    return f"{UNIQUE_ID_PREFIX}{tenant}/{device}"


def encode(config: Mapping[str, Any]) -> bytes:
    return json.dumps(config, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def state_payload(reading: ValidatedReading) -> bytes:
    ts = datetime.fromtimestamp(reading.ts_ns / 1e9, UTC)
    stamp = ts.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return json.dumps({"value": reading.value, "ts": stamp}, separators=(",", ":")).encode()


def announced_entity(payload: bytes) -> Entity | None:
    """The entity a retained discovery config describes, if this bridge wrote it."""
    try:
        config = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    origin = config.get("origin")
    unique_id = config.get("unique_id")
    if not isinstance(origin, dict) or origin.get("name") != ORIGIN:
        return None
    if not isinstance(unique_id, str):
        return None
    key = EntityKey.from_unique_id(unique_id)
    unit = config.get("unit_of_measurement")
    if key is None or not (unit is None or isinstance(unit, str)):
        return None
    return Entity(key, unit)


class LatestReadings:
    """Which readings are news: per entity, only a reading newer than the last one sent.

    An edge agent drains a backlog after an outage oldest first, behind live readings;
    Home Assistant would otherwise show an old value as the current one.
    """

    def __init__(self) -> None:
        self._sent: dict[EntityKey, int] = {}

    def news(self, readings: Iterable[ValidatedReading]) -> list[ValidatedReading]:
        newest: dict[EntityKey, ValidatedReading] = {}
        for reading in readings:
            key = EntityKey(reading.tenant, reading.device, reading.metric)
            held = newest.get(key)
            if held is None or reading.ts_ns > held.ts_ns:
                newest[key] = reading
        fresh = []
        for key, reading in newest.items():
            if reading.ts_ns > self._sent.get(key, -1):
                self._sent[key] = reading.ts_ns
                fresh.append(reading)
        return fresh

    def forget(self, tenant: str, device: str) -> None:
        for key in [k for k in self._sent if (k.tenant, k.device) == (tenant, device)]:
            del self._sent[key]
