"""Pulse-output meters on a GPIO, against gpiozero's mock pins (its own test tooling)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from iotmon_devices import default_registry
from iotmon_devices.drivers.gpio_config import PulseMeterConfig
from iotmon_devices.drivers.pulse_meter import PulseMeterDriver
from iotmon_devices.faults import DriverFault, FaultCode
from iotmon_devices.simulators.meter_profiles import MeterSimulation, TamperProfile
from iotmon_devices.simulators.pulse_twin import PulseTwin
from iotmon_devices.supervision import SupervisedDriver
from tests.devices.support import FAST_RETRY, T0, Sink, assert_contract_valid, fault_codes

MINUTE = timedelta(minutes=1)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def factory() -> Iterator[Any]:
    factory = MockFactory()
    yield factory
    factory.reset()


def _meter(
    factory: Any, clock: _Clock, tmp_path: Path | None = None, **config: Any
) -> tuple[PulseMeterDriver, PulseTwin, Sink]:
    settings = PulseMeterConfig(
        device_id="water-1",
        pin=17,
        units_per_pulse=0.001,
        initial_total=120.5,
        state_file=tmp_path / "water-1.json" if tmp_path else None,
        **config,
    )
    driver = PulseMeterDriver(settings, pin_factory=factory, monotonic=clock)
    sink = Sink()
    driver.attach(sink)
    driver.start()
    driver.connect()
    return driver, PulseTwin(factory.pin(17), units_per_pulse=0.001), sink


def test_counts_pulses_into_total_and_interval(factory: Any) -> None:
    clock = _Clock()
    driver, twin, _sink = _meter(factory, clock)
    first = {r.metric: r.value for r in driver.read(T0)}
    assert first == {"water_m3_total": 120.5}
    for _ in range(250):
        clock.now += 0.5
        twin.pulse()
    second = {r.metric: r.value for r in driver.read(T0 + 15 * MINUTE)}
    assert second["water_m3_total"] == pytest.approx(120.75)
    assert second["water_m3"] == pytest.approx(0.25)
    driver.disconnect()


def test_contact_bounce_counts_once(factory: Any) -> None:
    clock = _Clock()
    driver, twin, _sink = _meter(factory, clock, debounce_s=0.02)
    for _ in range(10):
        clock.now += 1.0
        twin.pulse()  # the real closing
        clock.now += 0.003
        twin.pulse(2)  # its bounces
    assert driver.pulses == 10
    driver.disconnect()


def test_a_magnet_held_on_the_reed_is_a_tamper_fault_cleared_when_it_goes(factory: Any) -> None:
    clock = _Clock()
    driver, twin, sink = _meter(factory, clock, tamper_active_s=300)
    driver.read(T0)
    twin.hold(True)
    clock.now += 299
    driver.read(T0 + 5 * MINUTE)
    assert fault_codes(sink) == []
    clock.now += 2
    readings = driver.read(T0 + 10 * MINUTE)
    assert fault_codes(sink) == [("tamper", False)]
    assert sink.faults()[0].data["severity"] == "warning"
    assert_contract_valid(sink.faults()[0])
    assert readings  # readings go on: a tamper is news, not a dead meter
    twin.hold(False)
    driver.read(T0 + 15 * MINUTE)
    assert fault_codes(sink) == [("tamper", False), ("tamper", True)]
    driver.disconnect()


def test_the_count_survives_a_restart_in_the_state_file(factory: Any, tmp_path: Path) -> None:
    clock = _Clock()
    driver, twin, _ = _meter(factory, clock, tmp_path)
    driver.read(T0)
    for _ in range(40):
        clock.now += 1
        twin.pulse()
    assert driver.read(T0 + MINUTE)[0].value == pytest.approx(120.54)
    driver.disconnect()
    state = json.loads((tmp_path / "water-1.json").read_text())
    assert state == {"version": 1, "pulses": 40, "initial_total": 120.5, "units_per_pulse": 0.001}

    restarted, twin, sink = _meter(factory, clock, tmp_path)
    assert restarted.read(T0 + 2 * MINUTE)[0].value == pytest.approx(120.54)
    restarted.disconnect()
    assert fault_codes(sink) == []


def test_without_a_state_file_a_restart_starts_over_with_no_interval(factory: Any) -> None:
    clock = _Clock()
    driver, twin, _ = _meter(factory, clock)
    driver.read(T0)
    for _ in range(30):
        clock.now += 1
        twin.pulse()
    assert driver.read(T0 + MINUTE)[0].value == pytest.approx(120.53)
    driver.disconnect()
    restarted, _twin, sink = _meter(factory, clock)
    # Back at the installation reading, and no (negative) interval across the restart.
    assert [(r.metric, r.value) for r in restarted.read(T0 + 2 * MINUTE)] == [
        ("water_m3_total", 120.5)
    ]
    assert sink.items == []
    restarted.disconnect()


def test_a_pin_in_use_is_a_bus_error_retried_until_it_is_free(factory: Any) -> None:
    from gpiozero import DigitalInputDevice

    squatter = DigitalInputDevice(17, pin_factory=factory)
    settings = PulseMeterConfig(device_id="water-1", pin=17, retry=FAST_RETRY)
    inner = PulseMeterDriver(settings, pin_factory=factory)
    with pytest.raises(DriverFault) as raised:
        inner.connect()
    assert raised.value.code is FaultCode.BUS_ERROR
    supervised = SupervisedDriver(
        inner, device="water-1", component="pulse_meter", retry=FAST_RETRY
    )
    sink = Sink()
    supervised.attach(sink)
    assert supervised.read(T0) == []
    squatter.close()
    assert supervised.read(T0 + MINUTE)
    assert fault_codes(sink) == [("bus_error", False), ("bus_error", True)]
    supervised.stop()


def test_simulate_mode_pulses_a_school_day_and_a_tamper() -> None:
    tamper = TamperProfile(start=T0 + 60 * MINUTE, end=T0 + 120 * MINUTE)
    config = PulseMeterConfig(
        device_id="water-sim",
        simulate=MeterSimulation(medium="water", tamper=tamper),
        tamper_active_s=0,
    )
    driver = default_registry().create(config)
    driver.start()
    readings = [driver.read(T0 + n * 15 * MINUTE) for n in range(12)]
    driver.stop()
    intervals = [
        next((r.value for r in batch if r.metric == "water_m3"), None) for batch in readings
    ]
    assert intervals[0] is None
    assert sum(v for v in intervals[1:4] if v) > 0  # morning at school
    assert intervals[5:8] == [0.0, 0.0, 0.0]  # tampered: nothing registered
