"""YAML configs of the school bus's serial devices: door reader, cabin scanner, GPS."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from iotmon_devices.drivers.common import DeviceDriverConfig, device_id_field


class SerialDeviceConfig(DeviceDriverConfig):
    """A device on a serial port (a USB adapter: prefer its /dev/serial/by-id/ name)."""

    port: str = Field(
        "/dev/ttyUSB0",
        min_length=1,
        description="Serial device; /dev/serial/by-id/... survives re-plugging in another "
        "USB socket.",
    )
    baudrate: int = Field(115_200, ge=300, le=921_600, description="Line speed.")
    silence_timeout_s: float = Field(
        5.0,
        gt=0,
        le=600,
        description="No line for this long is a timeout fault (readers send a heartbeat "
        "every second, a GPS a fix every second).",
    )
    max_bad_lines: int = Field(
        3, ge=1, le=1000, description="Damaged lines in a row that make a crc_error fault."
    )


class DoorTagReaderConfig(SerialDeviceConfig):
    """The reader at the bus door: a tag_read event per passage."""

    type: Literal["door_tag_reader"] = Field("door_tag_reader", description="Driver type.")
    device_id: str = device_id_field("door-reader-1")


SweepTrigger = Literal["ignition_off", "run_end"]


def _all_triggers() -> list[SweepTrigger]:
    return ["ignition_off", "run_end"]


class CabinTagScannerConfig(SerialDeviceConfig):
    """The cabin scanner: sweeps for tags still aboard when a run ends."""

    type: Literal["cabin_tag_scanner"] = Field("cabin_tag_scanner", description="Driver type.")
    device_id: str = device_id_field("cabin-scanner-1")
    sweep_on: list[SweepTrigger] = Field(
        default_factory=_all_triggers,
        description="Events (of any driver of this agent) that start a sweep.",
    )
    sweep_duration_s: float = Field(
        10.0, gt=0, le=300, description="How long the scanner listens in a sweep."
    )
    sweep_timeout_s: float = Field(
        30.0,
        gt=0,
        le=900,
        description="No DONE this long after the sweep began is a sweep_incomplete fault "
        "(no sweep_complete is sent: an unfinished sweep must not read as an empty bus).",
    )


class GpsReceiverConfig(SerialDeviceConfig):
    """A GNSS receiver sending NMEA 0183 (RMC and GGA sentences)."""

    type: Literal["gps"] = Field("gps", description="Driver type.")
    device_id: str = device_id_field("gps-1")
    baudrate: int = Field(9600, ge=300, le=921_600, description="Line speed (NMEA: 9600).")
    min_interval_s: float = Field(
        15.0, ge=0, le=3600, description="Least time between two position events."
    )
