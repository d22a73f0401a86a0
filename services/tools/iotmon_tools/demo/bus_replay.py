"""A bus's devices as one edge agent's driver: the school-bus simulator's day, played on the
demo clock.

The simulator says what each device of a bus sent and when it reached the platform; this
driver hands each event to the agent when the demo clock passes that moment, so the agent
numbers and publishes it like a real reader's. The agent also reports the vehicle as a
device of its own: its last position (latitude, longitude, speed) and the door reads since
the previous cycle (boardings and alightings), what an operator's map and counts show.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from iotmon_contract.events import Direction, PositionEvent, TagReadEvent, parse_event
from iotmon_devices.base import AvailabilityChange, DeviceReading, Driver, DriverEvent, EventSink
from iotmon_devices.simulators.school_bus import Line


@dataclass(frozen=True, slots=True)
class BusDevices:
    vehicle: str
    """The bus itself (its position and door counts): a device of the bus's agent."""
    gateway: str
    """The bus's edge agent: it reports its own availability."""
    devices: tuple[str, ...]
    """The readers, telematics unit and presence sensor whose events are replayed."""


@dataclass(slots=True)
class _Position:
    lat: float
    lon: float
    speed_kmh: float | None


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class BusReplayDriver(Driver):
    def __init__(self, bus: BusDevices, lines: Sequence[Line]) -> None:
        self._bus = bus
        mine = {*bus.devices, bus.gateway}
        self._lines = sorted(
            (line for line in lines if line.data.get("device") in mine),
            key=lambda line: (line.at, line.order),
        )
        self._next = 0
        self._sink: EventSink | None = None
        self._position: _Position | None = None
        self._boardings = 0
        self._alightings = 0
        self.invalid = 0
        """Simulator lines the contract refuses (none expected): skipped, counted."""

    @property
    def device_ids(self) -> Sequence[str]:
        return [self._bus.vehicle, *self._bus.devices]

    @property
    def remaining(self) -> int:
        return len(self._lines) - self._next

    def attach(self, sink: EventSink) -> None:
        self._sink = sink

    def read(self, now: datetime) -> list[DeviceReading]:
        due = now.timestamp()
        while self._next < len(self._lines) and self._lines[self._next].at <= due:
            self._play(self._lines[self._next].data, now)
            self._next += 1
        vehicle = self._bus.vehicle
        readings = [
            DeviceReading(vehicle, "boardings", float(self._boardings), None, now),
            DeviceReading(vehicle, "alightings", float(self._alightings), None, now),
        ]
        self._boardings = self._alightings = 0
        position = self._position
        if position is not None:
            readings += [
                DeviceReading(vehicle, "latitude", position.lat, "deg", now),
                DeviceReading(vehicle, "longitude", position.lon, "deg", now),
            ]
            if position.speed_kmh is not None:
                readings.append(DeviceReading(vehicle, "speed", position.speed_kmh, "km/h", now))
        return readings

    def _play(self, data: dict[str, Any], now: datetime) -> None:
        sink = self._sink
        device = str(data["device"])
        if "status" in data:
            if device == self._bus.gateway or sink is None:
                return  # the agent itself says whether it is online
            status = data["status"]
            ts = _parse_ts(status["ts"]) if "ts" in status else now
            sink(AvailabilityChange(device, status["state"] == "online", min(ts, now)))
            return
        try:
            # As the wire has it, into the contract's own types (a direction is an enum).
            event = parse_event(json.dumps(data["event"]))
        except ValidationError:
            self.invalid += 1
            return
        fields = event.model_dump(exclude={"type", "ts", "seq"}, exclude_none=True)
        if isinstance(event, PositionEvent):
            self._position = _Position(event.lat, event.lon, event.speed_kmh)
        elif isinstance(event, TagReadEvent):
            if event.direction is Direction.IN:
                self._boardings += 1
            elif event.direction is Direction.OUT:
                self._alightings += 1
        if sink is not None:
            # The agent numbers what it sends; a device clock ahead of the demo's is held
            # back to now (nothing leaves stamped in the future).
            sink(DriverEvent(device, event.type, min(event.ts, now), fields))
