"""Daily shapes of indoor climate, as pure functions of local time."""

from __future__ import annotations

import math

from iotmon_devices.simulators.environment_config import Co2Profile

_TWO_PI = 2.0 * math.pi
_LUNCH_HOUR = 12.5
_LUNCH_WIDTH_H = 0.75


def hour_of_day(hour: int, minute: int, second: int, microsecond: int = 0) -> float:
    return hour + minute / 60.0 + (second + microsecond / 1e6) / 3600.0


def diurnal(hour: float, peak_hour: float) -> float:
    """+1 at ``peak_hour``, -1 twelve hours later: indoor temperature's daily shape."""
    return math.cos(_TWO_PI * (hour - peak_hour) / 24.0)


def co2_load(hour: float, workday: bool, profile: Co2Profile) -> float:
    """Fraction (0..1) of the occupied CO2 rise present at ``hour``.

    People arrive at office start and CO2 builds up towards a plateau, dips a
    little over lunch, and ventilates away exponentially after they leave.
    Non-workdays stay at the outdoor level.
    """
    if not workday or hour < profile.office_start_hour:
        return 0.0
    if hour < profile.office_end_hour:
        built_up = 1.0 - math.exp(-(hour - profile.office_start_hour) / profile.rise_time_h)
        lunch = profile.lunch_dip * math.exp(-(((hour - _LUNCH_HOUR) / _LUNCH_WIDTH_H) ** 2))
        return built_up * (1.0 - lunch)
    office_h = profile.office_end_hour - profile.office_start_hour
    at_leaving = 1.0 - math.exp(-office_h / profile.rise_time_h)
    return at_leaving * math.exp(-(hour - profile.office_end_hour) / profile.decay_time_h)
