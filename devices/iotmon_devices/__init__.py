"""iotmon device drivers and simulators: a ``Driver`` ABC, a registry and config models."""

from iotmon_devices.base import DeviceReading, Driver, DriverConfigBase
from iotmon_devices.config import DriverConfig
from iotmon_devices.registry import DriverRegistry, UnknownDriverType, default_registry
from iotmon_devices.simulators.environment import SimulatedEnvironmentDriver
from iotmon_devices.simulators.environment_config import (
    Co2Profile,
    FaultProfile,
    HumidityProfile,
    SimulatedEnvironmentConfig,
    TemperatureProfile,
)

__all__ = [
    "Co2Profile",
    "DeviceReading",
    "Driver",
    "DriverConfig",
    "DriverConfigBase",
    "DriverRegistry",
    "FaultProfile",
    "HumidityProfile",
    "SimulatedEnvironmentConfig",
    "SimulatedEnvironmentDriver",
    "TemperatureProfile",
    "UnknownDriverType",
    "default_registry",
]
