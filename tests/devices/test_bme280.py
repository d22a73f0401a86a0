"""BME280 on I2C: the datasheet's compensation, and the driver against its simulated twin."""

from __future__ import annotations

import pytest

from iotmon_devices.drivers import bme280_compensation as comp
from iotmon_devices.drivers.bme280 import Bme280Driver
from iotmon_devices.drivers.bme280_config import Bme280Config
from iotmon_devices.faults import DriverFault, FaultCode
from iotmon_devices.simulators.bme280_twin import (
    DATASHEET_CALIBRATION,
    Bme280Twin,
    Climate,
    raw_counts,
)
from tests.devices.support import T0


def test_compensation_matches_the_datasheet_example() -> None:
    """BMP280 datasheet, section 3.12: adc_T 519888 is 25.08 degC (t_fine 128422) and
    adc_P 415148 is 100653.27 Pa; the BME280 uses the same formulas."""
    fine = comp.t_fine(519888, DATASHEET_CALIBRATION)
    assert fine == 128422
    assert comp.temperature_c(fine) == 25.08
    assert comp.pressure_pa(415148, fine, DATASHEET_CALIBRATION) == pytest.approx(
        100653.27, abs=0.05
    )


def test_calibration_registers_round_trip_with_signed_12_bit_humidity_terms() -> None:
    calibration = comp.Calibration(
        27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000,
        75, 360, 0, -325, -50, -30,
    )  # fmt: skip
    block_a, block_b = calibration.to_registers()
    assert len(block_a) == comp.CALIBRATION_A_LENGTH
    assert comp.Calibration.from_registers(block_a, block_b) == calibration


@pytest.mark.parametrize(
    "climate",
    [Climate(21.5, 45.0, 1013.25), Climate(-12.3, 90.0, 950.0), Climate(38.0, 12.5, 1050.0)],
)
def test_twin_counts_decode_to_its_climate(climate: Climate) -> None:
    counts = raw_counts(climate, DATASHEET_CALIBRATION)
    fine = comp.t_fine(counts.adc_t, DATASHEET_CALIBRATION)
    assert comp.temperature_c(fine) == pytest.approx(climate.temperature_c, abs=0.011)
    assert comp.pressure_pa(counts.adc_p, fine, DATASHEET_CALIBRATION) / 100 == pytest.approx(
        climate.pressure_hpa, abs=0.02
    )
    assert comp.humidity_pct(counts.adc_h, fine, DATASHEET_CALIBRATION) == pytest.approx(
        climate.humidity_pct, abs=0.02
    )


def _driver(twin: Bme280Twin, **config: object) -> Bme280Driver:
    return Bme280Driver(
        Bme280Config(device_id="room-1", **config),
        bus_factory=lambda _bus: twin,
        sleep=lambda _s: None,
    )


def test_reads_temperature_humidity_and_pressure_in_forced_mode() -> None:
    twin = Bme280Twin(climate=Climate(22.37, 51.2, 1001.5))
    twin.measuring_polls = 3
    driver = _driver(twin)
    driver.connect()
    readings = {r.metric: r for r in driver.read(T0)}
    assert readings["temperature"].value == pytest.approx(22.37, abs=0.011)
    assert readings["humidity"].value == pytest.approx(51.2, abs=0.02)
    assert readings["pressure"].value == pytest.approx(1001.5, abs=0.02)
    assert {r.unit for r in readings.values()} == {"degC", "%", "hPa"}
    assert {r.device for r in readings.values()} == {"room-1"}
    twin.climate = Climate(18.0, 60.0, 1020.0)
    assert {r.metric: r.value for r in driver.read(T0)}["temperature"] == pytest.approx(
        18.0, abs=0.011
    )
    assert twin.measurements == 2


def test_a_bmp280_at_the_address_is_bad_data() -> None:
    twin = Bme280Twin()
    twin.chip_id = 0x58
    with pytest.raises(DriverFault) as raised:
        _driver(twin).connect()
    assert raised.value.code is FaultCode.BAD_DATA
    assert "0x58" in raised.value.detail


def test_bus_faults_map_to_fault_codes() -> None:
    twin = Bme280Twin()
    driver = _driver(twin, measure_timeout_s=0.01)
    driver.connect()

    twin.glitches = 1
    with pytest.raises(DriverFault) as raised:
        driver.read(T0)
    assert raised.value.code is FaultCode.BUS_ERROR

    twin.unplugged = True
    with pytest.raises(DriverFault) as raised:
        driver.read(T0)
    assert raised.value.code is FaultCode.UNPLUGGED

    twin.unplugged = False
    twin.stuck_measuring = True
    with pytest.raises(DriverFault) as raised:
        driver.read(T0)
    assert raised.value.code is FaultCode.TIMEOUT

    twin.stuck_measuring = False
    assert len(driver.read(T0)) == 3


def test_a_wrong_address_is_no_answer() -> None:
    with pytest.raises(DriverFault) as raised:
        _driver(Bme280Twin(address=0x77), address=0x76).connect()
    assert raised.value.code is FaultCode.UNPLUGGED


def test_power_on_data_registers_are_not_a_measurement() -> None:
    twin = Bme280Twin()
    driver = _driver(twin)
    driver.connect()
    # A chip that ignored the forced-mode write still holds its reset values.
    twin.write_byte_data = lambda *_args: None  # type: ignore[method-assign]
    with pytest.raises(DriverFault) as raised:
        driver.read(T0)
    assert raised.value.code is FaultCode.BAD_DATA
