"""What every device driver is: a reading record, a config base and the ``Driver`` ABC."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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


class DriverConfigBase(BaseModel):
    """Base of every driver's YAML config; subclasses add ``type: Literal[...]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def declared_device_ids(self) -> list[str]:
        """Device ids known from the config alone (empty for drivers that discover them)."""
        return []


class Driver(ABC):
    """A source of readings: a simulator, a bus, a sensor on I2C.

    ``read`` is called by the agent once per publish interval with the time the
    readings are taken at; a driver returns what its devices measured, and leaves
    out a device that has nothing (a dropout is no reading, not a null).
    """

    @property
    @abstractmethod
    def device_ids(self) -> Sequence[str]:
        """Devices this driver serves now; the agent announces their availability."""

    @abstractmethod
    def read(self, now: datetime) -> list[DeviceReading]:
        """Readings taken at ``now`` (timezone-aware)."""

    def start(self) -> None:  # noqa: B027 - optional hook: most simulators need no set-up
        """Open buses or devices; called once before the first ``read``."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Release what ``start`` opened."""
