"""Driver registry and driver config models."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Literal, get_args

import pytest
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from iotmon_devices import (
    DeviceReading,
    Driver,
    DriverConfig,
    DriverConfigBase,
    DriverRegistry,
    MissingDriverDependency,
    RetryPolicy,
    SimulatedEnvironmentConfig,
    SimulatedEnvironmentDriver,
    UnknownDriverType,
    default_registry,
)


class _FixedConfig(DriverConfigBase):
    type: Literal["fixed"] = Field("fixed", description="Driver type.")
    value: float = Field(1.0, description="What every read returns.")


class _FixedDriver(Driver):
    def __init__(self, config: _FixedConfig) -> None:
        self._config = config

    @property
    def device_ids(self) -> list[str]:
        return ["fixed-1"]

    def read(self, now: datetime) -> list[DeviceReading]:
        return [DeviceReading("fixed-1", "level", self._config.value, None, now)]


def test_default_registry_builds_the_simulated_environment() -> None:
    config = TypeAdapter(DriverConfig).validate_python(
        {"type": "simulated_environment", "count": 3, "id_prefix": "room"}
    )
    driver = default_registry().create(config)
    assert isinstance(driver, SimulatedEnvironmentDriver)
    assert list(driver.device_ids) == ["room-0001", "room-0002", "room-0003"]


def test_registry_takes_new_drivers_and_refuses_unknown_or_duplicate_types() -> None:
    registry = DriverRegistry()
    registry.register(_FixedConfig, _FixedDriver)
    assert registry.types == ["fixed"]
    assert isinstance(registry.create(_FixedConfig(value=2)), _FixedDriver)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(_FixedConfig, _FixedDriver)
    with pytest.raises(UnknownDriverType, match="simulated_environment"):
        registry.create(SimulatedEnvironmentConfig())


def test_driver_configs_forbid_unknown_keys_and_enforce_bounds() -> None:
    adapter = TypeAdapter(DriverConfig)
    with pytest.raises(ValidationError, match="Extra inputs"):
        adapter.validate_python({"type": "simulated_environment", "cuont": 3})
    with pytest.raises(ValidationError, match="greater than 0"):
        adapter.validate_python({"type": "simulated_environment", "count": 0})
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        adapter.validate_python({"type": "simulated_environment", "faults": {"spike_rate": 2}})
    with pytest.raises(ValidationError, match="unknown time zone"):
        adapter.validate_python({"type": "simulated_environment", "timezone": "Mars/Olympus"})
    with pytest.raises(ValidationError, match="office_end_hour"):
        adapter.validate_python({"type": "simulated_environment", "co2": {"office_start_hour": 19}})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        adapter.validate_python({"type": "zigbee"})


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """Models named by an annotation, inside unions, lists and Annotated too."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def test_every_config_field_has_a_description_and_a_default() -> None:
    models = _models_in(DriverConfig)
    assert len(models) == len(default_registry().types)
    seen: set[type[BaseModel]] = set()
    while models:
        model = models.pop()
        seen.add(model)
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            assert not field.is_required(), f"{model.__name__}.{name} has no default"
            models.extend(m for m in _models_in(field.annotation) if m not in seen)
    assert RetryPolicy in seen


def test_every_config_type_has_a_driver_and_its_defaults_build_one() -> None:
    registry = default_registry()
    adapter = TypeAdapter(DriverConfig)
    for type_tag in registry.types:
        config = adapter.validate_python({"type": type_tag})
        driver = registry.create(config)
        assert list(driver.device_ids) == config.declared_device_ids(), type_tag


def test_a_missing_hardware_library_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for module in [m for m in sys.modules if m == "pynmea2" or m.endswith(".drivers.gps")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "pynmea2", None)  # what an install without it raises
    config = TypeAdapter(DriverConfig).validate_python({"type": "gps"})
    with pytest.raises(MissingDriverDependency, match=r"pynmea2.*iotmon-devices\[hardware\]"):
        default_registry().create(config)


def test_device_ids_are_zero_padded_from_first_index() -> None:
    config = SimulatedEnvironmentConfig(count=2, first_index=9999)
    assert config.declared_device_ids() == ["env-9999", "env-10000"]


def test_read_refuses_a_naive_time() -> None:
    driver = SimulatedEnvironmentDriver(SimulatedEnvironmentConfig(count=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        driver.read(datetime(2024, 1, 1))
