"""A simulated meter as a driver: its register through the same accounting as real meters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from iotmon_devices.base import DeviceReading, Driver, EventSink
from iotmon_devices.meters.account import MeterAccount
from iotmon_devices.meters.accounting import CumulativeRegister
from iotmon_devices.simulators.meter_config import SimulatedMeterConfig
from iotmon_devices.simulators.meter_profiles import SimulatedMeter


class SimulatedMeterDriver(Driver):
    def __init__(self, config: SimulatedMeterConfig) -> None:
        self._config = config
        self._meter = SimulatedMeter(config.simulation, config.device_id)
        self._account = MeterAccount(
            config.device_id,
            config.simulation.medium,
            CumulativeRegister(max_rate_per_h=config.max_rate_per_h, resolution=config.resolution),
        )

    @property
    def meter(self) -> SimulatedMeter:
        return self._meter

    @property
    def device_ids(self) -> Sequence[str]:
        return [self._config.device_id]

    def attach(self, sink: EventSink) -> None:
        self._account.attach(sink)

    def read(self, now: datetime) -> list[DeviceReading]:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return self._account.readings(self._meter.total(now), now)
