"""A GNSS receiver on a serial port: NMEA 0183 parsed with pynmea2 into position events.

RMC sentences give the fix (time, position, speed, course) and whether it is valid,
GGA the satellites and HDOP. A valid RMC at least ``min_interval_s`` after the last
published one becomes a ``position`` event stamped with the receiver's own UTC time.
Without a fix (a bus parked indoors) nothing is published; the receiver still
counts as working while its sentences arrive intact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pynmea2

from iotmon_devices.drivers.serial_config import GpsReceiverConfig
from iotmon_devices.drivers.serial_lines import BadLine, SerialLineDriver
from iotmon_devices.drivers.session import Clock, utc_now

KNOTS_TO_KMH = 1.852


class GpsDriver(SerialLineDriver):
    def __init__(
        self,
        config: GpsReceiverConfig,
        *,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, "gps", clock=clock, monotonic=monotonic)
        self._config = config
        self._satellites: int | None = None
        self._hdop: float | None = None
        self._last_fix: datetime | None = None
        self.fixes = 0
        """Valid RMC sentences seen."""

    def _line(self, line: bytes) -> None:
        try:
            text = line.decode("ascii").strip()
            sentence: Any = pynmea2.parse(text, check=True)
        except pynmea2.ChecksumError as exc:
            raise BadLine(str(exc), checksum=True) from exc
        except (UnicodeDecodeError, pynmea2.ParseError, ValueError) as exc:
            raise BadLine(str(exc), checksum=False) from exc
        if isinstance(sentence, pynmea2.GGA):
            self._satellites = _int_or_none(sentence.num_sats)
            self._hdop = _float_or_none(sentence.horizontal_dil)
        elif isinstance(sentence, pynmea2.RMC):
            self._rmc(sentence)

    def _rmc(self, rmc: Any) -> None:
        if rmc.status != "A" or rmc.datestamp is None or rmc.timestamp is None:
            return
        try:
            fix_time = datetime.combine(rmc.datestamp, rmc.timestamp).replace(tzinfo=UTC)
            lat, lon = float(rmc.latitude), float(rmc.longitude)
        except (TypeError, ValueError) as exc:
            raise BadLine(f"unusable RMC: {exc}", checksum=False) from exc
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise BadLine(f"position {lat}, {lon} out of range", checksum=False)
        self.fixes += 1
        last = self._last_fix
        if (
            last is not None
            and 0 <= (fix_time - last).total_seconds() < self._config.min_interval_s
        ):
            return
        self._last_fix = fix_time
        data: dict[str, Any] = {"lat": round(lat, 7), "lon": round(lon, 7)}
        speed = _float_or_none(rmc.spd_over_grnd)
        if speed is not None and speed >= 0:
            data["speed_kmh"] = round(speed * KNOTS_TO_KMH, 2)
        course = _float_or_none(rmc.true_course)
        if course is not None and 0 <= course <= 360:
            data["heading_deg"] = course
        if self._satellites is not None:
            data["satellites"] = self._satellites
        if self._hdop is not None:
            data["hdop"] = self._hdop
        self._emit("position", fix_time, **data)


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
