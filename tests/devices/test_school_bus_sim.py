"""The school-bus simulator: deterministic per seed, contract events only, a fleet the
safety core loads, and faults at the rates it is configured with."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import statistics
from collections import Counter, defaultdict

import pytest
import yaml

from iotmon_alerts.bus import parse_fleet
from iotmon_alerts.bus.replay import read_items
from iotmon_devices.simulators.school_bus import (
    FaultRates,
    SchoolBusSimConfig,
    Simulation,
    build_world,
    simulate,
)


def _lines(sim: Simulation) -> list[str]:
    return [json.dumps(line.data) for line in sim.lines]


@pytest.fixture(scope="module")
def month() -> Simulation:
    return simulate(SchoolBusSimConfig(seed=11, days=20, faults=FaultRates(asleep=0.2)))


def test_the_same_seed_gives_the_same_days_and_another_seed_others() -> None:
    one = simulate(SchoolBusSimConfig(seed=4, days=2))
    assert _lines(one) == _lines(simulate(SchoolBusSimConfig(seed=4, days=2)))
    assert _lines(one) != _lines(simulate(SchoolBusSimConfig(seed=5, days=2)))
    first_day = simulate(SchoolBusSimConfig(seed=4, days=1))
    assert _lines(one)[: len(first_day.lines)] == _lines(first_day)


def test_every_line_is_a_contract_event_the_replay_reads(month: Simulation) -> None:
    items, errors = read_items(_lines(month))
    assert errors == []
    assert len(items) == len(month.lines)
    types = Counter(type(item.event.payload).__name__ for item in items if item.event is not None)
    for name in ("TagReadEvent", "SweepReadEvent", "SweepCompleteEvent", "IgnitionEvent",
                 "PositionEvent", "RunStartEvent", "RunEndEvent", "WalkthroughCheckEvent",
                 "OccupancyEvent", "DeviceState"):  # fmt: skip
        assert types[name] > 0, name


def test_the_fleet_file_loads_into_the_safety_core(month: Simulation) -> None:
    fleet = parse_fleet(yaml.safe_dump(month.world.document()), source="fleet.yaml")
    assert set(fleet.buses) == {bus.id for bus in month.world.buses}
    assert len(fleet.tags) == len(month.world.children)


@pytest.mark.parametrize("seed", range(8))
def test_fleets_have_the_sizes_asked_for(seed: int) -> None:
    world = build_world(SchoolBusSimConfig(seed=seed))
    assert 2 <= len(world.buses) <= 6
    for bus in world.buses:
        assert 5 <= len(bus.stops) <= 15
        assert 10 <= len(world.riders(bus.id)) <= 40
    children_of = [set(g.children) for g in world.guardians]
    assert any(len(kids) >= 2 for kids in children_of)  # siblings share guardians
    assert len({bus.presence for bus in world.buses}) == len(world.buses)


def test_some_guardian_has_children_of_two_families() -> None:
    families = []
    for seed in range(8):
        world = build_world(SchoolBusSimConfig(seed=seed))
        family = {c.id: c.family for c in world.children}
        families.append(any(len({family[c] for c in g.children}) > 1 for g in world.guardians))
    assert any(families)


def test_faults_come_at_their_configured_rates(month: Simulation) -> None:
    passages = [p for run in month.runs for p in run.passages if p.tag is not None]
    outages = {run.bus for run in month.runs if run.reader_outage_mid or run.reader_outage_end}
    clean = [p for p, run in ((p, r) for r in month.runs for p in r.passages)
             if p.tag is not None and run.bus not in outages]  # fmt: skip
    missed = sum(1 for p in clean if not p.read) / len(clean)
    assert 0.01 <= missed <= 0.06
    reads = sum(1 for line in month.lines if line.data.get("event", {}).get("type") == "tag_read")
    read_passages = sum(1 for p in passages if p.read)
    assert 1.05 <= reads / read_passages <= 1.6  # 5 to 20 % read 2 to 4 times, and crosstalk
    drivers = Counter(run.driver for run in month.runs)
    assert drivers["prompt"] / len(month.runs) > 0.85
    assert any(run.link_outage for run in month.runs)
    assert any(run.gps_dropout for run in month.runs)
    left = [item for run in month.runs for item in run.children_aboard]
    assert left  # 20 % of these runs have a child asleep
    assert all(item.found_at is not None for item in left)


def test_positions_every_15_s_and_clocks_within_5_s(month: Simulation) -> None:
    by_device: dict[str, list[dt.datetime]] = defaultdict(list)
    offsets = []
    for line in month.lines:
        event = line.data.get("event")
        if event is None:
            continue
        ts = dt.datetime.fromisoformat(event["ts"])
        arrived = dt.datetime.fromisoformat(line.data["at"])
        offsets.append((arrived - ts).total_seconds())
        if event["type"] == "position" and event.get("speed_kmh", 0) > 0:
            by_device[line.data["device"]].append(ts)
    gaps = [
        (b - a).total_seconds()
        for stamps in by_device.values()
        for a, b in itertools.pairwise(stamps)
    ]
    assert statistics.median(gaps) == pytest.approx(15.0, abs=0.01)
    # skew ±5 s plus up to 1.5 s of network; anything later came through a backlog
    on_time = [o for o in offsets if o <= 6.5]
    assert min(on_time) >= -5.0
    assert len(on_time) / len(offsets) > 0.95
    late = [o for o in offsets if o >= 60]
    assert late  # the backlogs of edge link outages


def test_backlogs_arrive_out_of_order_across_devices(month: Simulation) -> None:
    """After an outage one device's backlog arrives before another's older events."""
    newest: dict[str, dt.datetime] = {}
    crossed = 0
    for line in month.lines:
        event = line.data.get("event")
        if event is None:
            continue
        ts = dt.datetime.fromisoformat(event["ts"])
        device = line.data["device"]
        bus = device.rsplit("-", 1)[0]
        seen = [t for d, t in newest.items() if d.startswith(bus + "-") and d != device]
        if seen and ts < max(seen) - dt.timedelta(seconds=60):
            crossed += 1
        newest[device] = max(ts, newest.get(device, ts))
    assert crossed > 0
