"""Simulated school meters: day, night and weekend loads, a leak, a tamper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from statistics import mean

import pytest

from iotmon_devices import default_registry
from iotmon_devices.meters.metrics import Medium
from iotmon_devices.simulators.meter_config import SimulatedMeterConfig
from iotmon_devices.simulators.meter_profiles import (
    LeakProfile,
    MeterSimulation,
    SimulatedMeter,
    TamperProfile,
)
from tests.devices.support import Sink

MONDAY = datetime(2026, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _mean_rate(meter: SimulatedMeter, start: datetime, hours: range) -> float:
    return mean(meter.rate(start + h * HOUR + timedelta(minutes=m)) for h in hours for m in (0, 30))


@pytest.mark.parametrize("medium", list(Medium))
def test_school_days_use_more_than_nights_and_weekends(medium: Medium) -> None:
    meter = SimulatedMeter(MeterSimulation(medium=medium, seed=3), "m")
    day = _mean_rate(meter, MONDAY, range(9, 15))
    night = _mean_rate(meter, MONDAY, range(0, 4))
    saturday = _mean_rate(meter, MONDAY + 5 * 24 * HOUR, range(9, 15))
    assert day > 3 * max(night, 0.01)
    assert day > 3 * max(saturday, 0.01)
    if medium is Medium.WATER:
        assert night == 0.0  # no water at night in a school without a leak


def test_gas_heats_more_in_winter_and_warms_up_before_school() -> None:
    meter = SimulatedMeter(MeterSimulation(medium=Medium.GAS, seed=1), "gas")
    july = MONDAY.replace(month=7, day=13)
    assert _mean_rate(meter, MONDAY, range(8, 15)) > 2 * _mean_rate(meter, july, range(8, 15))
    assert _mean_rate(meter, MONDAY, range(6, 7)) > _mean_rate(meter, MONDAY, range(3, 4))


def test_a_leak_shows_as_night_flow() -> None:
    leak = LeakProfile(start=MONDAY + 24 * HOUR, rate=0.12)
    meter = SimulatedMeter(MeterSimulation(medium=Medium.WATER, leak=leak), "w")
    assert _mean_rate(meter, MONDAY, range(1, 4)) == 0.0
    assert _mean_rate(meter, MONDAY + 24 * HOUR, range(1, 4)) == pytest.approx(0.12, rel=0.2)


def test_a_tamper_stops_the_register_while_consumption_goes_on() -> None:
    tamper = TamperProfile(start=MONDAY + 9 * HOUR, end=MONDAY + 12 * HOUR)
    meter = SimulatedMeter(MeterSimulation(medium=Medium.GAS, tamper=tamper), "g")
    before = meter.total(MONDAY + 9 * HOUR)
    during = meter.total(MONDAY + 12 * HOUR)
    after = meter.total(MONDAY + 14 * HOUR)
    assert during == pytest.approx(before)
    assert after > during
    # What the building used since the first read is more than the register shows.
    registered = after - before
    assert meter.consumed(MONDAY + 14 * HOUR) > registered + 5


def test_the_register_is_the_same_however_often_it_is_read() -> None:
    simulation = MeterSimulation(medium=Medium.ELECTRICITY, seed=9, initial_total=5000)
    often, once = SimulatedMeter(simulation, "e"), SimulatedMeter(simulation, "e")
    at = MONDAY
    for _ in range(96):
        often.total(at)
        at += timedelta(minutes=15)
    often.total(at)
    once.total(MONDAY)
    assert often.total(at) == pytest.approx(once.total(at))
    assert once.total(at) > 5000


def test_simulated_meter_driver_publishes_totals_and_intervals() -> None:
    config = SimulatedMeterConfig(
        device_id="water-main", simulation=MeterSimulation(medium=Medium.WATER, initial_total=10)
    )
    driver = default_registry().create(config)
    sink = Sink()
    driver.attach(sink)
    first = driver.read(MONDAY + 10 * HOUR)
    second = driver.read(MONDAY + 11 * HOUR)
    assert [r.metric for r in first] == ["water_m3_total"]
    by_metric = {r.metric: r for r in second}
    assert by_metric["water_m3"].value > 0
    assert by_metric["water_m3"].unit == "m3"
    assert by_metric["water_m3_total"].value > 10
    assert sink.items == []
