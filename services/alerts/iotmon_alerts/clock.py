"""The alert service's clock: the wall clock, or a simulated one that runs from a set epoch
at a set speed (simulated school days through the live service, demos, incident re-runs).

Everything the service decides reads this one clock: the rules and the bus rules' ticks,
alert and notice times, message age checks and the webhook outbox's retry schedule. Only
what leaves the platform keeps real time: a webhook's signature timestamp (receivers refuse
stale ones) and how long the process waits between rounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
"""What the service calls for "now": aware UTC datetimes that never run backwards."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class SimulatedClock:
    """Reads ``epoch`` at wall time ``starts_at`` and runs ``speed`` times faster from there.

    Anchored once on the monotonic clock, so a wall-clock step (NTP) after the start does
    not move it. Two processes given the same ``epoch``, ``speed`` and ``starts_at`` (a
    test and the service it drives) read the same time.
    """

    def __init__(
        self,
        epoch: datetime,
        speed: float,
        starts_at: datetime | None = None,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if epoch.tzinfo is None:
            raise ValueError("the epoch needs a time zone")
        if speed <= 0:
            raise ValueError("the speed must be positive")
        self.epoch = epoch.astimezone(UTC)
        self.speed = speed
        self._monotonic = monotonic
        wall_now, mono_now = wall(), monotonic()
        start_wall = starts_at.timestamp() if starts_at is not None else wall_now
        self._origin = mono_now - (wall_now - start_wall)
        """The monotonic reading at which the clock reads ``epoch``."""

    def __call__(self) -> datetime:
        return self.at_monotonic(self._monotonic())

    def at_monotonic(self, reading: float) -> datetime:
        """What the clock read (or will read) when ``time.monotonic()`` was ``reading``."""
        return self.epoch + timedelta(seconds=(reading - self._origin) * self.speed)

    def wall_seconds(self, simulated: timedelta) -> float:
        """How long ``simulated`` takes in real time."""
        return simulated.total_seconds() / self.speed

    def __repr__(self) -> str:
        return f"SimulatedClock(epoch={self.epoch.isoformat()}, speed={self.speed:g})"
