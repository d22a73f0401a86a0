"""Simulated meters of a school: electricity, water and gas through days, nights and weekends.

The load at an instant is a pure function of the profile, the seed and local time:
a base load at night and at weekends, the school day on top (lunch in the kitchen,
water at the breaks, heating warmed up before the pupils arrive and scaled by the
season). A ``leak`` adds a constant flow from its start; a ``tamper`` window leaves the
register still while the building goes on consuming (a magnet on a gas meter, a
bypassed water meter): the signature a cloud-side rule looks for.

``SimulatedMeter`` integrates the load minute by minute from an origin, so its
register is the same at an instant however often it was read.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from iotmon_devices.meters.metrics import Medium
from iotmon_devices.simulators.noise import derive, gaussian, text_key

_MINUTE = timedelta(minutes=1)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchoolCalendar(_Section):
    """When the school is in session."""

    timezone: str = Field("UTC", description="IANA time zone of the school.")
    school_days: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4], description="Weekdays in session, 0 = Monday."
    )
    day_start_hour: float = Field(7.5, ge=0, lt=24, description="Local hour the building opens.")
    day_end_hour: float = Field(16.5, gt=0, le=24, description="Local hour the pupils leave.")
    holidays: list[date] = Field(
        default_factory=list, description="Dates with no school (treated like a weekend)."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SchoolCalendar:
        if self.day_end_hour <= self.day_start_hour:
            raise ValueError("day_end_hour must be after day_start_hour")
        return self


class LoadProfile(_Section):
    """A medium's load in its unit per hour (kW for electricity, m3/h for water and gas)."""

    base: float = Field(
        3.0, ge=0, le=100_000, description="Night and weekend load (fridges, servers, standby)."
    )
    school_day: float = Field(
        25.0, ge=0, le=100_000, description="Extra load while the school is in session."
    )
    peak: float = Field(
        10.0,
        ge=0,
        le=100_000,
        description="Extra load at the peaks: lunch in the kitchen (electricity), the breaks "
        "(water), the morning warm-up (gas).",
    )
    winter_factor: float = Field(
        1.0,
        ge=0,
        le=10,
        description="School-day and peak load in January relative to July (heating: gas > 1).",
    )
    noise_sd: float = Field(
        0.05, ge=0, le=1, description="Relative noise of the load, minute to minute."
    )


class LeakProfile(_Section):
    """A leak: a constant extra flow from ``start`` on (night flow that never stops)."""

    start: AwareDatetime = Field(
        datetime(2100, 1, 1, tzinfo=UTC), description="When the leak starts (with UTC offset)."
    )
    rate: float = Field(0.0, ge=0, le=1000, description="Extra flow, unit per hour.")


