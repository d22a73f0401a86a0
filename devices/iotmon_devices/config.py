"""The union of every driver config, keyed on ``type``: what an agent's YAML ``drivers`` holds.

Adding a driver means adding its config model to ``DriverConfig`` here and its
factory to ``default_registry``. Config modules import no hardware library.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from iotmon_devices.drivers.bme280_config import Bme280Config
from iotmon_devices.drivers.ds18b20_config import Ds18b20Config
from iotmon_devices.drivers.gpio_config import (
    IgnitionConfig,
    PulseMeterConfig,
    WalkthroughButtonConfig,
)
from iotmon_devices.drivers.modbus_config import ModbusMeterConfig
from iotmon_devices.drivers.pi_system_config import PiSystemConfig
from iotmon_devices.drivers.serial_config import (
    CabinTagScannerConfig,
    DoorTagReaderConfig,
    GpsReceiverConfig,
)
from iotmon_devices.simulators.environment_config import SimulatedEnvironmentConfig
from iotmon_devices.simulators.meter_config import SimulatedMeterConfig

DriverConfig = Annotated[
    SimulatedEnvironmentConfig
    | SimulatedMeterConfig
    | Bme280Config
    | Ds18b20Config
    | PiSystemConfig
    | ModbusMeterConfig
    | PulseMeterConfig
    | IgnitionConfig
    | WalkthroughButtonConfig
    | DoorTagReaderConfig
    | CabinTagScannerConfig
    | GpsReceiverConfig,
    Field(discriminator="type"),
]

__all__ = ["DriverConfig"]
