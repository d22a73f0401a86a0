"""Settings of the school-bus fleet simulator: the fleet's size and the fault rates.

Ranges are drawn per bus and day (one day's reader misses more than another's); single
rates are per run, per passage or per report, as each field says.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iotmon_contract.topics import IDENTIFIER_PATTERN

Rate = Annotated[float, Field(ge=0, le=1)]


class RateRange(BaseModel):
    """A rate drawn uniformly from [low, high] for each bus and day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: Rate = Field(default=0.0, description="Lowest rate.")
    high: Rate = Field(default=0.0, description="Highest rate.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


def _range(low: float, high: float) -> RateRange:
    return RateRange(low=low, high=high)


class FaultRates(BaseModel):
    """How often things go wrong; the defaults are the issue's realistic rates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    door_miss: RateRange = Field(
        default=_range(0.01, 0.06), description="Door passages the reader misses."
    )
    door_duplicate: RateRange = Field(
        default=_range(0.05, 0.20), description="Door passages read 2 to 4 times."
    )
    sweep_miss: RateRange = Field(
        default=_range(0.02, 0.10), description="Tags in the cabin a sweep misses."
    )
    walkthrough_late: RateRange = Field(
        default=_range(0.02, 0.05), description="Runs whose driver presses the check 5-25 min late."
    )
    walkthrough_never: RateRange = Field(
        default=_range(0.01, 0.03), description="Runs whose driver never presses the check."
    )
    reminder_response: Rate = Field(
        default=0.7,
        description="Chance a late or forgetful driver presses the check soon after the "
        "operator's reminder (3 min after the run end); 0 leaves the reminder unanswered.",
    )
    asleep: Rate = Field(default=0.01, description="Runs in which a child falls asleep aboard.")
    driver_finds_child: Rate = Field(
        default=0.98, description="Chance a driver walking through finds a sleeping child."
    )
    no_badge: Rate = Field(
        default=0.003, description="Child rides without the tag (boards unread, unsweepable)."
    )
    absent: Rate = Field(default=0.05, description="Child-days a child does not ride.")
    wrong_bus: Rate = Field(
        default=0.005, description="Afternoon rides on another bus of the same school."
    )
    direction_unknown: Rate = Field(default=0.05, description="Door reads that carry no direction.")
    unknown_rider: Rate = Field(
        default=0.02, description="Runs with a visitor's unregistered tag riding along."
    )
    unknown_left: Rate = Field(
        default=0.003, description="Runs where an unregistered tag is left lying in the bus."
    )
    lost_tag: Rate = Field(
        default=0.002, description="Runs where a child's tag falls off and stays in the bus."
    )
    reader_outage_mid_run: Rate = Field(
        default=0.03, description="Runs with a door reader or scanner outage mid-run."
    )
    reader_outage_at_end: Rate = Field(
        default=0.02, description="Runs with a door reader or scanner down at the run end."
    )
    gps_dropout: Rate = Field(default=0.10, description="Runs with a 1-5 min GPS dropout.")
    link_outage: Rate = Field(
        default=0.04, description="Runs with a 2-15 min edge link outage (backlog replayed)."
    )
    redelivery: Rate = Field(default=0.005, description="Messages the broker delivers twice.")
    door_crosstalk: Rate = Field(
        default=0.03,
        description="Passages at school also heard (weakly) by the next bus's door reader.",
    )
    depot_stray_read: Rate = Field(
        default=0.10, description="Sweeps that weakly hear the depot's box of spare tags."
    )
    presence_hidden: Rate = Field(
        default=0.05, description="Children aboard a camera/radar cannot see (under a seat)."
    )
    presence_false_positive: Rate = Field(
        default=0.001, description="Camera/radar reports that count a person who is not there."
    )
    clock_skew_s: float = Field(
        default=5.0, ge=0, le=60, description="Device clocks are off by up to this, per day."
    )


class SchoolBusSimConfig(BaseModel):
    """A simulated fleet and the school days it drives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=0, ge=0, description="Same seed, same fleet, same events.")
    days: int = Field(default=5, ge=1, le=2000, description="School days (weekdays) to drive.")
    buses: int | None = Field(
        default=None, ge=1, le=50, description="Buses; default: 2 to 6, drawn from the seed."
    )
    start: dt.date = Field(
        default=dt.date(2026, 9, 7), description="First day (weekends are skipped)."
    )
    tenant: str = Field(default="demo", pattern=IDENTIFIER_PATTERN, description="Tenant id.")
    presence_sensors: bool = Field(
        default=True, description="Buses carry a cabin camera or presence radar."
    )
    faults: FaultRates = Field(default_factory=FaultRates, description="Fault rates.")
