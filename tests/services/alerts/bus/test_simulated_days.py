"""Simulated school days through the replay: notices reach only the right guardians, and
(slow) over 200 bus-days no child with door or sweep evidence is missed."""

from __future__ import annotations

import json

import pytest

from iotmon_alerts.bus import (
    BusRules,
    Fleet,
    FleetDocument,
    Notification,
    NotificationKind,
    RecipientRole,
)
from iotmon_alerts.bus.replay import read_items, replay
from iotmon_devices.simulators.school_bus import FaultRates, SchoolBusSimConfig, simulate
from iotmon_tools.bench.bus_score import Score, score

CHILD_KINDS = (
    NotificationKind.BOARDED,
    NotificationKind.ALIGHTED,
    NotificationKind.CHILD_LEFT_ABOARD,
)


def _replayed(seed: int, days: int, asleep: float) -> tuple[Fleet, Score, list[Notification]]:
    sim = simulate(SchoolBusSimConfig(seed=seed, days=days, faults=FaultRates(asleep=asleep)))
    fleet = Fleet.from_document(FleetDocument.model_validate(sim.world.document()))
    items, errors = read_items(json.dumps(line.data) for line in sim.lines)
    assert errors == []
    rules = BusRules()
    result = replay(fleet, rules, items)
    assert result.errors == []
    scored = score(fleet, sim.runs, result.notifications, rules.sweep_inside_rssi_dbm)
    return fleet, scored, result.notifications


def test_every_notice_of_simulated_days_goes_to_that_childs_guardians_only() -> None:
    fleet, scored, notifications = _replayed(seed=2, days=5, asleep=0.2)
    told = 0
    for n in notifications:
        guardians = {r.id for r in n.recipients if r.role is RecipientRole.GUARDIAN}
        if n.kind in CHILD_KINDS and n.child_tag in fleet.tags:
            allowed = set(fleet.tags[n.child_tag].guardians)
            assert guardians <= allowed
            if n.kind is not NotificationKind.CHILD_LEFT_ABOARD:
                assert guardians == allowed
            told += bool(guardians)
        else:
            assert guardians == set(), n
    assert told > 100
    assert scored.privacy_violations == 0


@pytest.mark.slow
def test_200_bus_days_miss_no_child_with_evidence() -> None:
    """A child asleep in 20 % of runs, every fault at its realistic rate."""
    total = Score()
    seed = 1
    while total.bus_days < 200:
        _, scored, _ = _replayed(seed=seed, days=20, asleep=0.2)
        total.merge(scored)
        seed += 1
    assert total.with_evidence > 100
    assert total.missed == 0
    assert total.alerted + total.off_before_decision == total.with_evidence
    assert total.privacy_violations == 0
    assert max(total.decision_delays) <= 60
    assert max(total.notice_delays) <= 60
