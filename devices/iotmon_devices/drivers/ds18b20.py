"""Maxim DS18B20 temperature probes through the Linux w1-therm driver (sysfs).

The kernel reads the scratchpad and checks its CRC; ``w1_slave`` holds two lines::

    72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
    72 01 4b 46 7f ff 0e 10 57 t=23125

A missing folder is an unplugged probe, ``NO`` a CRC error, an all-zero scratchpad
(a data line held low) or 85.000 degC with the power-on scratchpad (a probe that
lost power mid-conversion) bad data.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Sequence
from datetime import datetime

from iotmon_devices.base import DeviceReading
from iotmon_devices.drivers.ds18b20_config import Ds18b20Config
from iotmon_devices.faults import DriverFault, FaultCode
from iotmon_devices.supervision import PolledDevice

POWER_ON_SCRATCHPAD = "50 05"
"""Temperature bytes of a DS18B20 that has not converted since power-up (85 degC)."""
_CRC_LINE = re.compile(r"^((?:[0-9a-f]{2} ){9}): crc=([0-9a-f]{2}) (YES|NO)$")
_DATA_LINE = re.compile(r"^((?:[0-9a-f]{2} ){9})t=(-?\d+)$")


def parse_w1_slave(text: str, where: str) -> float:
    """The temperature in degC from ``w1_slave``; raises DriverFault."""
    lines = text.strip().splitlines()
    crc = _CRC_LINE.match(lines[0].strip()) if lines else None
    data = _DATA_LINE.match(lines[1].strip()) if len(lines) > 1 else None
    if crc is None:
        raise DriverFault(FaultCode.BAD_DATA, f"{where}: unreadable w1_slave {text[:80]!r}")
    if crc.group(3) != "YES":
        raise DriverFault(FaultCode.CRC_ERROR, f"{where}: scratchpad CRC mismatch")
    if data is None:
        raise DriverFault(FaultCode.BAD_DATA, f"{where}: no temperature in w1_slave")
    scratchpad = crc.group(1).strip()
    if set(scratchpad.replace(" ", "")) == {"0"}:
        raise DriverFault(FaultCode.BAD_DATA, f"{where}: all-zero scratchpad (data line held low?)")
    millidegrees = int(data.group(2))
    if millidegrees == 85000 and scratchpad.startswith(POWER_ON_SCRATCHPAD):
        raise DriverFault(
            FaultCode.BAD_DATA, f"{where}: power-on value 85 degC (probe lost power?)"
        )
    temperature = millidegrees / 1000.0
    if not -55.0 <= temperature <= 125.0:
        raise DriverFault(FaultCode.BAD_DATA, f"{where}: {temperature} degC is outside the range")
    return temperature


class Ds18b20Driver(PolledDevice):
    def __init__(self, config: Ds18b20Config) -> None:
        self._config = config

    @property
    def device_ids(self) -> Sequence[str]:
        return [self._config.device_id]

    def connect(self) -> None:
        """Nothing to open: each read is a file read. A missing probe fails there."""

    def disconnect(self) -> None:
        """Nothing to close."""

    def read(self, now: datetime) -> list[DeviceReading]:
        config = self._config
        path = config.root / config.sensor_id / "w1_slave"
        where = f"1-Wire probe {config.sensor_id}"
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError as exc:
            raise DriverFault(
                FaultCode.UNPLUGGED, f"{where}: not on the bus ({path} missing)"
            ) from exc
        except OSError as exc:
            code = FaultCode.TIMEOUT if exc.errno == errno.ETIMEDOUT else FaultCode.BUS_ERROR
            raise DriverFault(code, f"{where}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise DriverFault(FaultCode.BAD_DATA, f"{where}: w1_slave is not text") from exc
        temperature = parse_w1_slave(text, where)
        return [DeviceReading(config.device_id, "temperature", temperature, "degC", now)]
