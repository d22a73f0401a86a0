"""Fault injection: dropouts, spikes and stuck values at their configured rates."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from random import Random

from iotmon_devices import FaultProfile, SimulatedEnvironmentConfig
from iotmon_devices.simulators.environment import SimulatedEnvironmentDriver

START = datetime(2024, 1, 1, tzinfo=UTC)


def _random_times(count: int, seed: int) -> list[datetime]:
    rng = Random(seed)
    return [START + timedelta(seconds=rng.randrange(0, 60 * 86400)) for _ in range(count)]


def test_dropout_rate_within_tolerance() -> None:
    faults = FaultProfile(dropout_rate=0.05, spike_rate=0, stuck_rate=0)
    driver = SimulatedEnvironmentDriver(
        SimulatedEnvironmentConfig(count=250, seed=1, faults=faults)
    )
    cycles = 0
    missing = 0
    for now in _random_times(200, seed=1):
        readings = driver.read(now)
        reported = {r.device for r in readings}
        cycles += 250
        missing += 250 - len(reported)
        # A dropout is the whole device missing, never a partial reading.
        assert len(readings) == 3 * len(reported)
    # 50 000 device-cycles: the binomial sd of the rate is 0.001.
    assert abs(missing / cycles - 0.05) < 0.005


def test_spike_rate_within_tolerance() -> None:
    faults = FaultProfile(dropout_rate=0, spike_rate=0.02, stuck_rate=0)
    config = SimulatedEnvironmentConfig(count=250, seed=2, faults=faults)
    driver = SimulatedEnvironmentDriver(config)
    counts = {"temperature": 0, "co2": 0}
    spikes = {"temperature": 0, "co2": 0}
    for now in _random_times(200, seed=2):
        for reading in driver.read(now):
            if reading.metric == "temperature":
                counts["temperature"] += 1
                # Normal: 21 +/- 2.5 (daily) +/- offsets (sd 1); a spike is +/- 25.
                spikes["temperature"] += abs(reading.value - config.temperature.mean_c) > 12
            elif reading.metric == "co2":
                counts["co2"] += 1
                # Normal stays under ~1400 ppm; a spike adds 3000.
                spikes["co2"] += reading.value > 2500
    for metric in counts:
        assert abs(spikes[metric] / counts[metric] - 0.02) < 0.004, metric


def test_stuck_rate_within_tolerance() -> None:
    faults = FaultProfile(dropout_rate=0, spike_rate=0, stuck_rate=0.05, stuck_duration_s=600)
    driver = SimulatedEnvironmentDriver(SimulatedEnvironmentConfig(count=40, seed=3, faults=faults))
    series: dict[tuple[str, str], list[float]] = defaultdict(list)
    now = START
    for _ in range(1440):  # one day at one reading a minute: 10 readings per stuck window
        for reading in driver.read(now):
            series[reading.device, reading.metric].append(reading.value)
        now += timedelta(minutes=1)

    total = 0
    stuck = 0
    for values in series.values():
        total += len(values)
        run = 1
        for previous, value in pairwise(values):
            if value == previous:
                run += 1
                continue
            stuck += run if run >= 5 else 0
            run = 1
        stuck += run if run >= 5 else 0
    # 17 280 windows: the sd of the stuck fraction is about 0.002.
    assert abs(stuck / total - 0.05) < 0.01


def test_no_faults_means_every_device_reports_every_cycle() -> None:
    faults = FaultProfile(dropout_rate=0, spike_rate=0, stuck_rate=0)
    driver = SimulatedEnvironmentDriver(
        SimulatedEnvironmentConfig(count=100, seed=4, faults=faults)
    )
    for now in _random_times(20, seed=4):
        assert len(driver.read(now)) == 300
