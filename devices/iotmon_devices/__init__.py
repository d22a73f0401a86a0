"""iotmon device drivers and simulators: a ``Driver`` ABC, a registry and config models.

Drivers for hardware live in ``iotmon_devices.drivers`` (each with a simulated twin
in ``iotmon_devices.simulators``); meter accounting in ``iotmon_devices.meters``.
"""

from iotmon_devices.base import (
    AvailabilityChange,
    DeviceReading,
    Driver,
    DriverConfigBase,
    DriverEvent,
    DriverOutput,
    EventSink,
)
from iotmon_devices.config import DriverConfig
from iotmon_devices.faults import DriverFault, FaultCode, RetryPolicy
from iotmon_devices.hub import EventHub
from iotmon_devices.registry import (
    DriverRegistry,
    MissingDriverDependency,
    UnknownDriverType,
    default_registry,
)
from iotmon_devices.simulators.environment import SimulatedEnvironmentDriver
from iotmon_devices.simulators.environment_config import (
    Co2Profile,
    FaultProfile,
    HumidityProfile,
    SimulatedEnvironmentConfig,
    TemperatureProfile,
)

__all__ = [
    "AvailabilityChange",
    "Co2Profile",
    "DeviceReading",
    "Driver",
    "DriverConfig",
    "DriverConfigBase",
    "DriverEvent",
    "DriverFault",
    "DriverOutput",
    "DriverRegistry",
    "EventHub",
    "EventSink",
    "FaultCode",
    "FaultProfile",
    "HumidityProfile",
    "MissingDriverDependency",
    "RetryPolicy",
    "SimulatedEnvironmentConfig",
    "SimulatedEnvironmentDriver",
    "TemperatureProfile",
    "UnknownDriverType",
    "default_registry",
]
