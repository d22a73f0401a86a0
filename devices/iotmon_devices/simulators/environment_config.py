"""YAML config of the simulated environment sensors (temperature, humidity, CO2)."""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from iotmon_devices.base import DriverConfigBase


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TemperatureProfile(_Section):
    mean_c: float = Field(21.0, ge=-40, le=60, description="Daily mean indoor temperature, degC.")
    amplitude_c: float = Field(
        2.5, ge=0, le=20, description="Half the day's swing: max is mean + amplitude, degC."
    )
    peak_hour: float = Field(
        15.0, ge=0, lt=24, description="Local hour of the daily maximum (mid-afternoon)."
    )
    device_offset_sd_c: float = Field(
        1.0, ge=0, le=10, description="Spread of per-device offsets (placement, calibration)."
    )
    noise_sd_c: float = Field(0.1, ge=0, le=10, description="Gaussian noise per reading, degC.")
    spike_c: float = Field(25.0, ge=0, le=200, description="Size of a spike fault, degC.")
    decimals: int = Field(2, ge=0, le=6, description="Decimals reported (sensor resolution).")


class HumidityProfile(_Section):
    mean_pct: float = Field(45.0, ge=0, le=100, description="Daily mean relative humidity, %.")
    amplitude_pct: float = Field(
        8.0,
        ge=0,
        le=50,
        description="Half the day's swing; humidity is lowest when temperature peaks, %.",
    )
    device_offset_sd_pct: float = Field(
        3.0, ge=0, le=30, description="Spread of per-device offsets, %."
    )
    noise_sd_pct: float = Field(0.5, ge=0, le=20, description="Gaussian noise per reading, %.")
    spike_pct: float = Field(30.0, ge=0, le=100, description="Size of a spike fault, %.")
    decimals: int = Field(1, ge=0, le=6, description="Decimals reported (sensor resolution).")


class Co2Profile(_Section):
    outdoor_ppm: float = Field(
        420.0, ge=0, le=5000, description="Level of an empty room (outdoor air), ppm."
    )
    occupied_rise_ppm: float = Field(
        600.0, ge=0, le=10000, description="Rise above outdoor level in a fully occupied room."
    )
    office_start_hour: float = Field(8.0, ge=0, lt=24, description="Local hour people arrive.")
    office_end_hour: float = Field(18.0, gt=0, le=24, description="Local hour people leave.")
    workdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4],
        description="Occupied weekdays, 0 = Monday; weekends stay at the outdoor level.",
    )
    rise_time_h: float = Field(
        1.0, gt=0, le=24, description="Time constant of the rise after people arrive, hours."
    )
    decay_time_h: float = Field(
        1.5, gt=0, le=24, description="Time constant of ventilation after people leave, hours."
    )
    lunch_dip: float = Field(
        0.2, ge=0, le=1, description="Fraction of people out around 12:30 (0 = no dip)."
    )
    occupancy_spread: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Per-device occupancy varies within 1 +/- spread (busy vs quiet rooms).",
    )
    device_offset_sd_ppm: float = Field(
        20.0, ge=0, le=1000, description="Spread of per-device offsets, ppm."
    )
    noise_sd_ppm: float = Field(10.0, ge=0, le=1000, description="Gaussian noise, ppm.")
    spike_ppm: float = Field(3000.0, ge=0, le=40000, description="Size of a spike fault, ppm.")
    decimals: int = Field(0, ge=0, le=6, description="Decimals reported (sensor resolution).")

    @model_validator(mode="after")
    def _office_hours_ordered(self) -> Co2Profile:
        if self.office_end_hour <= self.office_start_hour:
            raise ValueError("office_end_hour must be after office_start_hour")
        return self


class FaultProfile(_Section):
    dropout_rate: float = Field(
        0.002, ge=0, le=1, description="Probability a device sends nothing in a cycle."
    )
    spike_rate: float = Field(
        0.001, ge=0, le=1, description="Probability a reading is off by the metric's spike size."
    )
    stuck_rate: float = Field(
        0.002,
        ge=0,
        le=1,
        description="Fraction of stuck windows: the metric repeats one value for the window.",
    )
    stuck_duration_s: float = Field(
        600.0, ge=1, le=7 * 86400, description="Length of a stuck window, seconds."
    )


class SimulatedEnvironmentConfig(DriverConfigBase):
    """N simulated indoor environment sensors: temperature, humidity and CO2."""

    type: Literal["simulated_environment"] = Field(
        "simulated_environment", description="Driver type."
    )
    count: int = Field(10, gt=0, le=100_000, description="Number of simulated devices.")
    id_prefix: str = Field(
        "env",
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,40}$",
        description="Device ids are <prefix>-<index>, index zero-padded to 4 digits.",
    )
    first_index: int = Field(1, ge=0, le=10_000_000, description="Index of the first device.")
    seed: int = Field(0, ge=0, lt=2**63, description="Same seed, same readings at the same time.")
    timezone: str = Field(
        "UTC", description="IANA time zone of the site; daily patterns follow its local time."
    )
    temperature: TemperatureProfile = Field(
        default_factory=TemperatureProfile, description="Temperature pattern."
    )
    humidity: HumidityProfile = Field(
        default_factory=HumidityProfile, description="Humidity pattern."
    )
    co2: Co2Profile = Field(default_factory=Co2Profile, description="CO2 pattern.")
    faults: FaultProfile = Field(default_factory=FaultProfile, description="Fault rates.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    def device_id(self, index: int) -> str:
        return f"{self.id_prefix}-{index:04d}"

    def declared_device_ids(self) -> list[str]:
        return [self.device_id(self.first_index + n) for n in range(self.count)]