class TamperProfile(_Section):
    """A tamper window: the register stands still while consumption goes on."""

    start: AwareDatetime = Field(
        datetime(2100, 1, 1, tzinfo=UTC), description="When the tampering starts."
    )
    end: AwareDatetime = Field(
        datetime(2100, 1, 1, tzinfo=UTC), description="When it ends (the register moves again)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> TamperProfile:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self

    def active(self, at: datetime) -> bool:
        return self.start <= at < self.end


DEFAULT_LOADS = {
    Medium.ELECTRICITY: LoadProfile(base=3.0, school_day=25.0, peak=12.0, winter_factor=1.2),
    Medium.WATER: LoadProfile(base=0.0, school_day=0.4, peak=1.5, winter_factor=1.0),
    Medium.GAS: LoadProfile(base=0.3, school_day=4.0, peak=8.0, winter_factor=3.0),
}


class MeterSimulation(_Section):
    """One simulated meter: a medium's load through the school calendar, leak and tamper."""

    medium: Medium = Field(Medium.ELECTRICITY, description="electricity, water or gas.")
    seed: int = Field(0, ge=0, lt=2**63, description="Same seed, same load at the same time.")
    initial_total: float = Field(
        0.0, ge=0, le=1e12, description="The register when the simulation starts."
    )
    calendar: SchoolCalendar = Field(
        default_factory=SchoolCalendar, description="When the school is in session."
    )
    load: LoadProfile | None = Field(
        None, description="The load; default: a typical school's for the medium."
    )
    leak: LeakProfile = Field(default_factory=LeakProfile, description="A leak (water, gas).")
    tamper: TamperProfile = Field(
        default_factory=TamperProfile, description="A window in which the register stands still."
    )

    def load_profile(self) -> LoadProfile:
        return self.load or DEFAULT_LOADS[self.medium]


def _bump(hour: float, centre: float, width_h: float) -> float:
    return math.exp(-(((hour - centre) / width_h) ** 2))


def _season(day_of_year: int) -> float:
    """1 in mid-January, 0 in mid-July."""
    return 0.5 + 0.5 * math.cos(2.0 * math.pi * (day_of_year - 15) / 365.25)


class SimulatedMeter:
    """A meter following a ``MeterSimulation``: load at an instant, register at an instant."""

    def __init__(self, simulation: MeterSimulation, device: str) -> None:
        self._sim = simulation
        self._profile = simulation.load_profile()
        self._zone = ZoneInfo(simulation.calendar.timezone)
        self._key = derive(simulation.seed, text_key(device))
        self._origin: datetime | None = None
        self._minute = 0
        self._registered = simulation.initial_total
        self._consumed = 0.0

    @property
    def simulation(self) -> MeterSimulation:
        return self._sim

    def in_session(self, at: datetime) -> bool:
        calendar = self._sim.calendar
        local = at.astimezone(self._zone)
        if local.weekday() not in calendar.school_days or local.date() in calendar.holidays:
            return False
        hour = local.hour + local.minute / 60.0
        return calendar.day_start_hour <= hour < calendar.day_end_hour

    def rate(self, at: datetime) -> float:
        """The load at ``at``, unit per hour: what the building uses, registered or not."""
        sim, profile = self._sim, self._profile
        local = at.astimezone(self._zone)
        hour = local.hour + local.minute / 60.0 + local.second / 3600.0
        calendar = sim.calendar
        school_day = (
            local.weekday() in calendar.school_days and local.date() not in calendar.holidays
        )
        season = 1.0 + (profile.winter_factor - 1.0) * _season(local.timetuple().tm_yday)
        load = profile.base
        if school_day:
            start, end = calendar.day_start_hour, calendar.day_end_hour
            if sim.medium is Medium.GAS:
                # Heating warms the building up for two hours before it opens.
                if start - 2.0 <= hour < end:
                    load += profile.school_day * season
                load += profile.peak * season * _bump(hour, start - 1.0, 0.7)
            elif start <= hour < end:
                load += profile.school_day * season
                if sim.medium is Medium.ELECTRICITY:
                    load += profile.peak * season * _bump(hour, 12.0, 0.8)  # kitchen
                else:
                    # Toilets and taps at the morning break, lunch and the end of the day.
                    breaks = _bump(hour, 10.0, 0.25) + _bump(hour, 12.5, 0.4)
                    load += profile.peak * (breaks + _bump(hour, end - 0.1, 0.2))
        if at >= sim.leak.start:
            load += sim.leak.rate
        noise = gaussian(derive(self._key, int(at.timestamp() // 60)))
        return max(0.0, load * (1.0 + profile.noise_sd * noise))

    def total(self, at: datetime) -> float:
        """The register at ``at``: the initial total plus what it registered since the origin."""
        if self._origin is None or at < self._origin + self._minute * _MINUTE:
            self._restart(at)
        origin = self._origin
        assert origin is not None
        while origin + (self._minute + 1) * _MINUTE <= at:
            self._advance(origin + self._minute * _MINUTE, 1.0)
            self._minute += 1
        partial_min = (at - (origin + self._minute * _MINUTE)) / _MINUTE
        start = origin + self._minute * _MINUTE
        registered = self._registered
        if not self._sim.tamper.active(start):
            registered += self.rate(start) * partial_min / 60.0
        return registered

    def consumed(self, at: datetime) -> float:
        """What the building really used since the origin (what a tamper hides)."""
        self.total(at)
        return self._consumed

    def _restart(self, at: datetime) -> None:
        self._origin = at.replace(second=0, microsecond=0)
        self._minute = 0
        self._registered = self._sim.initial_total
        self._consumed = 0.0

    def _advance(self, start: datetime, minutes: float) -> None:
        used = self.rate(start) * minutes / 60.0
        self._consumed += used
        if not self._sim.tamper.active(start):
            self._registered += used
