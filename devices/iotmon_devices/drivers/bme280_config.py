"""YAML config of a Bosch BME280 (temperature, humidity, pressure) on I2C."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from iotmon_devices.drivers.common import DeviceDriverConfig, device_id_field


class Bme280Simulation(BaseModel):
    """The simulated twin's climate: a daily temperature cycle, humidity inverse to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mean_c: float = Field(21.0, ge=-40, le=85, description="Daily mean temperature, degC.")
    amplitude_c: float = Field(2.0, ge=0, le=30, description="Half the daily swing, degC.")
    humidity_pct: float = Field(45.0, ge=0, le=100, description="Mean relative humidity, %.")
    pressure_hpa: float = Field(1013.25, ge=300, le=1100, description="Air pressure, hPa.")
    seed: int = Field(0, ge=0, lt=2**63, description="Seed of the twin's noise.")


class Bme280Config(DeviceDriverConfig):
    """A BME280 on an I2C bus, read in forced mode once per publish interval."""

    type: Literal["bme280"] = Field("bme280", description="Driver type.")
    device_id: str = device_id_field("bme280-1")
    bus: int = Field(1, ge=0, le=255, description="I2C bus number: /dev/i2c-<bus>.")
    address: int = Field(
        0x76, ge=0x03, le=0x77, description="7-bit I2C address (0x76, or 0x77 with SDO high)."
    )
    measure_timeout_s: float = Field(
        0.1, gt=0, le=5, description="Longest wait for a forced measurement to finish."
    )
    simulate: Bme280Simulation | None = Field(
        None, description="Run against the simulated twin instead of the I2C bus."
    )
