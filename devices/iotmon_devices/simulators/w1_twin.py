"""Simulated DS18B20 probes: a sysfs-like folder with the files the w1-therm driver writes."""

from __future__ import annotations

import shutil
from pathlib import Path

from iotmon_devices.drivers.ds18b20 import POWER_ON_SCRATCHPAD


def dallas_crc8(data: bytes) -> int:
    """The 1-Wire CRC (polynomial x^8 + x^5 + x^4 + 1, reflected)."""
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


def scratchpad(temperature_c: float) -> bytes:
    """A DS18B20's 9-byte scratchpad at 12-bit resolution, CRC included."""
    raw = round(temperature_c * 16) & 0xFFFF
    body = bytes([raw & 0xFF, raw >> 8, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10])
    return body + bytes([dallas_crc8(body)])


def w1_slave_text(pad: bytes, *, crc_ok: bool = True, millidegrees: int | None = None) -> str:
    hex_bytes = " ".join(f"{b:02x}" for b in pad) + " "
    if millidegrees is None:
        raw = int.from_bytes(pad[:2], "little", signed=True)
        millidegrees = int(raw * 1000 / 16)  # the kernel's C division truncates
    verdict = "YES" if crc_ok else "NO"
    return f"{hex_bytes}: crc={pad[8]:02x} {verdict}\n{hex_bytes}t={millidegrees}\n"


class W1Twin:
    """DS18B20 probes under ``root`` as ``<root>/<sensor_id>/w1_slave``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _file(self, sensor_id: str) -> Path:
        return self.root / sensor_id / "w1_slave"

    def plug(self, sensor_id: str, temperature_c: float) -> None:
        self._file(sensor_id).parent.mkdir(exist_ok=True)
        self.set_temperature(sensor_id, temperature_c)

    def set_temperature(self, sensor_id: str, temperature_c: float) -> None:
        self._file(sensor_id).write_text(w1_slave_text(scratchpad(temperature_c)))

    def unplug(self, sensor_id: str) -> None:
        """The kernel removes the folder of a probe that left the bus."""
        shutil.rmtree(self.root / sensor_id, ignore_errors=True)

    def crc_error(self, sensor_id: str, temperature_c: float) -> None:
        pad = bytearray(scratchpad(temperature_c))
        pad[1] ^= 0x10  # a bit flipped on the wire
        self._file(sensor_id).write_text(w1_slave_text(bytes(pad), crc_ok=False))

    def power_on_reset(self, sensor_id: str) -> None:
        pad = bytes.fromhex(POWER_ON_SCRATCHPAD.replace(" ", "") + "4b467fff0c10")
        pad += bytes([dallas_crc8(pad)])
        self._file(sensor_id).write_text(w1_slave_text(pad, millidegrees=85000))

    def data_line_low(self, sensor_id: str) -> None:
        self._file(sensor_id).write_text(w1_slave_text(bytes(9), millidegrees=0))
