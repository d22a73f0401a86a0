"""DS18B20 probes over sysfs and the Pi's own health, against their simulated twins."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from iotmon_devices import default_registry
from iotmon_devices.drivers.ds18b20 import Ds18b20Driver, parse_w1_slave
from iotmon_devices.drivers.ds18b20_config import Ds18b20Config
from iotmon_devices.drivers.pi_system import PiSystemDriver
from iotmon_devices.drivers.pi_system_config import PiSystemConfig
from iotmon_devices.faults import DriverFault, FaultCode
from iotmon_devices.simulators.pi_twin import PiTwin
from iotmon_devices.simulators.w1_twin import W1Twin, dallas_crc8, scratchpad
from tests.devices.support import FAST_RETRY, T0, Sink, fault_codes, seconds

PROBE = "28-0316a2795aff"

# What the w1-therm driver prints for a probe at 23.125 degC (a widely quoted sample).
KERNEL_SAMPLE = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"


def test_parses_the_kernels_output_and_the_twin_writes_the_same_format() -> None:
    assert parse_w1_slave(KERNEL_SAMPLE, "probe") == 23.125
    assert dallas_crc8(bytes.fromhex("72014b467fff0e10")) == 0x57
    assert scratchpad(23.125)[:2] == bytes.fromhex("7201")
    assert scratchpad(-10.5)[:2] == (round(-10.5 * 16) & 0xFFFF).to_bytes(2, "little")


def _probe(root: Path) -> Ds18b20Driver:
    return Ds18b20Driver(Ds18b20Config(device_id="tank-1", sensor_id=PROBE, root=root))


def test_reads_the_probe_and_each_failure_has_its_code(tmp_path: Path) -> None:
    twin = W1Twin(tmp_path / "w1")
    twin.plug(PROBE, 4.5)
    driver = _probe(twin.root)
    [reading] = driver.read(T0)
    assert (reading.device, reading.metric, reading.value, reading.unit) == (
        "tank-1",
        "temperature",
        4.5,
        "degC",
    )
    twin.set_temperature(PROBE, -12.0625)
    assert driver.read(T0)[0].value == -12.062  # whole millidegrees, as the kernel prints

    cases: list[tuple[Callable[[], None], FaultCode]] = [
        (lambda: twin.crc_error(PROBE, 5.0), FaultCode.CRC_ERROR),
        (lambda: twin.power_on_reset(PROBE), FaultCode.BAD_DATA),
        (lambda: twin.data_line_low(PROBE), FaultCode.BAD_DATA),
        (lambda: twin.unplug(PROBE), FaultCode.UNPLUGGED),
    ]
    for make_fault, code in cases:
        make_fault()
        with pytest.raises(DriverFault) as raised:
            driver.read(T0)
        assert raised.value.code is code


def test_a_probe_off_the_bus_is_retried_and_recovers(tmp_path: Path) -> None:
    twin = W1Twin(tmp_path / "w1")
    config = Ds18b20Config(device_id="tank-1", sensor_id=PROBE, root=twin.root, retry=FAST_RETRY)
    driver = default_registry().create(config)
    sink = Sink()
    driver.attach(sink)
    driver.start()
    assert driver.read(T0) == []
    assert fault_codes(sink) == [("unplugged", False)]
    twin.plug(PROBE, 21.0)
    assert driver.read(T0 + seconds(1))[0].value == 21.0
    assert fault_codes(sink) == [("unplugged", False), ("unplugged", True)]
    assert sink.availability() == [False, True]


def _pi(twin: PiTwin, vcgencmd: str | None = "default") -> PiSystemDriver:
    command = str(twin.vcgencmd) if vcgencmd == "default" else vcgencmd
    config = PiSystemConfig(
        device_id="pi-bus-12",
        thermal_zone=twin.thermal_zone,
        vcgencmd=command,
        command_timeout_s=0.5,
    )
    driver = PiSystemDriver(config)
    driver.connect()
    return driver


def test_cpu_temperature_and_throttling_flags(tmp_path: Path) -> None:
    twin = PiTwin(tmp_path / "pi")
    twin.set_temperature(61.25)
    # Under-voltage now, throttled since boot: what a weak supply looks like.
    twin.set_throttled(0x50001)
    values = {r.metric: r.value for r in _pi(twin).read(T0)}
    assert values["cpu_temperature"] == 61.25
    assert values["under_voltage"] == 1.0
    assert values["throttled"] == 0.0
    assert values["under_voltage_occurred"] == 1.0
    assert values["throttled_occurred"] == 1.0
    assert values["freq_capped_occurred"] == 0.0


def test_without_vcgencmd_only_the_temperature(tmp_path: Path) -> None:
    twin = PiTwin(tmp_path / "pi")
    missing = _pi(twin, "iotmon-no-such-vcgencmd")
    assert [r.metric for r in missing.read(T0)] == ["cpu_temperature"]
    assert [r.metric for r in _pi(twin, None).read(T0)] == ["cpu_temperature"]


def test_pi_faults(tmp_path: Path) -> None:
    twin = PiTwin(tmp_path / "pi")
    driver = _pi(twin)
    twin.set_throttled(0, exit_code=255)
    with pytest.raises(DriverFault, match="exited 255") as failed:
        driver.read(T0)
    assert failed.value.code is FaultCode.BUS_ERROR
    twin.set_answer("VCHI initialization failed\n")
    with pytest.raises(DriverFault) as garbled:
        driver.read(T0)
    assert garbled.value.code is FaultCode.BAD_DATA
    twin.set_throttled(0, delay_s=2)
    with pytest.raises(DriverFault) as slow:
        driver.read(T0)
    assert slow.value.code is FaultCode.TIMEOUT
    twin.set_throttled(0)
    twin.remove_thermal_zone()
    with pytest.raises(DriverFault) as gone:
        driver.read(T0)
    assert gone.value.code is FaultCode.UNPLUGGED
    shutil.rmtree(twin.root)
