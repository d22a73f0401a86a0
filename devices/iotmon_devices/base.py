"""What every device driver is: a reading record, a config base and the ``Driver`` ABC."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from iotmon_contract import Reading, SingleReading


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """One measured value of one device: the contract's ``Reading`` fields, device required.

    A plain dataclass rather than a pydantic model because a fleet simulator makes
    thousands per second; validation happens once, when the agent turns it into a
    contract payload.
    """

    device: str
    metric: str
    value: float
    unit: str | None
    ts: datetime

    def to_reading(self) -> Reading:
        """The batch form, naming its device (raises pydantic.ValidationError if invalid)."""
        return Reading(
            device=self.device, metric=self.metric, value=self.value, unit=self.unit, ts=self.ts
        )

    def to_single(self, seq: int | None = None) -> SingleReading:
        """The one-reading-per-message form; the device is in the topic."""
        return SingleReading(
            metric=self.metric, value=self.value, unit=self.unit, ts=self.ts, seq=seq
        )


@dataclass(frozen=True, slots=True)
class DriverEvent:
    """Something a device saw happen: a contract event less ``seq``, which the agent adds.

    ``type`` and ``data`` are the contract event's (``iotmon_contract.events``): a
    ``tag_read`` has ``data={"tag": ..., "rssi": ...}``. Validated when the agent
    encodes it, like a reading. ``ts`` is the device's time of the event.
    """

    device: str
    type: str
    ts: datetime
    data: Mapping[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The contract event's fields without ``seq``: what the agent numbers and sends."""
        return {"type": self.type, "ts": self.ts, **self.data}


@dataclass(frozen=True, slots=True)
class AvailabilityChange:
    """A device became reachable or unreachable (a reader unplugged, a meter silent)."""

    device: str
    online: bool
    ts: datetime


DriverOutput = DriverEvent | AvailabilityChange


class EventSink(Protocol):
    """Where a driver sends events and availability changes as they happen.

    Thread-safe and quick: drivers call it from their own threads (a serial reader,
    a GPIO callback) as well as from ``read``.
    """

    def __call__(self, item: DriverOutput, /) -> None: ...


class DriverConfigBase(BaseModel):
    """Base of every driver's YAML config; subclasses add ``type: Literal[...]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def declared_device_ids(self) -> list[str]:
        """Device ids known from the config alone (empty for drivers that discover them)."""
        return []


class Driver(ABC):
    """A source of readings and events: a simulator, a bus, a sensor on I2C, a tag reader.

    ``read`` is called by the agent once per publish interval with the time the
    readings are taken at; a driver returns what its devices measured, and leaves
    out a device that has nothing (a dropout is no reading, not a null).

    Events (faults, tag reads, ignition, positions) do not wait for the next
    interval: the agent ``attach``es a sink before ``start`` and a driver sends
    them to it as they happen. ``observe`` lets a driver act on another driver's
    events (the cabin scanner sweeps when the ignition goes off).
    """

    @property
    @abstractmethod
    def device_ids(self) -> Sequence[str]:
        """Devices this driver serves now; the agent announces their availability."""

    @abstractmethod
    def read(self, now: datetime) -> list[DeviceReading]:
        """Readings taken at ``now`` (timezone-aware)."""

    def attach(self, sink: EventSink) -> None:  # noqa: B027 - optional hook
        """Where to send events and availability changes; called once, before ``start``.

        Drivers that only produce readings ignore it.
        """

    def observe(self, event: DriverEvent) -> None:  # noqa: B027 - optional hook
        """An event another driver of the same agent sent; called on the sender's
        thread, so an override only takes note and returns at once."""

    def start(self) -> None:  # noqa: B027 - optional hook: most simulators need no set-up
        """Open buses or devices; called once before the first ``read``."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Release what ``start`` opened."""
