"""Modbus electricity meters against a real pymodbus server: TCP on loopback, RTU over ptys."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from iotmon_devices import default_registry
from iotmon_devices.drivers.modbus_config import ModbusMeterConfig
from iotmon_devices.drivers.modbus_meter import (
    ModbusMeterDriver,
    damaged_rtu_frame,
    modbus_crc,
)
from iotmon_devices.drivers.registermaps import (
    RegisterMapError,
    load_register_map,
    parse_register_map,
    shipped_register_maps,
)
from iotmon_devices.faults import DriverFault, FaultCode
from iotmon_devices.simulators.modbus_twin import ModbusTwinServer
from iotmon_devices.simulators.serial_ports import NullModem
from iotmon_devices.supervision import SupervisedDriver
from tests.devices.support import FAST_RETRY, T0, Sink, fault_codes, seconds


@pytest.fixture(autouse=True)
def _quiet_pymodbus(caplog: pytest.LogCaptureFixture) -> None:
    # pymodbus logs every timeout at ERROR with a packet dump; the tests cause them.
    caplog.set_level(logging.CRITICAL, logger="pymodbus")


class _Values:
    """What the twin meter shows: settable, so a test knows what the driver must read."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {
            "voltage_v": 231.5,
            "current_a": 4.25,
            "power_w": 960.0,
            "power_factor": 0.97,
            "frequency_hz": 50.01,
            "energy_kwh_total": 12345.5,
        }

    def __call__(self, _at: datetime) -> dict[str, float]:
        return self.values


@pytest.fixture
def values() -> _Values:
    return _Values()


@pytest.fixture
def tcp_twin(values: _Values) -> Iterator[ModbusTwinServer]:
    with ModbusTwinServer(load_register_map("sdm120"), values=values, unit_id=7) as twin:
        twin.start_tcp()
        yield twin


def _tcp_driver(twin: ModbusTwinServer, register_map: str = "sdm120") -> ModbusMeterDriver:
    host, port = twin.address
    config = ModbusMeterConfig(
        device_id="meter-1",
        register_map=register_map,
        connection={"transport": "tcp", "host": host, "port": port},
        unit_id=twin.unit_id,
        timeout_s=0.3,
        request_retries=0,
        max_power_kw=20,
        retry=FAST_RETRY,
    )
    return ModbusMeterDriver(config)


def test_shipped_register_maps_load_and_batch_their_reads() -> None:
    assert shipped_register_maps() == ["sdm120", "sdm630"]
    sdm630 = load_register_map("sdm630")
    assert sdm630.model == "Eastron SDM630"
    assert sdm630.energy_register is not None
    assert sdm630.energy_register.address == 0x0048
    # 19 values in few requests, none over the meter's limit.
    blocks = sdm630.blocks()
    assert len(blocks) <= 2
    assert all(block.count <= sdm630.max_registers_per_read for block in blocks)
    covered = {a for b in blocks for a in range(b.address, b.end)}
    assert all(set(range(v.address, v.end)) <= covered for v in sdm630.all_values())


def test_register_map_errors_name_the_file_and_key_path() -> None:
    text = (
        "model: X\nvalues:\n  - {metric: power_w, address: 12}\n  - {metric: Volts, address: 0}\n"
    )
    with pytest.raises(RegisterMapError, match=r"my\.yaml: values\.1\.metric: String should"):
        parse_register_map(text, "my.yaml")
    overlap = "model: X\nvalues:\n  - {metric: a, address: 0}\n  - {metric: b, address: 1}\n"
    with pytest.raises(RegisterMapError, match="register 0x0001 of b is also a"):
        parse_register_map(overlap, "o.yaml")
    with pytest.raises(ValueError, match="cannot read register map"):
        ModbusMeterConfig(register_map="/nonexistent/meter.yaml")
    with pytest.raises(ValueError, match="medium electricity"):
        ModbusMeterConfig(simulate={"medium": "water"})


