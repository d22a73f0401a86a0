"""YAML config of the Raspberry Pi's own health: CPU temperature and throttling flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from iotmon_devices.drivers.common import DeviceDriverConfig, device_id_field


class PiSystemConfig(DeviceDriverConfig):
    """The board the agent runs on, as a device of its own."""

    type: Literal["pi_system"] = Field("pi_system", description="Driver type.")
    device_id: str = device_id_field("pi-1")
    thermal_zone: Path = Field(
        Path("/sys/class/thermal/thermal_zone0/temp"),
        description="sysfs file with the CPU temperature in millidegrees C.",
    )
    vcgencmd: str | None = Field(
        "vcgencmd",
        description="The firmware tool for get_throttled (looked up on PATH); "
        "null to skip throttling flags. Absent from PATH: skipped, no fault.",
    )
    command_timeout_s: float = Field(
        2.0, gt=0, le=30, description="Longest wait for vcgencmd, seconds."
    )
