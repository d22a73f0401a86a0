"""YAML config of a Maxim DS18B20 temperature probe on the kernel's 1-Wire bus (w1-gpio)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from iotmon_devices.drivers.common import DeviceDriverConfig, device_id_field

W1_DEVICES = Path("/sys/bus/w1/devices")


class Ds18b20Config(DeviceDriverConfig):
    """One DS18B20, read from sysfs (``<root>/<sensor_id>/w1_slave``)."""

    type: Literal["ds18b20"] = Field("ds18b20", description="Driver type.")
    device_id: str = device_id_field("ds18b20-1")
    sensor_id: str = Field(
        "28-000000000000",
        pattern=r"^28-[0-9a-f]{12}$",
        description="The probe's 1-Wire id as the kernel names its folder (28-...).",
    )
    root: Path = Field(
        W1_DEVICES, description="Folder of the kernel's 1-Wire devices (tests use a temp one)."
    )