def test_reads_every_mapped_value_from_a_real_server(
    tcp_twin: ModbusTwinServer, values: _Values
) -> None:
    driver = _tcp_driver(tcp_twin)
    driver.connect()
    try:
        first = {r.metric: r for r in driver.read(T0)}
        assert first["voltage_v"].value == pytest.approx(231.5, abs=1e-3)
        assert first["voltage_v"].unit == "V"
        assert first["current_a"].value == pytest.approx(4.25, abs=1e-4)
        assert first["power_w"].value == pytest.approx(960.0, abs=1e-3)
        assert first["frequency_hz"].value == pytest.approx(50.01, abs=1e-3)
        assert first["energy_kwh_total"].value == pytest.approx(12345.5, abs=1e-3)
        assert first["energy_kwh_total"].unit == "kWh"
        assert "energy_kwh" not in first  # no interval before the second read

        values.values["energy_kwh_total"] = 12345.75
        second = {r.metric: r.value for r in driver.read(T0 + timedelta(minutes=1))}
        assert second["energy_kwh"] == pytest.approx(0.25, abs=2e-3)
        assert tcp_twin.requests >= 4
    finally:
        driver.disconnect()


def test_a_replaced_meter_is_a_meter_reset_event_not_a_negative_interval(
    tcp_twin: ModbusTwinServer, values: _Values
) -> None:
    driver = _tcp_driver(tcp_twin)
    sink = Sink()
    driver.attach(sink)
    driver.connect()
    try:
        driver.read(T0)
        values.values["energy_kwh_total"] = 0.4  # the electrician fitted a new meter
        held = {r.metric for r in driver.read(T0 + timedelta(minutes=15))}
        assert not held & {"energy_kwh", "energy_kwh_total"}
        values.values["energy_kwh_total"] = 1.9
        confirmed = {r.metric: r.value for r in driver.read(T0 + timedelta(minutes=30))}
        assert confirmed["energy_kwh"] == pytest.approx(1.5, abs=1e-3)
        assert fault_codes(sink) == [("meter_reset", False)]
        assert sink.faults()[0].data["severity"] == "warning"
        values.values["energy_kwh_total"] = 2.0
        driver.read(T0 + timedelta(minutes=45))
        assert fault_codes(sink) == [("meter_reset", False), ("meter_reset", True)]
    finally:
        driver.disconnect()


def test_sdm630_three_phases_from_the_simulated_school(tcp_twin: ModbusTwinServer) -> None:
    with ModbusTwinServer(load_register_map("sdm630")) as twin:
        twin.start_tcp()
        driver = _tcp_driver(twin, "sdm630")
        driver.connect()
        readings = {r.metric: r.value for r in driver.read(T0)}
        driver.disconnect()
    phases = readings["power_l1_w"] + readings["power_l2_w"] + readings["power_l3_w"]
    assert phases == pytest.approx(readings["power_w"], rel=1e-4)
    assert 200 < readings["voltage_l2_v"] < 260
    assert readings["power_w"] > 0


@pytest.mark.parametrize(
    ("fault", "code"),
    [("silent", FaultCode.TIMEOUT), ("exception", FaultCode.BUS_ERROR), ("stopped", None)],
)
def test_wire_faults_become_fault_codes(
    tcp_twin: ModbusTwinServer, fault: str, code: FaultCode | None
) -> None:
    driver = _tcp_driver(tcp_twin)
    driver.connect()
    try:
        if fault == "silent":
            tcp_twin.silent = True
        elif fault == "exception":
            tcp_twin.exception_responses = 1
        else:
            tcp_twin.stop()
        with pytest.raises(DriverFault) as raised:
            driver.read(T0)
        if code is not None:
            assert raised.value.code is code
        else:
            # A closed server: the open connection fails (or times out while it closes).
            assert raised.value.code in {FaultCode.UNPLUGGED, FaultCode.TIMEOUT}
            driver.disconnect()
            with pytest.raises(DriverFault) as refused:
                driver.connect()
            assert refused.value.code is FaultCode.UNPLUGGED
    finally:
        driver.disconnect()


