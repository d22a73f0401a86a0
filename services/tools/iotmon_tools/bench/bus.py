"""``iotmon bench bus``: the safety core replayed over hundreds of simulated bus-days.

Simulated fleets (2 to 6 buses each, a seed per fleet) drive school days; their events
go through ``iotmon bus replay``'s code path under several rule settings, and each
replay is scored against the simulator's ground truth. The scenarios separate what the
guardian delay, the camera/radar second sensor and the operator's reminder each buy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from iotmon_alerts.bus import BusRules, Fleet, FleetDocument
from iotmon_alerts.bus.replay import ReplayItem, read_items, replay
from iotmon_devices.simulators.school_bus import (
    FaultRates,
    SchoolBusSimConfig,
    TruthRun,
    simulate,
)
from iotmon_tools.bench.bus_score import Score, score


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    guardian_delay_min: float
    presence: bool
    """Buses carry a cabin camera or presence radar."""
    reminder: bool
    """Late drivers answer the operator's reminder (70 % of them)."""
    asleep: float = 0.01


SCENARIOS = (
    Scenario("delay 5 min", 5, presence=False, reminder=False),
    Scenario("delay 10 min", 10, presence=False, reminder=False),
    Scenario("delay 15 min", 15, presence=False, reminder=False),
    Scenario("delay 10 + reminder", 10, presence=False, reminder=True),
    Scenario("delay 10 + sensor", 10, presence=True, reminder=False),
    Scenario("delay 10 + sensor + reminder (design)", 10, presence=True, reminder=True),
    Scenario("delay 5 + sensor + reminder", 5, presence=True, reminder=True),
)
STRESS = Scenario("design, 20 % of runs with a child asleep", 10, True, True, asleep=0.2)


@dataclass(frozen=True, slots=True)
class BusBenchOptions:
    bus_days: int = 200
    """At least this many bus-days per scenario (whole fleets of ``days`` days)."""
    days: int = 20
    seed: int = 1
    stress: bool = True


@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    score: Score
    events: int = 0
    replay_s: float = 0.0


@dataclass(slots=True)
class BusBenchResult:
    options: BusBenchOptions
    fleets: list[tuple[int, int]] = field(default_factory=list)
    """(seed, buses) of each simulated fleet."""
    results: list[ScenarioResult] = field(default_factory=list)
    simulate_s: float = 0.0


@dataclass(slots=True)
class _Fleet:
    fleet: Fleet
    items: list[ReplayItem]
    runs: list[TruthRun]


def _simulate(seed: int, scenario: Scenario, days: int) -> _Fleet:
    faults = FaultRates(asleep=scenario.asleep, reminder_response=0.7 if scenario.reminder else 0)
    config = SchoolBusSimConfig(
        seed=seed, days=days, presence_sensors=scenario.presence, faults=faults
    )
    sim = simulate(config)
    fleet = Fleet.from_document(FleetDocument.model_validate(sim.world.document()))
    items, errors = read_items(json.dumps(line.data) for line in sim.lines)
    if errors:
        raise RuntimeError(f"the simulator wrote lines the replay refuses: {errors[:3]}")
    return _Fleet(fleet, items, sim.runs)


def _seeds(options: BusBenchOptions) -> list[tuple[int, int]]:
    """Fleets until the bus-days reach the target: (seed, buses)."""
    from iotmon_devices.simulators.school_bus import build_world

    fleets = []
    total = 0
    seed = options.seed
    while total < options.bus_days:
        buses = len(build_world(SchoolBusSimConfig(seed=seed)).buses)
        fleets.append((seed, buses))
        total += buses * options.days
        seed += 1
    return fleets


def run_bus_benchmark(
    options: BusBenchOptions, progress: Callable[[str], None] = lambda _: None
) -> BusBenchResult:
    result = BusBenchResult(options, fleets=_seeds(options))
    scenarios = [*SCENARIOS, *([STRESS] if options.stress else [])]
    simulated: dict[tuple[bool, bool, float], list[_Fleet]] = {}
    for scenario in scenarios:
        variant = (scenario.presence, scenario.reminder, scenario.asleep)
        if variant not in simulated:
            started = time.perf_counter()
            simulated[variant] = [
                _simulate(seed, scenario, options.days) for seed, _ in result.fleets
            ]
            result.simulate_s += time.perf_counter() - started
        rules = BusRules(guardian_delay_s=scenario.guardian_delay_min * 60)
        outcome = ScenarioResult(scenario, Score())
        for fleet in simulated[variant]:
            started = time.perf_counter()
            replayed = replay(fleet.fleet, rules, fleet.items)
            outcome.replay_s += time.perf_counter() - started
            outcome.events += len(fleet.items)
            if replayed.errors:
                raise RuntimeError(f"the replay refused lines: {replayed.errors[:3]}")
            outcome.score.merge(
                score(fleet.fleet, fleet.runs, replayed.notifications, rules.sweep_inside_rssi_dbm)
            )
        result.results.append(outcome)
        s = outcome.score
        progress(
            f"{scenario.name}: {s.bus_days} bus-days, {s.runs} runs, "
            f"guardians woken for nothing in {100 * s.false_guardian_share:.2f} % of runs, "
            f"missed {s.missed} of {s.with_evidence} with evidence"
        )
    return result
