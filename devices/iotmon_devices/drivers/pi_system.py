"""The Raspberry Pi's CPU temperature (sysfs thermal zone) and throttling flags (vcgencmd).

``vcgencmd get_throttled`` prints ``throttled=0x50005``: the low bits are what holds
now (under-voltage, ARM frequency capped, throttled, soft temperature limit), bits
16-19 what happened since boot. Each flag is published as 0 or 1, so a dashboard
shows when a Pi's power supply sags before the SD card pays for it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from datetime import datetime

from iotmon_devices.base import DeviceReading
from iotmon_devices.drivers.pi_system_config import PiSystemConfig
from iotmon_devices.faults import DriverFault, FaultCode
from iotmon_devices.supervision import PolledDevice

THROTTLE_FLAGS = {
    0: "under_voltage",
    1: "freq_capped",
    2: "throttled",
    3: "soft_temp_limit",
}
"""Bit of ``get_throttled`` -> metric; the same bit + 16 is ``<metric>_occurred``."""
OCCURRED_SHIFT = 16
_THROTTLED = re.compile(r"^throttled=(0x[0-9a-fA-F]+)\s*$")


def throttle_readings(mask: int, device: str, now: datetime) -> list[DeviceReading]:
    readings = []
    for bit, name in THROTTLE_FLAGS.items():
        readings.append(DeviceReading(device, name, float(mask >> bit & 1), None, now))
        occurred = mask >> (bit + OCCURRED_SHIFT) & 1
        readings.append(DeviceReading(device, f"{name}_occurred", float(occurred), None, now))
    return readings


class PiSystemDriver(PolledDevice):
    def __init__(self, config: PiSystemConfig) -> None:
        self._config = config
        self._vcgencmd: str | None = None

    @property
    def device_ids(self) -> Sequence[str]:
        return [self._config.device_id]

    def connect(self) -> None:
        command = self._config.vcgencmd
        self._vcgencmd = shutil.which(command) if command else None

    def disconnect(self) -> None:
        self._vcgencmd = None

    def read(self, now: datetime) -> list[DeviceReading]:
        device = self._config.device_id
        readings = [
            DeviceReading(device, "cpu_temperature", self._temperature(), "degC", now),
        ]
        if self._vcgencmd is not None:
            readings.extend(throttle_readings(self._throttled(self._vcgencmd), device, now))
        return readings

    def _temperature(self) -> float:
        path = self._config.thermal_zone
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError as exc:
            raise DriverFault(FaultCode.UNPLUGGED, f"no thermal zone at {path}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise DriverFault(FaultCode.BUS_ERROR, f"{path}: {exc}") from exc
        try:
            return int(text) / 1000.0
        except ValueError:
            raise DriverFault(FaultCode.BAD_DATA, f"{path} holds {text[:40]!r}") from None

    def _throttled(self, command: str) -> int:
        try:
            done = subprocess.run(
                [command, "get_throttled"],
                capture_output=True,
                text=True,
                timeout=self._config.command_timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DriverFault(
                FaultCode.TIMEOUT,
                f"vcgencmd get_throttled took over {self._config.command_timeout_s}s",
            ) from exc
        except OSError as exc:
            raise DriverFault(FaultCode.UNPLUGGED, f"cannot run {command}: {exc}") from exc
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip()[:200]
            raise DriverFault(
                FaultCode.BUS_ERROR, f"vcgencmd get_throttled exited {done.returncode}: {why}"
            )
        match = _THROTTLED.match(done.stdout.strip())
        if match is None:
            raise DriverFault(
                FaultCode.BAD_DATA, f"vcgencmd get_throttled printed {done.stdout[:80]!r}"
            )
        return int(match.group(1), 16)
