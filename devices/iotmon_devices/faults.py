"""Driver faults: what went wrong, how long to wait before trying again, and the events.

A driver raises ``DriverFault`` with a ``FaultCode``; whoever runs it (``SupervisedDriver``
for polled drivers, a reader's own thread for serial devices) hands it to a
``FaultTracker``, which turns the start and the end of each fault episode into one
contract ``fault`` event each (not one per failed retry), and marks the device
unreachable while it cannot be reached.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iotmon_contract import FaultSeverity
from iotmon_contract.events import MAX_DETAIL_CHARS
from iotmon_contract.fields import to_printable
from iotmon_devices.base import AvailabilityChange, DriverEvent, EventSink


class FaultCode(StrEnum):
    """Stable fault codes of the contract's ``fault`` event, one per kind of failure."""

    UNPLUGGED = "unplugged"
    """The device or its port is not there (no I2C ACK, no serial port, no w1 folder)."""
    TIMEOUT = "timeout"
    """The device is there but did not answer in time."""
    BUS_ERROR = "bus_error"
    """The bus reported an error (I2C EIO, a Modbus exception reply, a GPIO refusal)."""
    CRC_ERROR = "crc_error"
    """A frame or line arrived damaged (Modbus CRC, 1-Wire CRC, NMEA checksum)."""
    BAD_DATA = "bad_data"
    """An intact answer that makes no sense (wrong chip id, 85 degC power-on value)."""
    TAMPER = "tamper"
    """Signs of interference, e.g. a meter's pulse input held active by a magnet."""
    METER_RESET = "meter_reset"
    """A cumulative register went back or jumped: a replaced or reset meter."""
    SWEEP_INCOMPLETE = "sweep_incomplete"
    """A cabin sweep did not finish (no DONE, or reads lost): the bus is not known empty."""
    DRIVER_ERROR = "driver_error"
    """An unexpected error in the driver itself (a bug); logged with its traceback."""

    @property
    def unreachable(self) -> bool:
        """Faults during which the device counts as offline."""
        return self in {FaultCode.UNPLUGGED, FaultCode.TIMEOUT}


class DriverFault(Exception):
    """A device failed; ``code`` says how. Raised by drivers, caught by their supervisor."""

    def __init__(
        self,
        code: FaultCode,
        detail: str,
        severity: FaultSeverity = FaultSeverity.ERROR,
    ) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail
        self.severity = severity


class RetryPolicy(BaseModel):
    """How a failing device is retried: exponential backoff between ``initial_s`` and ``max_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_s: float = Field(1.0, gt=0, le=3600, description="Wait after the first failure, s.")
    max_s: float = Field(300.0, gt=0, le=86400, description="Longest wait between retries, s.")
    multiplier: float = Field(
        2.0, ge=1, le=10, description="Each further failure waits this many times longer."
    )

    @model_validator(mode="after")
    def _ordered(self) -> RetryPolicy:
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be at least initial_s")
        return self


class Backoff:
    """The waits of one failing device: initial, initial*multiplier, ... up to max."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._failures = 0

    @property
    def failures(self) -> int:
        """Failures in a row since the last success."""
        return self._failures

    @property
    def max_s(self) -> float:
        return self._policy.max_s

    def next_delay(self) -> float:
        """Count a failure; the seconds to wait before the next attempt."""
        policy = self._policy
        # Capped exponent: a device down for weeks must not overflow the float.
        exponent = min(self._failures, 64)
        self._failures += 1
        return min(policy.max_s, policy.initial_s * policy.multiplier**exponent)

    def reset(self) -> None:
        self._failures = 0


class FaultTracker:
    """Turns a device's failures and recoveries into fault events and availability.

    One ``fault`` event when an episode starts (or its code changes), one with
    ``cleared: true`` when it ends; failed retries in between send nothing.
    """

    def __init__(self, device: str, component: str, sink: EventSink | None) -> None:
        self._device = device
        self._component = component
        self._sink = sink
        self._active: DriverFault | None = None
        self._online = True

    @property
    def active(self) -> DriverFault | None:
        """The fault of the episode in progress, or None while the device works."""
        return self._active

    def attach(self, sink: EventSink) -> None:
        self._sink = sink

    def failed(self, fault: DriverFault, now: datetime) -> bool:
        """A failure at ``now``; True when it started a new episode (an event was sent)."""
        active = self._active
        if active is not None and active.code is fault.code:
            return False
        if active is not None:
            self._send_fault(active, now, cleared=True)
        self._active = fault
        self._send_fault(fault, now, cleared=False)
        if fault.code.unreachable == self._online:
            # Unplugged -> answering with CRC errors is reachable again, and back.
            self._online = not fault.code.unreachable
            self._send(AvailabilityChange(self._device, self._online, now))
        return True

    def recovered(self, now: datetime) -> bool:
        """The device works again at ``now``; True when that ended an episode."""
        if not self._online:
            self._online = True
            self._send(AvailabilityChange(self._device, True, now))
        active = self._active
        if active is None:
            return False
        self._active = None
        self._send_fault(active, now, cleared=True)
        return True

    def _send_fault(self, fault: DriverFault, now: datetime, *, cleared: bool) -> None:
        data: dict[str, Any] = {
            "component": self._component,
            "code": fault.code.value,
            "severity": fault.severity,
            "detail": to_printable(fault.detail, MAX_DETAIL_CHARS),
        }
        if cleared:
            data["cleared"] = True
        self._send(DriverEvent(self._device, "fault", now, data))

    def _send(self, item: DriverEvent | AvailabilityChange) -> None:
        if self._sink is not None:
            self._sink(item)
