"""The demo's clock: a simulated day that starts in the past and runs faster than real time.

Devices, meters and buses read it; the alert service runs on the same epoch and speed
(``iotmon_alerts.clock.SimulatedClock`` with the same ``starts_at``), so a bus's run end
and the alert service's "ten minutes later" agree. It never reads later than the wall
clock: once the simulated day catches up with now it goes on in real time, so nothing
the devices send is stamped in the future (ingest and the alert service refuse that).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from iotmon_alerts.clock import SimulatedClock

DAY_START = timedelta(hours=6, minutes=20)
"""Ten minutes before the first bus leaves the depot: every layer has something at once."""


def last_school_day(today: date) -> date:
    """The latest weekday before ``today``: the whole simulated day lies in the past."""
    day = today - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


class DemoClock:
    """A ``SimulatedClock`` capped at the wall clock."""

    def __init__(
        self,
        epoch: datetime,
        speed: float,
        starts_at: datetime,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._simulated = SimulatedClock(epoch, speed, starts_at, wall=wall, monotonic=monotonic)
        self._wall = wall
        self.starts_at = starts_at

    @classmethod
    def for_day(cls, speed: float, now: datetime | None = None) -> DemoClock:
        """The last school day from ``DAY_START``, starting now."""
        started = now or datetime.now(UTC)
        day = last_school_day(started.date())
        epoch = datetime(day.year, day.month, day.day, tzinfo=UTC) + DAY_START
        return cls(epoch, speed, started)

    @property
    def epoch(self) -> datetime:
        return self._simulated.epoch

    @property
    def speed(self) -> float:
        return self._simulated.speed

    def __call__(self) -> datetime:
        wall = datetime.fromtimestamp(self._wall(), UTC)
        return min(self._simulated(), wall)
