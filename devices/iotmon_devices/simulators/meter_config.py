"""YAML config of simulated meters (no hardware): a school's electricity, water or gas."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from iotmon_devices.drivers.common import DeviceDriverConfig, device_id_field
from iotmon_devices.simulators.meter_profiles import MeterSimulation


class SimulatedMeterConfig(DeviceDriverConfig):
    """A meter whose register follows a simulated school (day, night, weekend, leak, tamper)."""

    type: Literal["simulated_meter"] = Field("simulated_meter", description="Driver type.")
    device_id: str = device_id_field("meter-sim-1")
    simulation: MeterSimulation = Field(
        default_factory=MeterSimulation, description="The load and its events."
    )
    max_rate_per_h: float = Field(
        200.0,
        gt=0,
        le=100_000,
        description="Most the meter can register in an hour (kW or m3/h): larger steps are "
        "not believed.",
    )
    resolution: float = Field(
        0.001, ge=0, le=10, description="Register resolution (smaller decreases are noise)."
    )