def test_supervised_meter_recovers_when_the_server_comes_back(
    tcp_twin: ModbusTwinServer,
) -> None:
    supervised = SupervisedDriver(
        _tcp_driver(tcp_twin), device="meter-1", component="modbus_meter", retry=FAST_RETRY
    )
    sink = Sink()
    supervised.attach(sink)
    supervised.start()
    try:
        assert supervised.read(T0)
        tcp_twin.stop()
        assert supervised.read(T0 + seconds(1)) == []
        assert supervised.read(T0 + seconds(1.01)) == []  # backing off
        assert fault_codes(sink)[0][0] in {"unplugged", "timeout"}
        assert sink.availability() == [False]
        tcp_twin.restart()
        assert supervised.read(T0 + seconds(2))
        assert fault_codes(sink)[-1][1] is True
        assert sink.availability() == [False, True]
    finally:
        supervised.stop()


def test_simulate_mode_serves_and_reads_a_loopback_meter() -> None:
    config = ModbusMeterConfig(
        device_id="meter-sim", register_map="sdm630", simulate={"medium": "electricity"}
    )
    driver = default_registry().create(config)
    driver.start()
    # The twin meter answers for the time the agent reads at, not the wall clock: ten
    # minutes of consumption must show, however fast or slow the two reads come.
    read_at = [T0]
    meter = driver.inner if isinstance(driver, SupervisedDriver) else driver
    assert isinstance(meter, ModbusMeterDriver)
    assert meter.twin is not None
    meter.twin.clock = lambda: read_at[0]
    try:
        first = {r.metric: r.value for r in driver.read(T0)}
        read_at[0] = T0 + timedelta(minutes=10)
        second = {r.metric: r.value for r in driver.read(read_at[0])}
    finally:
        driver.stop()
    assert first["power_w"] > 0
    assert second["energy_kwh"] > 0


def test_modbus_crc_of_a_known_frame() -> None:
    # Read holding registers, unit 1, address 0, 1 register: CRC 0x0A84 (sent 84 0A).
    assert modbus_crc(bytes.fromhex("010300000001")) == 0x0A84
    good = bytes.fromhex("0103020005") + bytes([0x78, 0x47])
    assert modbus_crc(good[:-2]) == int.from_bytes(good[-2:], "little")
    assert not damaged_rtu_frame(good)
    assert damaged_rtu_frame(good[:-1] + bytes([good[-1] ^ 0xFF]))
    assert not damaged_rtu_frame(good[:4])  # not all there yet


@pytest.fixture
def rtu(values: _Values) -> Iterator[tuple[ModbusTwinServer, ModbusMeterDriver]]:
    with NullModem() as modem, ModbusTwinServer(load_register_map("sdm120"), values=values) as twin:
        twin.start_rtu(modem.b.path, baudrate=38400)
        config = ModbusMeterConfig(
            device_id="meter-rtu",
            register_map="sdm120",
            connection={"transport": "rtu", "port": modem.a.path, "baudrate": 38400},
            timeout_s=0.3,
            request_retries=0,
        )
        driver = ModbusMeterDriver(config)
        driver.connect()
        try:
            yield twin, driver
        finally:
            driver.disconnect()


def test_rtu_over_a_pty_pair_reads_crc_checked_frames(
    rtu: tuple[ModbusTwinServer, ModbusMeterDriver],
) -> None:
    _twin, driver = rtu
    readings = {r.metric: r.value for r in driver.read(T0)}
    assert readings["voltage_v"] == pytest.approx(231.5, abs=1e-3)
    assert readings["energy_kwh_total"] == pytest.approx(12345.5, abs=1e-3)


def test_rtu_damaged_answer_is_a_crc_error_and_silence_a_timeout(
    rtu: tuple[ModbusTwinServer, ModbusMeterDriver],
) -> None:
    twin, driver = rtu
    twin.corrupt_responses = 1
    with pytest.raises(DriverFault) as damaged:
        driver.read(T0)
    assert damaged.value.code is FaultCode.CRC_ERROR
    twin.silent = True
    with pytest.raises(DriverFault) as silent:
        driver.read(T0)
    assert silent.value.code is FaultCode.TIMEOUT
    twin.silent = False
    assert driver.read(T0)


def test_rtu_without_the_serial_port_is_unplugged() -> None:
    config = ModbusMeterConfig(
        register_map="sdm120",
        connection={"transport": "rtu", "port": "/dev/iotmon-no-such-port"},
    )
    with pytest.raises(DriverFault) as raised:
        ModbusMeterDriver(config).connect()
    assert raised.value.code is FaultCode.UNPLUGGED
