"""A simulated school-bus fleet: buses through school days, publishing the contract's
events (door and cabin reads, ignition, GPS, run ends, walk-through checks, occupancy,
availability) with realistic faults, plus the ground truth to score decisions against.

Deterministic per seed; a day's events do not depend on the days before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from iotmon_devices.simulators.school_bus.config import (
    FaultRates,
    RateRange,
    SchoolBusSimConfig,
)
from iotmon_devices.simulators.school_bus.day import simulate_day
from iotmon_devices.simulators.school_bus.delivery import Delivery, Line, iso
from iotmon_devices.simulators.school_bus.truth import (
    TRUTH_VERSION,
    LeftAboard,
    TruthPassage,
    TruthRun,
)
from iotmon_devices.simulators.school_bus.world import World, build_world


def school_days(start: dt.date, count: int) -> Iterator[dt.date]:
    day = start
    while count:
        if day.weekday() < 5:
            yield day
            count -= 1
        day += dt.timedelta(days=1)


@dataclass(slots=True)
class Simulation:
    world: World
    lines: list[Line] = field(default_factory=list)
    runs: list[TruthRun] = field(default_factory=list)

    @property
    def bus_days(self) -> int:
        return len({(run.bus, run.day) for run in self.runs})


def simulate(config: SchoolBusSimConfig) -> Simulation:
    """Drive the fleet of ``config.seed`` through ``config.days`` school days."""
    world = build_world(config)
    delivery = Delivery(world, config)
    result = Simulation(world)
    for day in school_days(config.start, config.days):
        outcome = simulate_day(world, config, day)
        result.lines.extend(delivery.deliver(day, outcome.emits, outcome.link_outages))
        result.runs.extend(outcome.runs)
    return result


__all__ = [
    "TRUTH_VERSION",
    "FaultRates",
    "LeftAboard",
    "Line",
    "RateRange",
    "SchoolBusSimConfig",
    "Simulation",
    "TruthPassage",
    "TruthRun",
    "World",
    "build_world",
    "iso",
    "school_days",
    "simulate",
]
