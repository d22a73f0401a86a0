"""A failing polled driver becomes fault events, retried with backoff, and recovers.

Run against the BME280 twin: the fault paths are those of a real bus.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from iotmon_devices import DeviceReading, DriverEvent, EventHub
from iotmon_devices.drivers.bme280 import Bme280Driver
from iotmon_devices.drivers.bme280_config import Bme280Config
from iotmon_devices.faults import Backoff, RetryPolicy
from iotmon_devices.simulators.bme280_twin import Bme280Twin
from iotmon_devices.supervision import SupervisedDriver
from tests.devices.support import T0, Sink, assert_contract_valid, fault_codes, seconds

RETRY = RetryPolicy(initial_s=10, max_s=60, multiplier=2)


def _supervised(twin: Bme280Twin) -> tuple[SupervisedDriver, Sink]:
    inner = Bme280Driver(Bme280Config(device_id="room-1"), bus_factory=lambda _b: twin)
    driver = SupervisedDriver(inner, device="room-1", component="bme280", retry=RETRY)
    sink = Sink()
    driver.attach(sink)
    driver.start()
    return driver, sink


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(RetryPolicy(initial_s=1, max_s=10, multiplier=3))
    assert [backoff.next_delay() for _ in range(5)] == [1, 3, 9, 10, 10]
    backoff.reset()
    assert backoff.next_delay() == 1
    many = Backoff(RetryPolicy(initial_s=1, max_s=300, multiplier=10))
    assert [many.next_delay() for _ in range(400)][-1] == 300  # no float overflow


def test_unplugged_sensor_is_one_fault_retried_with_backoff_then_cleared() -> None:
    twin = Bme280Twin()
    twin.unplugged = True
    driver, sink = _supervised(twin)

    assert driver.read(T0) == []
    assert fault_codes(sink) == [("unplugged", False)]
    assert sink.availability() == [False]
    fault = sink.faults()[0]
    assert fault.device == "room-1"
    assert fault.data["component"] == "bme280"
    assert fault.data["severity"] == "error"
    assert_contract_valid(fault)
    assert driver.retry_at == T0 + seconds(10)

    # Before the retry is due the bus is not touched; each failed retry waits longer.
    closes = twin.closed
    assert driver.read(T0 + seconds(5)) == []
    assert twin.closed == closes
    assert driver.read(T0 + seconds(10)) == []
    assert driver.retry_at == T0 + seconds(30)
    assert driver.read(T0 + seconds(30)) == []
    assert driver.retry_at == T0 + seconds(70)
    assert fault_codes(sink) == [("unplugged", False)]  # one event per episode

    twin.unplugged = False
    readings = driver.read(T0 + seconds(70))
    assert [r.metric for r in readings] == ["temperature", "humidity", "pressure"]
    assert fault_codes(sink) == [("unplugged", False), ("unplugged", True)]
    assert sink.availability() == [False, True]
    assert_contract_valid(sink.faults()[-1])
    assert driver.retry_at is None

    # After recovery the backoff starts again from its initial wait.
    twin.glitches = 1
    assert driver.read(T0 + seconds(80)) == []
    assert driver.retry_at == T0 + seconds(90)


def test_a_change_of_fault_clears_the_old_one_and_bus_errors_keep_it_online() -> None:
    twin = Bme280Twin()
    driver, sink = _supervised(twin)
    assert len(driver.read(T0)) == 3
    twin.glitches = 1
    driver.read(T0 + seconds(1))
    twin.unplugged = True
    driver.read(T0 + seconds(11))
    assert fault_codes(sink) == [("bus_error", False), ("bus_error", True), ("unplugged", False)]
    assert sink.availability() == [False]


def test_a_clock_set_back_does_not_postpone_the_retry() -> None:
    twin = Bme280Twin()
    twin.unplugged = True
    driver, _sink = _supervised(twin)
    driver.read(T0)
    twin.unplugged = False
    # NTP moved the clock back an hour: the retry is not an hour away.
    assert len(driver.read(T0 - seconds(3600))) == 3


class _Broken(Bme280Driver):
    def read(self, now: datetime) -> list[DeviceReading]:
        raise ZeroDivisionError("a driver bug")


def test_an_unexpected_exception_is_a_driver_error_fault_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    twin = Bme280Twin()
    inner = _Broken(Bme280Config(), bus_factory=lambda _b: twin)
    driver = SupervisedDriver(inner, device="room-1", component="bme280", retry=RETRY)
    sink = Sink()
    driver.attach(sink)
    assert driver.read(T0) == []
    assert fault_codes(sink) == [("driver_error", False)]
    assert "ZeroDivisionError" in sink.faults()[0].data["detail"]
    assert "failed unexpectedly" in caplog.text


def test_hub_forwards_and_lets_drivers_observe_each_other() -> None:
    twin = Bme280Twin()
    twin.unplugged = True
    seen: list[DriverEvent] = []

    class Observer(Bme280Driver):
        def observe(self, event: DriverEvent) -> None:
            seen.append(event)

    class Clumsy(Bme280Driver):
        def observe(self, event: DriverEvent) -> None:
            raise RuntimeError("observer bug")

    failing, _ = _supervised(twin)
    config = Bme280Config()
    drivers = [failing, Clumsy(config, bus_factory=lambda _b: twin), Observer(config)]
    forwarded = Sink()
    EventHub(drivers, forwarded).attach()
    failing.read(T0)
    assert [e.type for e in forwarded.events()] == ["fault"]
    assert forwarded.availability() == [False]
    assert [e.data["code"] for e in seen] == ["unplugged"]  # despite the clumsy observer
