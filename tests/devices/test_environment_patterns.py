"""The simulated environment follows realistic daily and weekly patterns."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from statistics import mean

from iotmon_devices import DeviceReading, FaultProfile, SimulatedEnvironmentConfig
from iotmon_devices.simulators.environment import SimulatedEnvironmentDriver

NO_FAULTS = FaultProfile(dropout_rate=0, spike_rate=0, stuck_rate=0)
MONDAY = datetime(2024, 3, 4, tzinfo=UTC)


def _sample(
    config: SimulatedEnvironmentConfig, start: datetime, days: int, step: timedelta
) -> list[DeviceReading]:
    driver = SimulatedEnvironmentDriver(config)
    readings: list[DeviceReading] = []
    now = start
    while now < start + timedelta(days=days):
        readings.extend(driver.read(now))
        now += step
    return readings


def _mean_by_hour(readings: list[DeviceReading], metric: str, utc_offset_h: int = 0) -> list[float]:
    by_hour: dict[int, list[float]] = defaultdict(list)
    for reading in readings:
        if reading.metric == metric:
            by_hour[(reading.ts.hour + utc_offset_h) % 24].append(reading.value)
    return [mean(by_hour[hour]) for hour in range(24)]


def test_temperature_peaks_mid_afternoon_and_humidity_is_inverse() -> None:
    config = SimulatedEnvironmentConfig(count=20, seed=7, faults=NO_FAULTS)
    readings = _sample(config, MONDAY, days=14, step=timedelta(minutes=15))

    temperature = _mean_by_hour(readings, "temperature")
    humidity = _mean_by_hour(readings, "humidity")

    warmest = max(range(24), key=temperature.__getitem__)
    driest = min(range(24), key=humidity.__getitem__)
    assert 14 <= warmest <= 16, temperature
    assert 14 <= driest <= 16, humidity
    # A real daily swing, not noise: about twice the configured amplitude.
    assert max(temperature) - min(temperature) > 1.5 * config.temperature.amplitude_c
    coldest = min(range(24), key=temperature.__getitem__)
    assert coldest in {2, 3, 4}


def test_daily_pattern_follows_the_site_time_zone() -> None:
    # Berlin is UTC+2 in June: a 15:00 local peak is 13:00 UTC.
    config = SimulatedEnvironmentConfig(
        count=10, seed=3, timezone="Europe/Berlin", faults=NO_FAULTS
    )
    readings = _sample(config, datetime(2024, 6, 3, tzinfo=UTC), 7, timedelta(minutes=20))
    temperature_utc = _mean_by_hour(readings, "temperature")
    assert 12 <= max(range(24), key=temperature_utc.__getitem__) <= 14


def test_co2_rises_with_office_occupancy_on_weekdays_only() -> None:
    config = SimulatedEnvironmentConfig(count=20, seed=11, faults=NO_FAULTS)
    readings = _sample(config, MONDAY, days=14, step=timedelta(minutes=15))
    co2 = [r for r in readings if r.metric == "co2"]

    def level(weekdays: set[int], hours: range) -> float:
        return mean(r.value for r in co2 if r.ts.weekday() in weekdays and r.ts.hour in hours)

    outdoor = config.co2.outdoor_ppm
    weekday_office = level({0, 1, 2, 3, 4}, range(10, 17))
    weekend_office = level({5, 6}, range(10, 17))
    weekday_night = level({0, 1, 2, 3, 4}, range(1, 6))
    assert weekday_office > outdoor + 0.7 * config.co2.occupied_rise_ppm
    assert abs(weekend_office - outdoor) < 30
    assert abs(weekday_night - outdoor) < 30
    # Rising as people arrive: early morning < late morning.
    assert level({0, 1, 2, 3, 4}, range(8, 9)) < level({0, 1, 2, 3, 4}, range(10, 12)) - 100


def test_each_device_has_its_own_offset() -> None:
    config = SimulatedEnvironmentConfig(count=30, seed=5, faults=NO_FAULTS)
    readings = _sample(config, MONDAY, days=1, step=timedelta(hours=1))
    per_device: dict[str, list[float]] = defaultdict(list)
    for reading in readings:
        if reading.metric == "temperature":
            per_device[reading.device].append(reading.value)
    daily_means = [mean(values) for values in per_device.values()]
    # Offsets have sd 1 degC: 30 devices spread over well more than the 0.1 degC noise.
    assert max(daily_means) - min(daily_means) > 1.5
    assert len(set(daily_means)) == 30


def test_readings_carry_units_and_resolution() -> None:
    config = SimulatedEnvironmentConfig(count=3, seed=1, faults=NO_FAULTS)
    readings = SimulatedEnvironmentDriver(config).read(MONDAY + timedelta(hours=11))
    assert {(r.metric, r.unit) for r in readings} == {
        ("temperature", "degC"),
        ("humidity", "%"),
        ("co2", "ppm"),
    }
    for reading in readings:
        decimals = {"temperature": 2, "humidity": 1, "co2": 0}[reading.metric]
        assert round(reading.value, decimals) == reading.value
        assert reading.ts == MONDAY + timedelta(hours=11)
