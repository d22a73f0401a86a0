"""Zigbee2MQTT's ``bridge/devices`` as records keyed on the IEEE address.

Read leniently, entry by entry: one malformed entry is skipped (and counted), the
others kept. What the bridge needs of an entry is its IEEE address (the device's
identity: it survives renames and model changes), its friendly name (a label, and
the topic its state arrives on) and the properties its ``definition.exposes`` name
with their type and unit. Entries of Zigbee2MQTT 1.x and 2.x read the same; a
``definition`` that is null (1.17 to 1.34), absent (later versions) or generated
(``supported: false``) gives a device without exposes or with the generated ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

_IEEE = re.compile(r"^0x([0-9a-fA-F]{16})$")
_MAX_NAME_CHARS = 1024


class ExposeKind(Enum):
    NUMERIC = "numeric"
    BINARY = "binary"
    OTHER = "other"
    """enum, text, list, composite: not a reading."""


@dataclass(frozen=True, slots=True)
class Expose:
    """One property a device reports, as its definition describes it."""

    kind: ExposeKind
    unit: str | None = None
    value_on: Any = None
    value_off: Any = None


@dataclass(frozen=True, slots=True)
class ZigbeeDevice:
    ieee: str
    """Lower-case hex without ``0x``: the stable identity."""
    friendly_name: str
    type: str
    model: str | None
    vendor: str | None
    supported: bool
    exposes: Mapping[str, Expose] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class DeviceList:
    devices: list[ZigbeeDevice]
    skipped: list[str]
    """Why each skipped entry was skipped (index and reason)."""


def ieee_of(value: object) -> str | None:
    """``0x00158d0001a2b3c4`` → ``00158d0001a2b3c4``; None if it is not an IEEE address."""
    if not isinstance(value, str):
        return None
    match = _IEEE.match(value)
    return match.group(1).lower() if match else None


def parse_devices(document: object) -> DeviceList:
    """The devices of a parsed ``bridge/devices`` payload; the coordinator is left out."""
    if not isinstance(document, list):
        raise ValueError(f"bridge/devices is a {type(document).__name__}, not a list")
    devices: list[ZigbeeDevice] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(document):
        try:
            device = _device(entry)
        except ValueError as exc:
            skipped.append(f"[{index}]: {exc}")
            continue
        if device is None:
            continue
        if device.ieee in seen:
            skipped.append(f"[{index}]: IEEE address 0x{device.ieee} listed twice")
            continue
        seen.add(device.ieee)
        devices.append(device)
    return DeviceList(devices, skipped)


def _device(entry: object) -> ZigbeeDevice | None:
    if not isinstance(entry, dict):
        raise ValueError(f"entry is a {type(entry).__name__}, not an object")
    ieee = ieee_of(entry.get("ieee_address"))
    if ieee is None:
        raise ValueError(f"ieee_address {str(entry.get('ieee_address'))[:40]!r} is not 0x + 16 hex")
    kind = entry.get("type")
    if kind == "Coordinator":
        return None
    name = entry.get("friendly_name")
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME_CHARS:
        raise ValueError(f"0x{ieee}: friendly_name is missing or not a string")
    definition = entry.get("definition")
    model = vendor = None
    exposes: dict[str, Expose] = {}
    if isinstance(definition, dict):
        model = _text(definition.get("model"))
        vendor = _text(definition.get("vendor"))
        raw = definition.get("exposes")
        if isinstance(raw, list):
            for item in raw:
                _collect(item, exposes)
    elif definition is not None:
        raise ValueError(f"0x{ieee}: definition is a {type(definition).__name__}")
    return ZigbeeDevice(
        ieee=ieee,
        friendly_name=name,
        type=kind if isinstance(kind, str) else "Unknown",
        model=model,
        vendor=vendor,
        supported=entry.get("supported") is True,
        exposes=MappingProxyType(exposes),
    )


def _text(value: object) -> str | None:
    return value[:200] if isinstance(value, str) else None


def _collect(expose: object, into: dict[str, Expose]) -> None:
    """Every property the expose publishes at the top level of the state message.

    A light, switch, lock, climate, fan or cover groups top-level properties (state,
    brightness, state_l2) as its features; a composite or list publishes one property
    whose value is an object or array (``color``: ``{x, y}``), never its features.
    """
    if not isinstance(expose, dict):
        return
    kind = expose.get("type")
    prop = expose.get("property")
    features = expose.get("features")
    if kind not in ("composite", "list") and isinstance(features, list):
        for feature in features:
            _collect(feature, into)
        return
    if not isinstance(prop, str) or prop in into:
        return
    if kind == "numeric":
        unit = expose.get("unit")
        into[prop] = Expose(ExposeKind.NUMERIC, unit if isinstance(unit, str) else None)
    elif kind == "binary":
        into[prop] = Expose(
            ExposeKind.BINARY, value_on=expose.get("value_on"), value_off=expose.get("value_off")
        )
    else:
        into[prop] = Expose(ExposeKind.OTHER)


__all__ = [
    "DeviceList",
    "Expose",
    "ExposeKind",
    "ZigbeeDevice",
    "ieee_of",
    "parse_devices",
]
