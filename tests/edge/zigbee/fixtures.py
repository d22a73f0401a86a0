"""The fixtures generate.mjs made from zigbee-herdsman-converters, as records for tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
GENERATIONS = ("z2m1", "z2m2")
RECEIPT_DELAY = timedelta(milliseconds=5)
"""How long after Zigbee2MQTT stamps a message the tests say it arrived."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    at: datetime
    """When Zigbee2MQTT published it (its clock)."""
    note: str | None

    @property
    def received(self) -> datetime:
        return self.at + RECEIPT_DELAY

    def document(self) -> Any:
        return json.loads(self.payload)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    key: str
    category: str
    ieee_address: str
    friendly_name: str
    model: str | None
    supported: bool

    @property
    def ieee(self) -> str:
        return self.ieee_address.removeprefix("0x")

    @property
    def device_id(self) -> str:
        return f"zb-{self.ieee}"


@dataclass(frozen=True, slots=True)
class Fixture:
    generation: str
    generator: dict[str, Any]
    base_topic: str
    start: datetime
    devices: dict[str, CatalogueEntry]
    scenarios: dict[str, list[Message]]
    unit_census: dict[str, dict[str, int]]
    bridge_devices_definition_null: list[Any] | None

    def scenario(self, *names: str) -> list[Message]:
        return [message for name in names for message in self.scenarios[name]]

    def device(self, key: str) -> CatalogueEntry:
        return self.devices[key]

    def state_messages(self, key: str, *scenarios: str) -> Iterator[Message]:
        """State messages (JSON on <base>/<friendly name>) of one device, in order."""
        entry = self.devices[key]
        names = {entry.friendly_name, "entrance/front door"}  # the rename scenario's new name
        for message in self.scenario(*scenarios):
            name = message.topic.removeprefix(self.base_topic + "/")
            if name in names and message.payload:
                yield message

    def bridge_devices(self, scenario: str = "startup") -> list[Any]:
        (message,) = [
            m for m in self.scenarios[scenario] if m.topic == f"{self.base_topic}/bridge/devices"
        ]
        document = message.document()
        assert isinstance(document, list)
        return document

    def expose(self, key: str, prop: str, scenario: str = "startup") -> dict[str, Any] | None:
        """The device's expose of ``prop``, read straight from bridge/devices."""
        ieee = self.devices[key].ieee_address
        (entry,) = [e for e in self.bridge_devices(scenario) if e["ieee_address"] == ieee]
        for expose in _flatten((entry.get("definition") or {}).get("exposes") or []):
            if expose.get("property") == prop:
                return expose
        return None

    def exposes_unit(self, key: str, prop: str, scenario: str = "startup") -> str | None:
        """The unit the device's exposes give ``prop``."""
        unit = (self.expose(key, prop, scenario) or {}).get("unit")
        return unit if isinstance(unit, str) else None


def _flatten(exposes: list[Any]) -> Iterator[dict[str, Any]]:
    for expose in exposes:
        yield expose
        yield from _flatten(expose.get("features") or [])


def _message(raw: dict[str, Any]) -> Message:
    return Message(
        topic=raw["topic"],
        payload=raw["payload"].encode(),
        retain=raw["retain"],
        qos=raw["qos"],
        at=datetime.fromisoformat(raw["at"]),
        note=raw.get("note"),
    )


@cache
def load(generation: str) -> Fixture:
    raw = json.loads((FIXTURES / f"{generation}.json").read_text())
    return Fixture(
        generation=generation,
        generator=raw["generator"],
        base_topic=raw["base_topic"],
        start=datetime.fromisoformat(raw["start"]),
        devices={
            key: CatalogueEntry(
                key=key,
                category=entry["category"],
                ieee_address=entry["ieee_address"],
                friendly_name=entry["friendly_name"],
                model=entry["model"],
                supported=entry["supported"],
            )
            for key, entry in raw["devices"].items()
        },
        scenarios={name: [_message(m) for m in ms] for name, ms in raw["scenarios"].items()},
        unit_census=raw["unit_census"],
        bridge_devices_definition_null=raw.get("bridge_devices_definition_null"),
    )
