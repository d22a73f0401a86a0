"""School-bus readers on serial ports (ptys) and GPIO inputs (gpiozero mock pins)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from iotmon_devices import DriverEvent
from iotmon_devices.drivers.bus_inputs import IgnitionDriver, WalkthroughButtonDriver
from iotmon_devices.drivers.gpio_config import IgnitionConfig, WalkthroughButtonConfig
from iotmon_devices.drivers.gps import GpsDriver
from iotmon_devices.drivers.serial_config import (
    CabinTagScannerConfig,
    DoorTagReaderConfig,
    GpsReceiverConfig,
)
from iotmon_devices.drivers.tag_protocol import (
    LineError,
    LineErrorKind,
    SweepDone,
    TagPassed,
    encode_line,
    parse_line,
)
from iotmon_devices.drivers.tag_readers import CabinTagScannerDriver, DoorTagReaderDriver
from iotmon_devices.simulators.serial_ports import PtyPort
from iotmon_devices.simulators.serial_twins import Fix, GpsTwin, TagReaderTwin
from tests.devices.support import FAST_RETRY, Sink, assert_contract_valid, fault_codes

TAG_A = "E2801160600002084A3C1F2B"
TAG_B = "E2801160600002084A3C1F2C"


def test_line_protocol_round_trip_and_damage() -> None:
    line = encode_line("TAG", TAG_A, "-61.5", "IN")
    assert line.startswith(b"$TAG,")
    assert line.endswith(b"\r\n")
    assert parse_line(line) == TagPassed(TAG_A, -61.5, "in")
    assert parse_line(encode_line("DONE", "s-1", "3")) == SweepDone("s-1", 3)
    damaged = line.replace(b"61.5", b"61.4")
    with pytest.raises(LineError) as checksum:
        parse_line(damaged)
    assert checksum.value.kind is LineErrorKind.CHECKSUM
    for bad in (encode_line("TAG", TAG_A, "-999"), encode_line("TAG", "bad tag!", "-60"), b"xyz"):
        with pytest.raises(LineError) as malformed:
            parse_line(bad)
        assert malformed.value.kind is LineErrorKind.MALFORMED


@pytest.fixture
def port(tmp_path: Path) -> Iterator[PtyPort]:
    # Through a stable symlink, as udev's /dev/serial/by-id/ names.
    pty = PtyPort(tmp_path / "usb-door-reader")
    yield pty
    pty.unplug()


def _door(port: PtyPort, **config: Any) -> tuple[DoorTagReaderDriver, Sink]:
    settings = DoorTagReaderConfig(
        device_id="bus-12-door", port=port.path, silence_timeout_s=1.0, retry=FAST_RETRY, **config
    )
    driver = DoorTagReaderDriver(settings)
    sink = Sink()
    driver.attach(sink)
    return driver, sink


def test_door_reader_sends_tag_reads_with_rssi_and_direction(port: PtyPort) -> None:
    with TagReaderTwin(port) as twin:
        driver, sink = _door(port)
        driver.start()
        try:
            assert sink.wait_for(lambda _: twin.sent >= 2 and driver.lines >= 1)
            before = datetime.now(UTC)
            twin.passage(TAG_A, -61.5, "in")
            twin.passage(TAG_B, -70)
            assert sink.wait_for(lambda s: len(s.events("tag_read")) == 2)
        finally:
            driver.stop()
    first, second = sink.events("tag_read")
    assert first.device == "bus-12-door"
    assert first.data == {"tag": TAG_A, "rssi": -61.5, "direction": "in"}
    assert second.data == {"tag": TAG_B, "rssi": -70.0}
    assert before <= first.ts <= second.ts <= datetime.now(UTC)
    assert_contract_valid(first)
    assert fault_codes(sink) == []


def test_unplugged_reader_is_offline_until_replugged(port: PtyPort) -> None:
    twin = TagReaderTwin(port)
    twin.start()
    driver, sink = _door(port)
    driver.start()
    try:
        assert sink.wait_for(lambda _: driver.lines >= 1)
        port.unplug()  # the USB adapter is pulled
        assert sink.wait_for(lambda s: fault_codes(s) == [("unplugged", False)])
        assert sink.availability() == [False]
        sessions = driver.sessions
        assert sink.wait_for(lambda _: driver.sessions >= sessions + 2)  # retrying
        port.plug()  # a new pty behind the same by-id symlink
        assert sink.wait_for(lambda s: ("unplugged", True) in fault_codes(s))
        assert sink.availability() == [False, True]
        twin.passage(TAG_A, -50)
        assert sink.wait_for(lambda s: len(s.events("tag_read")) == 1)
    finally:
        driver.stop()
        twin.stop()


def test_a_silent_reader_times_out_and_damaged_lines_are_crc_errors(port: PtyPort) -> None:
    with TagReaderTwin(port) as twin:
        driver, sink = _door(port, max_bad_lines=3)
        driver.start()
        try:
            assert sink.wait_for(lambda _: driver.lines >= 1)
            twin.silent = True
            assert sink.wait_for(lambda s: fault_codes(s) == [("timeout", False)])
            assert sink.availability() == [False]
            twin.silent = False
            assert sink.wait_for(lambda s: ("timeout", True) in fault_codes(s))
            twin.damaged_lines = 3
            assert sink.wait_for(lambda s: ("crc_error", False) in fault_codes(s))
            assert sink.wait_for(lambda s: fault_codes(s)[-1] == ("crc_error", True))
            assert driver.bad_lines >= 3
            assert sink.availability() == [False, True]  # damaged lines: still reachable
        finally:
            driver.stop()


def _cabin(port: PtyPort, **config: Any) -> tuple[CabinTagScannerDriver, Sink]:
    settings = CabinTagScannerConfig(
        device_id="bus-12-cabin", port=port.path, retry=FAST_RETRY, **config
    )
    driver = CabinTagScannerDriver(settings)
    sink = Sink()
    driver.attach(sink)
    return driver, sink


def _ignition(on: bool) -> DriverEvent:
    return DriverEvent("bus-12-ignition", "ignition", datetime.now(UTC), {"on": on})


def test_cabin_scanner_sweeps_when_the_ignition_goes_off(port: PtyPort) -> None:
    with TagReaderTwin(port) as twin:
        twin.aboard = {TAG_A: -58.0, TAG_B: -80.5}
        driver, sink = _cabin(port)
        driver.start()
        try:
            driver.observe(_ignition(True))  # ignition on: nothing to do
            driver.observe(_ignition(False))
            assert sink.wait_for(lambda s: len(s.events("sweep_complete")) == 1)
        finally:
            driver.stop()
    reads = sink.events("sweep_read")
    [complete] = sink.events("sweep_complete")
    assert sorted((e.data["tag"], e.data["rssi"]) for e in reads) == [
        (TAG_A, -58.0),
        (TAG_B, -80.5),
    ]
    assert {e.data["sweep_id"] for e in reads} == {complete.data["sweep_id"]}
    assert complete.data["reads"] == 2
    assert twin.sweeps == [complete.data["sweep_id"]]
    for event in [*reads, complete]:
        assert_contract_valid(event)


@pytest.mark.parametrize("fault", ["lost_reads", "no_done"])
def test_an_unfinished_sweep_is_a_fault_and_never_a_sweep_complete(
    port: PtyPort, fault: str
) -> None:
    with TagReaderTwin(port) as twin:
        twin.aboard = {TAG_A: -58.0, TAG_B: -60.0}
        if fault == "lost_reads":
            twin.lost_sweep_reads = 1
        else:
            twin.ignore_sweeps = True
        driver, sink = _cabin(port, sweep_timeout_s=0.5)
        driver.start()
        try:
            driver.observe(DriverEvent("bus-12", "run_end", datetime.now(UTC)))
            assert sink.wait_for(lambda s: ("sweep_incomplete", False) in fault_codes(s))
            twin.lost_sweep_reads, twin.ignore_sweeps = 0, False
            driver.request_sweep(datetime.now(UTC))
            assert sink.wait_for(lambda s: len(s.events("sweep_complete")) == 1)
        finally:
            driver.stop()
    # Only the second sweep completed; its success clears the fault.
    [complete] = sink.events("sweep_complete")
    assert complete.data["reads"] == 2
    assert fault_codes(sink) == [("sweep_incomplete", False), ("sweep_incomplete", True)]
    assert "not known to be empty" in sink.faults()[0].data["detail"]


def test_gps_publishes_fixes_with_the_receivers_time(port: PtyPort) -> None:
    fixes: list[Fix | None] = [None]

    def route(_at: datetime) -> Fix | None:
        return fixes[-1]

    settings = GpsReceiverConfig(
        device_id="bus-12-gps", port=port.path, min_interval_s=0.25, retry=FAST_RETRY
    )
    with GpsTwin(port, route, period_s=0.05) as twin:
        driver = GpsDriver(settings)
        sink = Sink()
        driver.attach(sink)
        driver.start()
        try:
            assert sink.wait_for(lambda _: driver.lines >= 4)
            assert sink.events("position") == []  # no fix yet (parked indoors)
            fixes.append(Fix(52.3731, -4.8922, speed_kmh=31.5, heading_deg=270.0, satellites=9))
            assert sink.wait_for(lambda s: len(s.events("position")) >= 2)
            twin.damaged_lines = 6
            assert sink.wait_for(lambda s: ("crc_error", False) in fault_codes(s))
            assert sink.wait_for(lambda s: fault_codes(s)[-1] == ("crc_error", True))
        finally:
            driver.stop()
    positions = sink.events("position")
    first, second = positions[0], positions[1]
    assert first.data["lat"] == pytest.approx(52.3731, abs=1e-6)
    assert first.data["lon"] == pytest.approx(-4.8922, abs=1e-6)
    assert first.data["speed_kmh"] == pytest.approx(31.5, abs=0.02)
    assert first.data["heading_deg"] == 270.0
    assert first.data["satellites"] == 9
    # Stamped with the receiver's UTC time (centiseconds), throttled to min_interval_s.
    assert first.ts.tzinfo is not None
    assert abs((first.ts - datetime.now(UTC)).total_seconds()) < 10
    assert second.ts - first.ts >= timedelta(seconds=0.25)
    assert driver.fixes > len(positions)
    assert_contract_valid(first)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def factory() -> Iterator[Any]:
    factory = MockFactory()
    yield factory
    factory.reset()


def test_ignition_events_are_debounced_and_start_with_the_current_state(factory: Any) -> None:
    clock = _Clock()
    config = IgnitionConfig(device_id="bus-12-ignition", pin=5, debounce_s=1.0, poll_s=0.01)
    driver = IgnitionDriver(config, pin_factory=factory, monotonic=clock)
    sink = Sink()
    driver.attach(sink)
    pin = factory.pin(5)  # pull-up: ignition on pulls the line low
    driver.start()
    try:
        clock.now = 5.0
        assert sink.wait_for(lambda s: len(s.events("ignition")) == 1)
        pin.drive_low()  # cranking: on ...
        sink.wait_for(lambda _: False, 0.3)
        pin.drive_high()  # ... off again within the debounce
        sink.wait_for(lambda _: False, 0.3)
        clock.now = 5.5
        pin.drive_low()
        sink.wait_for(lambda _: False, 0.3)
        assert len(sink.events("ignition")) == 1
        clock.now = 7.0  # held on for 1.5 s
        assert sink.wait_for(lambda s: len(s.events("ignition")) == 2)
        pin.drive_high()
        sink.wait_for(lambda _: False, 0.3)
        clock.now = 9.0
        assert sink.wait_for(lambda s: len(s.events("ignition")) == 3)
    finally:
        driver.stop()
    assert [e.data["on"] for e in sink.events("ignition")] == [False, True, False]
    assert_contract_valid(sink.events("ignition")[1])


def test_walkthrough_button_presses_are_events_and_double_presses_count_once(
    factory: Any,
) -> None:
    clock = _Clock()
    config = WalkthroughButtonConfig(
        device_id="bus-12-check", pin=6, debounce_s=0.05, min_interval_s=3, poll_s=0.005
    )
    driver = WalkthroughButtonDriver(config, pin_factory=factory, monotonic=clock)
    sink = Sink()
    driver.attach(sink)
    pin = factory.pin(6)
    driver.start()
    try:

        def settle() -> None:
            # Let the driver's thread sample the pin before the clock moves on.
            sink.wait_for(lambda _: False, 0.2)

        def press() -> None:
            presses = driver.presses
            pin.drive_low()
            settle()
            clock.now += 0.1
            assert sink.wait_for(lambda _: driver.presses == presses + 1, 5)
            pin.drive_high()
            settle()
            clock.now += 0.1
            settle()

        press()
        clock.now += 1.0
        press()  # a nervous double press
        clock.now += 10.0
        press()
    finally:
        driver.stop()
    checks = sink.events("walkthrough_check")
    assert len(checks) == 2
    assert driver.presses == 3
    assert_contract_valid(checks[0])


def test_a_gpio_that_cannot_be_had_is_a_fault_retried(factory: Any) -> None:
    from gpiozero import DigitalInputDevice

    squatter = DigitalInputDevice(5, pin_factory=factory)
    config = IgnitionConfig(device_id="bus-12-ignition", pin=5, debounce_s=0, retry=FAST_RETRY)
    driver = IgnitionDriver(config, pin_factory=factory)
    sink = Sink()
    driver.attach(sink)
    driver.start()
    try:
        assert sink.wait_for(lambda s: fault_codes(s) == [("bus_error", False)])
        squatter.close()
        assert sink.wait_for(lambda s: ("bus_error", True) in fault_codes(s))
        assert sink.wait_for(lambda s: len(s.events("ignition")) == 1)
    finally:
        driver.stop()
