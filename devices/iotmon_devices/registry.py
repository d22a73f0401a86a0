"""Driver registry: maps a config model's ``type`` to the code that builds the driver."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from iotmon_devices.base import Driver, DriverConfigBase
from iotmon_devices.drivers.bme280_config import Bme280Config
from iotmon_devices.drivers.common import DeviceDriverConfig
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
from iotmon_devices.supervision import PolledDevice, SupervisedDriver

ConfigT = TypeVar("ConfigT", bound=DriverConfigBase)


class UnknownDriverType(LookupError):
    """A config whose ``type`` no driver was registered for."""


class MissingDriverDependency(ImportError):
    """A driver whose hardware library is not installed (``iotmon-devices[hardware]``)."""


def driver_type_of(config_type: type[DriverConfigBase]) -> str:
    """The ``type`` tag of a driver config model (its ``type`` field's default)."""
    field = config_type.model_fields.get("type")
    if field is None or not isinstance(field.default, str):
        raise TypeError(f"{config_type.__name__} needs a `type: Literal[...]` field with a default")
    return field.default


class DriverRegistry:
    """Builds drivers from their configs. Kept as an object (not module state) so a
    test or an embedding application can register its own drivers."""

    def __init__(self) -> None:
        self._factories: dict[str, Callable[[DriverConfigBase], Driver]] = {}

    def register(self, config_type: type[ConfigT], factory: Callable[[ConfigT], Driver]) -> None:
        type_tag = driver_type_of(config_type)
        if type_tag in self._factories:
            raise ValueError(f"driver type {type_tag!r} is already registered")

        def build(config: DriverConfigBase) -> Driver:
            if not isinstance(config, config_type):
                raise TypeError(f"{type_tag!r} expects {config_type.__name__}")
            return factory(config)

        self._factories[type_tag] = build

    @property
    def types(self) -> list[str]:
        return sorted(self._factories)

    def create(self, config: DriverConfigBase) -> Driver:
        type_tag = driver_type_of(type(config))
        try:
            factory = self._factories[type_tag]
        except KeyError:
            raise UnknownDriverType(
                f"no driver registered for type {type_tag!r}; known: {', '.join(self.types)}"
            ) from None
        try:
            return factory(config)
        except ModuleNotFoundError as exc:
            raise MissingDriverDependency(
                f"driver type {type_tag!r} needs the {exc.name} package: "
                "install iotmon-devices[hardware]"
            ) from exc


def _supervised(inner: PolledDevice, config: DeviceDriverConfig) -> Driver:
    return SupervisedDriver(
        inner, device=config.device_id, component=config_type_tag(config), retry=config.retry
    )


def config_type_tag(config: DriverConfigBase) -> str:
    return driver_type_of(type(config))


# The factories import their driver's module when a driver is built: a hardware
# library (smbus2, gpiozero, pymodbus, pyserial, pynmea2) is needed only by an agent
# that uses that kind of driver.


def _environment(config: SimulatedEnvironmentConfig) -> Driver:
    from iotmon_devices.simulators.environment import SimulatedEnvironmentDriver

    return SimulatedEnvironmentDriver(config)


def _simulated_meter(config: SimulatedMeterConfig) -> Driver:
    from iotmon_devices.simulators.meter import SimulatedMeterDriver

    return SimulatedMeterDriver(config)


def _bme280(config: Bme280Config) -> Driver:
    from iotmon_devices.drivers.bme280 import Bme280Driver

    if config.simulate is None:
        return _supervised(Bme280Driver(config), config)
    from iotmon_devices.simulators.bme280_twin import Bme280Twin

    twin = Bme280Twin(config.address, simulation=config.simulate)
    return _supervised(Bme280Driver(config, bus_factory=lambda _bus: twin), config)


def _ds18b20(config: Ds18b20Config) -> Driver:
    from iotmon_devices.drivers.ds18b20 import Ds18b20Driver

    return _supervised(Ds18b20Driver(config), config)


def _pi_system(config: PiSystemConfig) -> Driver:
    from iotmon_devices.drivers.pi_system import PiSystemDriver

    return _supervised(PiSystemDriver(config), config)


def _modbus_meter(config: ModbusMeterConfig) -> Driver:
    from iotmon_devices.drivers.modbus_meter import ModbusMeterDriver

    return _supervised(ModbusMeterDriver(config), config)


def _pulse_meter(config: PulseMeterConfig) -> Driver:
    from iotmon_devices.drivers.pulse_meter import PulseMeterDriver

    return _supervised(PulseMeterDriver(config), config)


def _ignition(config: IgnitionConfig) -> Driver:
    from iotmon_devices.drivers.bus_inputs import IgnitionDriver

    return IgnitionDriver(config)


def _walkthrough_button(config: WalkthroughButtonConfig) -> Driver:
    from iotmon_devices.drivers.bus_inputs import WalkthroughButtonDriver

    return WalkthroughButtonDriver(config)


def _door_tag_reader(config: DoorTagReaderConfig) -> Driver:
    from iotmon_devices.drivers.tag_readers import DoorTagReaderDriver

    return DoorTagReaderDriver(config)


def _cabin_tag_scanner(config: CabinTagScannerConfig) -> Driver:
    from iotmon_devices.drivers.tag_readers import CabinTagScannerDriver

    return CabinTagScannerDriver(config)


def _gps(config: GpsReceiverConfig) -> Driver:
    from iotmon_devices.drivers.gps import GpsDriver

    return GpsDriver(config)


def default_registry() -> DriverRegistry:
    """A registry with every driver shipped in this package."""
    registry = DriverRegistry()
    registry.register(SimulatedEnvironmentConfig, _environment)
    registry.register(SimulatedMeterConfig, _simulated_meter)
    registry.register(Bme280Config, _bme280)
    registry.register(Ds18b20Config, _ds18b20)
    registry.register(PiSystemConfig, _pi_system)
    registry.register(ModbusMeterConfig, _modbus_meter)
    registry.register(PulseMeterConfig, _pulse_meter)
    registry.register(IgnitionConfig, _ignition)
    registry.register(WalkthroughButtonConfig, _walkthrough_button)
    registry.register(DoorTagReaderConfig, _door_tag_reader)
    registry.register(CabinTagScannerConfig, _cabin_tag_scanner)
    registry.register(GpsReceiverConfig, _gps)
    return registry
