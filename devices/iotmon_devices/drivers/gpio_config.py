"""YAML configs of GPIO inputs: meter pulse counters, the ignition sense, the check button."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from iotmon_devices.drivers.common import DeviceDriverConfig, device_id_field
from iotmon_devices.meters.metrics import Medium
from iotmon_devices.simulators.meter_profiles import MeterSimulation


class GpioInputConfig(DeviceDriverConfig):
    """One GPIO input (BCM numbering)."""

    pin: int = Field(17, ge=0, le=27, description="BCM GPIO number of the input.")
    pull_up: bool = Field(
        True,
        description="True: internal pull-up, the contact closes to ground (active low); "
        "False: pull-down, the input is driven high when active.",
    )
    debounce_s: float = Field(
        0.05, ge=0, le=10, description="A change must hold this long to count."
    )


class PulseMeterConfig(GpioInputConfig):
    """A water, gas or electricity meter's pulse output (reed contact or S0) on a GPIO."""

    type: Literal["pulse_meter"] = Field("pulse_meter", description="Driver type.")
    device_id: str = device_id_field("water-1")
    medium: Medium = Field(Medium.WATER, description="water, gas or electricity.")
    units_per_pulse: float = Field(
        0.001,
        gt=0,
        le=1000,
        description="m3 (water, gas) or kWh (electricity) per pulse: 0.001 m3 = 1 L.",
    )
    initial_total: float = Field(
        0.0, ge=0, le=1e12, description="The meter's display when the counter was fitted."
    )
    max_rate_per_h: float = Field(
        10.0,
        gt=0,
        le=100_000,
        description="Most the meter passes in an hour (m3/h or kW): a larger step is not believed.",
    )
    debounce_s: float = Field(
        0.01, ge=0, le=10, description="A reed contact's bounce to ignore, seconds."
    )
    tamper_active_s: float = Field(
        600.0,
        ge=0,
        le=86400,
        description="An input held active this long is reported as tamper (a magnet on the "
        "reed); 0 disables.",
    )
    state_file: Path | None = Field(
        None,
        description="Where the pulse count is kept across restarts (the Pi install uses "
        "/var/lib/iotmon-edge/<device>.json); None: the count restarts at initial_total.",
    )
    simulate: MeterSimulation | None = Field(
        None, description="Drive a simulated pin from a meter simulation instead of the GPIO."
    )

    @model_validator(mode="after")
    def _simulation_matches(self) -> PulseMeterConfig:
        if self.simulate is not None and self.simulate.medium is not self.medium:
            raise ValueError(f"simulate.medium must be {self.medium.value}, like medium")
        return self


class IgnitionConfig(GpioInputConfig):
    """The vehicle's ignition sense (through an optocoupler) on a GPIO."""

    type: Literal["ignition"] = Field("ignition", description="Driver type.")
    device_id: str = device_id_field("ignition-1")
    debounce_s: float = Field(
        1.0, ge=0, le=60, description="Cranking makes the line chatter: a change must hold."
    )
    poll_s: float = Field(0.05, gt=0, le=5, description="How often the input is sampled.")


class WalkthroughButtonConfig(GpioInputConfig):
    """The driver's child-check button at the rear of the bus."""

    type: Literal["walkthrough_button"] = Field("walkthrough_button", description="Driver type.")
    device_id: str = device_id_field("walkthrough-1")
    pin: int = Field(27, ge=0, le=27, description="BCM GPIO number of the button.")
    min_interval_s: float = Field(
        3.0, ge=0, le=3600, description="Presses closer than this count once."
    )
    poll_s: float = Field(0.02, gt=0, le=1, description="How often the input is sampled.")
