"""Bosch BME280 on I2C (smbus2): temperature, relative humidity and air pressure.

Forced mode: each read starts one measurement (x1 oversampling, the datasheet's
"weather monitoring" setting), waits for it and reads the 8 data bytes in one
burst, so the three values belong to the same instant. Bus errors become faults:
no ACK is an unplugged sensor, EIO a bus error, a measurement that does not end a
timeout, a wrong chip id or the reset value in the data registers bad data.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from smbus2 import SMBus

from iotmon_devices.base import DeviceReading
from iotmon_devices.drivers import bme280_compensation as comp
from iotmon_devices.drivers.bme280_config import Bme280Config
from iotmon_devices.faults import DriverFault, FaultCode
from iotmon_devices.supervision import PolledDevice

CHIP_ID_REGISTER = 0xD0
CHIP_ID = 0x60
"""A BMP280 answers 0x56-0x58: same footprint, no humidity."""
CTRL_HUM = 0xF2
STATUS = 0xF3
CTRL_MEAS = 0xF4
DATA = 0xF7
DATA_LENGTH = 8

STATUS_MEASURING = 0x08
OSRS_X1 = 0b001
MODE_FORCED = 0b01
CTRL_MEAS_FORCED_X1 = (OSRS_X1 << 5) | (OSRS_X1 << 2) | MODE_FORCED
POLL_INTERVAL_S = 0.002

_UNPLUGGED_ERRNOS = {errno.EREMOTEIO, errno.ENXIO, errno.ENOENT, errno.ENODEV}
_TIMEOUT_ERRNOS = {errno.ETIMEDOUT, errno.EAGAIN}


class I2cBus(Protocol):
    """What the driver uses of ``smbus2.SMBus`` (and what the twin implements)."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def close(self) -> None: ...


def open_smbus(bus: int) -> I2cBus:
    return SMBus(bus)


def i2c_fault(exc: OSError, what: str) -> DriverFault:
    """The fault an I2C ``OSError`` means (Linux i2c-dev errnos)."""
    reason = exc.strerror or str(exc)
    if exc.errno in _UNPLUGGED_ERRNOS:
        return DriverFault(FaultCode.UNPLUGGED, f"{what}: no answer on the bus ({reason})")
    if exc.errno in _TIMEOUT_ERRNOS:
        return DriverFault(FaultCode.TIMEOUT, f"{what}: bus timed out ({reason})")
    return DriverFault(FaultCode.BUS_ERROR, f"{what}: {reason}")


class Bme280Driver(PolledDevice):
    def __init__(
        self,
        config: Bme280Config,
        *,
        bus_factory: Callable[[int], I2cBus] = open_smbus,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._bus_factory = bus_factory
        self._sleep = sleep
        self._monotonic = monotonic
        self._bus: I2cBus | None = None
        self._calibration: comp.Calibration | None = None

    @property
    def config(self) -> Bme280Config:
        return self._config

    @property
    def device_ids(self) -> Sequence[str]:
        return [self._config.device_id]

    def connect(self) -> None:
        """Open the bus, check the chip is a BME280 and read its calibration."""
        where = f"I2C bus {self._config.bus} address {self._config.address:#04x}"
        try:
            self._bus = self._bus_factory(self._config.bus)
            chip_id = self._bus.read_byte_data(self._config.address, CHIP_ID_REGISTER)
            if chip_id != CHIP_ID:
                raise DriverFault(
                    FaultCode.BAD_DATA,
                    f"{where}: chip id {chip_id:#04x} is not a BME280's ({CHIP_ID:#04x})",
                )
            block_a = self._block(comp.CALIBRATION_A, comp.CALIBRATION_A_LENGTH)
            block_b = self._block(comp.CALIBRATION_B, comp.CALIBRATION_B_LENGTH)
        except OSError as exc:
            raise i2c_fault(exc, where) from exc
        self._calibration = comp.Calibration.from_registers(block_a, block_b)

    def disconnect(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            bus.close()

    def read(self, now: datetime) -> list[DeviceReading]:
        calibration = self._calibration
        if self._bus is None or calibration is None:
            raise RuntimeError("read before connect")
        address = self._config.address
        where = f"I2C bus {self._config.bus} address {address:#04x}"
        try:
            # ctrl_hum takes effect only with the ctrl_meas write after it (datasheet 5.4.3).
            self._bus.write_byte_data(address, CTRL_HUM, OSRS_X1)
            self._bus.write_byte_data(address, CTRL_MEAS, CTRL_MEAS_FORCED_X1)
            self._wait_for_measurement(where)
            data = self._block(DATA, DATA_LENGTH)
        except OSError as exc:
            raise i2c_fault(exc, where) from exc
        adc_p = (data[0] << 12) | (data[1] << 4) | (data[2] >> 4)
        adc_t = (data[3] << 12) | (data[4] << 4) | (data[5] >> 4)
        adc_h = (data[6] << 8) | data[7]
        if adc_t == comp.ADC_SKIPPED or adc_p == comp.ADC_SKIPPED:
            raise DriverFault(FaultCode.BAD_DATA, f"{where}: no measurement in the data registers")
        fine = comp.t_fine(adc_t, calibration)
        temperature = comp.temperature_c(fine)
        pressure_hpa = comp.pressure_pa(adc_p, fine, calibration) / 100.0
        humidity = comp.humidity_pct(adc_h, fine, calibration)
        # The chip's operating range; outside it the reading is not a measurement.
        if not (-40.0 <= temperature <= 85.0 and 300.0 <= pressure_hpa <= 1100.0):
            raise DriverFault(
                FaultCode.BAD_DATA,
                f"{where}: {temperature} degC / {pressure_hpa:.2f} hPa is outside the range",
            )
        device = self._config.device_id
        return [
            DeviceReading(device, "temperature", round(temperature, 2), "degC", now),
            DeviceReading(device, "humidity", round(humidity, 2), "%", now),
            DeviceReading(device, "pressure", round(pressure_hpa, 2), "hPa", now),
        ]

    def _wait_for_measurement(self, where: str) -> None:
        assert self._bus is not None
        deadline = self._monotonic() + self._config.measure_timeout_s
        while self._bus.read_byte_data(self._config.address, STATUS) & STATUS_MEASURING:
            if self._monotonic() >= deadline:
                raise DriverFault(
                    FaultCode.TIMEOUT,
                    f"{where}: measurement still running after {self._config.measure_timeout_s}s",
                )
            self._sleep(POLL_INTERVAL_S)

    def _block(self, register: int, length: int) -> bytes:
        assert self._bus is not None
        return bytes(self._bus.read_i2c_block_data(self._config.address, register, length))
