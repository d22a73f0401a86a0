"""Driver registry: maps a config model's ``type`` to the code that builds the driver."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from iotmon_devices.base import Driver, DriverConfigBase

ConfigT = TypeVar("ConfigT", bound=DriverConfigBase)


class UnknownDriverType(LookupError):
    """A config whose ``type`` no driver was registered for."""


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
        return factory(config)


def default_registry() -> DriverRegistry:
    """A registry with every driver shipped in this package."""
    # Imported here so importing the registry does not import every driver's code.
    from iotmon_devices.simulators.environment import (
        SimulatedEnvironmentConfig,
        SimulatedEnvironmentDriver,
    )

    registry = DriverRegistry()
    registry.register(SimulatedEnvironmentConfig, SimulatedEnvironmentDriver)
    return registry
