"""One meter's readings from its register: accounting, metrics and the meter_reset fault."""

from __future__ import annotations

import logging
from datetime import datetime

from iotmon_contract import FaultSeverity
from iotmon_devices.base import DeviceReading, EventSink
from iotmon_devices.faults import DriverFault, FaultCode, FaultTracker
from iotmon_devices.meters.accounting import CumulativeRegister, StepKind
from iotmon_devices.meters.metrics import Medium, meter_readings

logger = logging.getLogger(__name__)


class MeterAccount:
    """Turns a meter's register reads into its metrics.

    A confirmed replacement (or reset) sends a ``meter_reset`` warning fault, cleared
    by the next ordinary read, so the cloud can tell a new baseline from a leak.
    """

    def __init__(self, device: str, medium: Medium, register: CumulativeRegister) -> None:
        self._device = device
        self._medium = medium
        self._register = register
        self._faults = FaultTracker(device, "meter", None)

    def attach(self, sink: EventSink) -> None:
        self._faults.attach(sink)

    @property
    def medium(self) -> Medium:
        return self._medium

    def readings(self, total: float, now: datetime) -> list[DeviceReading]:
        before = self._register.total
        step = self._register.update(total, now)
        if step.kind is StepKind.REPLACED:
            self._faults.failed(
                DriverFault(
                    FaultCode.METER_RESET,
                    f"register went from {before} to {total}: a new baseline "
                    "(meter replaced or reset); the interval across it is unknown",
                    FaultSeverity.WARNING,
                ),
                now,
            )
        elif step.kind is StepKind.UNCONFIRMED:
            logger.warning(
                "%s: register read %s after %s: holding it until the next read confirms it",
                self._device,
                total,
                before,
            )
        elif step.kind is not StepKind.FIRST:
            self._faults.recovered(now)
        return meter_readings(self._device, self._medium, step, now)
