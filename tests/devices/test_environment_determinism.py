"""Same seed and time, same readings; every reading is valid under the contract."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_devices import FaultProfile, SimulatedEnvironmentConfig
from iotmon_devices.simulators.environment import SimulatedEnvironmentDriver

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
rates = st.floats(min_value=0, max_value=1)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    count=st.integers(min_value=1, max_value=20),
    times=st.lists(instants, min_size=1, max_size=5),
)
def test_same_seed_and_time_give_the_same_readings_in_any_order(
    seed: int, count: int, times: list[datetime]
) -> None:
    faults = FaultProfile(dropout_rate=0.1, spike_rate=0.1, stuck_rate=0.1)
    config = SimulatedEnvironmentConfig(count=count, seed=seed, faults=faults)
    forward = SimulatedEnvironmentDriver(config)
    backward = SimulatedEnvironmentDriver(config)
    first = [forward.read(now) for now in times]
    second = [backward.read(now) for now in reversed(times)]
    assert first == list(reversed(second))


def test_different_seeds_give_different_readings() -> None:
    now = datetime(2024, 5, 6, 12, tzinfo=UTC)
    a = SimulatedEnvironmentDriver(SimulatedEnvironmentConfig(count=5, seed=1)).read(now)
    b = SimulatedEnvironmentDriver(SimulatedEnvironmentConfig(count=5, seed=2)).read(now)
    assert [r.value for r in a] != [r.value for r in b]


def test_timestamps_a_millisecond_apart_give_independent_noise() -> None:
    driver = SimulatedEnvironmentDriver(SimulatedEnvironmentConfig(count=5, seed=1))
    now = datetime(2024, 5, 6, 12, tzinfo=UTC)
    a = driver.read(now)
    b = driver.read(now + timedelta(milliseconds=1))
    assert [r.value for r in a] != [r.value for r in b]


@settings(max_examples=60, deadline=None)
@given(
    now=instants,
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    dropout=rates,
    spike=rates,
    stuck=rates,
    prefix=st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,40}", fullmatch=True),
)
def test_every_reading_is_a_valid_contract_reading(
    now: datetime, seed: int, dropout: float, spike: float, stuck: float, prefix: str
) -> None:
    faults = FaultProfile(dropout_rate=dropout, spike_rate=spike, stuck_rate=stuck)
    config = SimulatedEnvironmentConfig(count=5, seed=seed, id_prefix=prefix, faults=faults)
    driver = SimulatedEnvironmentDriver(config)
    assert all(re.match(IDENTIFIER_PATTERN, device) for device in driver.device_ids)
    for reading in driver.read(now):
        # Constructing the contract models validates id, metric, finiteness, unit.
        assert reading.to_reading().device == reading.device
        assert reading.to_single(seq=0).value == reading.value
        if reading.metric == "humidity":
            assert 0 <= reading.value <= 100
        else:
            assert reading.value >= 0 or reading.metric == "temperature"
