"""A simulated BME280 behind the ``smbus2.SMBus`` calls the driver makes.

It holds the chip's registers: the chip id, trimming parameters, control and status,
and the data registers, which a forced measurement fills with the raw ADC counts
that the datasheet's compensation turns back into the twin's climate (found by
bisection: each compensated value is monotonic in its count). It fails the way the
hardware does: no ACK when unplugged (``EREMOTEIO``), ``EIO`` on a glitch, a
measurement that never ends, a different chip at the address.
"""

from __future__ import annotations

import errno
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from iotmon_devices.drivers import bme280_compensation as comp
from iotmon_devices.drivers.bme280 import (
    CHIP_ID,
    CHIP_ID_REGISTER,
    CTRL_MEAS,
    DATA,
    MODE_FORCED,
    STATUS,
    STATUS_MEASURING,
)
from iotmon_devices.drivers.bme280_config import Bme280Simulation
from iotmon_devices.simulators.noise import derive, gaussian
from iotmon_devices.simulators.patterns import diurnal, hour_of_day

DATASHEET_CALIBRATION = comp.Calibration(
    # Temperature and pressure: the worked example of the BMP280 datasheet (section 3.12),
    # whose formulas the BME280 shares. Humidity: a typical chip's trimming.
    27504, 26435, -1000,
    36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000,
    75, 360, 0, 325, 50, 30,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Climate:
    temperature_c: float
    humidity_pct: float
    pressure_hpa: float


@dataclass(frozen=True, slots=True)
class RawCounts:
    adc_t: int
    adc_p: int
    adc_h: int


def _bisect(target: float, low: int, high: int, value: Callable[[int], float]) -> int:
    """The count in [low, high) whose value is closest to ``target``; ``value`` increasing."""
    while high - low > 1:
        middle = (low + high) // 2
        if value(middle) <= target:
            low = middle
        else:
            high = middle
    return low if abs(value(low) - target) <= abs(value(high) - target) else high


def raw_counts(climate: Climate, cal: comp.Calibration) -> RawCounts:
    """The ADC counts a chip with ``cal`` reports for ``climate``."""
    adc_t = _bisect(
        climate.temperature_c, 0, (1 << 20) - 1, lambda n: comp.temperature_c(comp.t_fine(n, cal))
    )
    fine = comp.t_fine(adc_t, cal)
    # Pressure falls as its count rises: bisect over the negated value.
    adc_p = _bisect(
        -climate.pressure_hpa * 100.0,
        0,
        (1 << 20) - 1,
        lambda n: -comp.pressure_pa(n, fine, cal),
    )
    adc_h = _bisect(
        climate.humidity_pct, 0, (1 << 16) - 1, lambda n: comp.humidity_pct(n, fine, cal)
    )
    return RawCounts(adc_t, adc_p, adc_h)


def simulated_climate(simulation: Bme280Simulation, at: datetime) -> Climate:
    """The twin's climate at ``at``: a daily cycle peaking at 15:00 UTC, with noise."""
    utc = at.astimezone(UTC)
    hour = hour_of_day(utc.hour, utc.minute, utc.second)
    cycle = diurnal(hour, 15.0)
    key = derive(simulation.seed, int(at.timestamp()))
    temperature = simulation.mean_c + simulation.amplitude_c * cycle + 0.05 * gaussian(key)
    humidity = simulation.humidity_pct - 4.0 * cycle + 0.3 * gaussian(derive(key, 1))
    pressure = simulation.pressure_hpa + 0.2 * math.sin(at.timestamp() / 86400.0)
    return Climate(temperature, min(100.0, max(0.0, humidity)), pressure)


class Bme280Twin:
    """A BME280 at one I2C address; implements the driver's ``I2cBus``."""

    def __init__(
        self,
        address: int = 0x76,
        *,
        climate: Climate | None = None,
        calibration: comp.Calibration = DATASHEET_CALIBRATION,
        simulation: Bme280Simulation | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.address = address
        self.climate = climate or Climate(21.0, 45.0, 1013.25)
        self.calibration = calibration
        self.simulation = simulation
        self.clock = clock
        self.chip_id = CHIP_ID
        self.unplugged = False
        self.glitches = 0
        """The next this-many bus operations fail with EIO."""
        self.stuck_measuring = False
        self.measuring_polls = 1
        """Status reads that still show a measurement running after it was started."""
        self.measurements = 0
        self.closed = 0
        self._lock = threading.Lock()
        self._registers = bytearray(256)
        self._polls_left = 0
        self._reset_registers()

    def _reset_registers(self) -> None:
        block_a, block_b = self.calibration.to_registers()
        self._registers[comp.CALIBRATION_A : comp.CALIBRATION_A + len(block_a)] = block_a
        self._registers[comp.CALIBRATION_B : comp.CALIBRATION_B + len(block_b)] = block_b
        # Power-on values of the data registers: "no measurement" (0x80000) for T and P.
        self._registers[DATA : DATA + 8] = bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0])

    # -- the I2cBus protocol ----------------------------------------------------------

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        with self._lock:
            self._check(i2c_addr)
            if register == CHIP_ID_REGISTER:
                return self.chip_id
            if register == STATUS:
                return self._status()
            return self._registers[register]

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        with self._lock:
            self._check(i2c_addr)
            self._registers[register] = value & 0xFF
            if register == CTRL_MEAS and value & 0b11 == MODE_FORCED:
                self._measure()

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        with self._lock:
            self._check(i2c_addr)
            return list(self._registers[register : register + length])

    def close(self) -> None:
        self.closed += 1

    # -- the chip -------------------------------------------------------------------------

    def _check(self, i2c_addr: int) -> None:
        if self.unplugged or i2c_addr != self.address:
            raise OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))
        if self.glitches > 0:
            self.glitches -= 1
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    def _status(self) -> int:
        if self.stuck_measuring:
            return STATUS_MEASURING
        if self._polls_left > 0:
            self._polls_left -= 1
            return STATUS_MEASURING
        return 0

    def _measure(self) -> None:
        climate = self.climate
        if self.simulation is not None:
            climate = self.climate = simulated_climate(self.simulation, self.clock())
        counts = raw_counts(climate, self.calibration)
        self._registers[DATA : DATA + 8] = bytes(
            [
                (counts.adc_p >> 12) & 0xFF,
                (counts.adc_p >> 4) & 0xFF,
                (counts.adc_p & 0x0F) << 4,
                (counts.adc_t >> 12) & 0xFF,
                (counts.adc_t >> 4) & 0xFF,
                (counts.adc_t & 0x0F) << 4,
                (counts.adc_h >> 8) & 0xFF,
                counts.adc_h & 0xFF,
            ]
        )
        self._polls_left = self.measuring_polls
        self.measurements += 1
