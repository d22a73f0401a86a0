"""The service's simulated clock and its settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from iotmon_alerts.clock import SimulatedClock
from iotmon_alerts.config import AlertsSettings
from iotmon_runtime.settings import SettingsError

EPOCH = datetime(2026, 9, 7, 6, 30, tzinfo=UTC)


class _Time:
    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 50.0

    def step(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def test_the_simulated_clock_runs_speed_times_faster_from_its_epoch() -> None:
    t = _Time()
    starts_at = datetime.fromtimestamp(t.wall + 2, UTC)
    clock = SimulatedClock(EPOCH, 60, starts_at, wall=lambda: t.wall, monotonic=lambda: t.mono)
    assert clock() == EPOCH - timedelta(minutes=2)  # 2 s before it starts
    t.step(2)
    assert clock() == EPOCH
    t.step(1.5)
    assert clock() == EPOCH + timedelta(seconds=90)
    assert clock.wall_seconds(timedelta(minutes=3)) == 3.0
    # a wall-clock step (NTP) does not move it; the monotonic clock does
    t.wall -= 3600
    assert clock() == EPOCH + timedelta(seconds=90)


def test_without_a_start_it_reads_its_epoch_when_made() -> None:
    t = _Time()
    clock = SimulatedClock(EPOCH, 10, wall=lambda: t.wall, monotonic=lambda: t.mono)
    assert clock() == EPOCH
    t.step(0.5)
    assert clock() == EPOCH + timedelta(seconds=5)
    with pytest.raises(ValueError, match="time zone"):
        SimulatedClock(EPOCH.replace(tzinfo=None), 10)


def test_clock_settings_come_from_the_environment_and_are_refused_in_prod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert AlertsSettings.from_environment().clock is None
    monkeypatch.setenv("IOTMON_ALERTS_CLOCK__EPOCH", "2026-09-07T06:30:00Z")
    monkeypatch.setenv("IOTMON_ALERTS_CLOCK__SPEED", "120")
    settings = AlertsSettings.from_environment()
    assert settings.clock is not None
    assert (settings.clock.epoch, settings.clock.speed) == (EPOCH, 120)
    monkeypatch.setenv("IOTMON_ALERTS_CLOCK__SPEED", "0")
    with pytest.raises(SettingsError, match="SPEED"):
        AlertsSettings.from_environment()
    monkeypatch.setenv("IOTMON_ALERTS_CLOCK__SPEED", "120")
    monkeypatch.setenv("IOTMON_ALERTS_ENVIRONMENT", "prod")
    with pytest.raises(SettingsError, match="simulated clock is refused"):
        AlertsSettings.from_environment()
