"""Tiered evidence at the run end: seen (sweep inside this bus, or a camera/radar's person)
goes to everybody at once and repeats; counted-only asks the driver and operator for a
walk-through, reminds, and escalates to school and guardians; and what clears each."""

from __future__ import annotations

import itertools

import pytest

from iotmon_alerts.bus import BusRules, Evidence, NotificationKind, NotificationState, Reason
from iotmon_contract.alerts import AlertSeverity
from tests.utils.bus import GUARDIANS, Day, guardians, roles, seconds_after

LEFT = NotificationKind.CHILD_LEFT_ABOARD
FIRING = NotificationState.FIRING
ESCALATED = NotificationState.ESCALATED
RESOLVED = NotificationState.RESOLVED
END = 1800.0


def _cid_not_read_off(day: Day, **kw: object) -> None:
    day.morning(alighting=["TAG-ANN", "TAG-BEN"], **kw)  # type: ignore[arg-type]


def test_seen_by_the_sweep_goes_to_everybody_at_once() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"], sweep=[("TAG-CID", -55.0)])
    notes = day.run(tail_s=300)
    (alert,) = notes.of(LEFT, "TAG-CID", FIRING)
    assert alert.evidence is Evidence.SEEN
    assert alert.severity is AlertSeverity.CRITICAL
    assert roles(alert) == {"driver", "operator", "school", "guardian"}
    assert guardians(alert) == GUARDIANS["TAG-CID"]
    assert seconds_after(alert, END) <= 60


def test_seen_repeats_every_ten_minutes_until_resolved() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"], sweep=[("TAG-CID", -55.0)])
    day.door(END + 1900, "bus-1", "TAG-CID", "out")  # taken off after 31 min
    notes = day.run()
    steps = [(n.state, n.reason) for n in notes.of(LEFT, "TAG-CID")]
    assert steps == [
        (FIRING, Reason.RUN_END),
        (ESCALATED, Reason.REPEAT),
        (ESCALATED, Reason.REPEAT),
        (ESCALATED, Reason.REPEAT),
        (RESOLVED, Reason.DOOR_READ_AFTER_END),
    ]
    times = [seconds_after(n, END) for n in notes.of(LEFT, "TAG-CID")]
    gaps = [b - a for a, b in itertools.pairwise(times[:4])]
    assert all(599 <= gap <= 601 for gap in gaps), gaps  # ticks fall on whole seconds
    assert len({n.fingerprint for n in notes.of(LEFT, "TAG-CID")}) == 1
    assert guardians(notes.of(LEFT, "TAG-CID")[-1]) == GUARDIANS["TAG-CID"]


def test_counted_only_asks_the_crew_reminds_then_escalates_to_school_and_guardians() -> None:
    day = Day()
    _cid_not_read_off(day)
    notes = day.run(tail_s=900)
    first, reminder, escalation, *_ = notes.of(LEFT, "TAG-CID")
    assert (first.state, first.evidence) == (FIRING, Evidence.COUNTED)
    assert first.severity is AlertSeverity.CRITICAL
    assert roles(first) == {"driver", "operator"}
    assert (reminder.state, reminder.reason) == (FIRING, Reason.WALKTHROUGH_REMINDER)
    assert roles(reminder) == {"driver", "operator"}
    assert 170 <= seconds_after(reminder, END) - seconds_after(first, END) <= 190
    assert (escalation.state, escalation.reason) == (ESCALATED, Reason.GUARDIAN_DELAY)
    assert roles(escalation) == {"driver", "operator", "school", "guardian"}
    assert guardians(escalation) == GUARDIANS["TAG-CID"]
    assert 590 <= seconds_after(escalation, END) - seconds_after(first, END) <= 610


@pytest.mark.parametrize("delay_min", [5, 15])
def test_the_guardian_delay_is_a_setting(delay_min: int) -> None:
    day = Day()
    _cid_not_read_off(day)
    notes = day.run(BusRules(guardian_delay_s=delay_min * 60), tail_s=1200)
    first = notes.of(LEFT, "TAG-CID")[0]
    (escalation, *_) = [n for n in notes.of(LEFT, "TAG-CID") if n.state is ESCALATED]
    assert round(seconds_after(escalation, END) - seconds_after(first, END)) == delay_min * 60


def test_the_walkthrough_clears_counted_only_before_the_guardians_hear() -> None:
    day = Day()
    _cid_not_read_off(day)
    day.walkthrough(END + 120, "bus-1")
    notes = day.run()
    steps = [(n.state, n.reason) for n in notes.of(LEFT, "TAG-CID")]
    assert steps == [(FIRING, Reason.RUN_END), (RESOLVED, Reason.WALKTHROUGH)]
    assert all("guardian" not in roles(n) for n in notes.of(LEFT))


def test_the_walkthrough_does_not_clear_seen() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"], sweep=[("TAG-CID", -55.0)])
    day.walkthrough(END + 120, "bus-1")
    notes = day.run(tail_s=1300)
    states = [n.state for n in notes.of(LEFT, "TAG-CID")]
    assert RESOLVED not in states
    assert states.count(ESCALATED) == 2


def test_a_camera_person_makes_counted_only_seen_at_once() -> None:
    day = Day()
    _cid_not_read_off(day)
    day.occupancy(END + 90, "bus-1", 1)
    notes = day.run(tail_s=300)
    first, upgrade = notes.of(LEFT, "TAG-CID")[:2]
    assert first.evidence is Evidence.COUNTED
    assert (upgrade.state, upgrade.reason, upgrade.evidence) == (
        ESCALATED,
        Reason.SEEN,
        Evidence.SEEN,
    )
    assert guardians(upgrade) == GUARDIANS["TAG-CID"]
    assert seconds_after(upgrade, END + 90) <= 60
    assert upgrade.fingerprint == first.fingerprint


def test_an_empty_cabin_keeps_counted_only_from_the_guardians_but_not_the_school() -> None:
    day = Day()
    _cid_not_read_off(day)
    day.occupancy(END + 90, "bus-1", 0)
    notes = day.run(tail_s=900)
    (escalation, *_) = [n for n in notes.of(LEFT, "TAG-CID") if n.state is ESCALATED]
    assert roles(escalation) == {"driver", "operator", "school"}
    notes = day.run(BusRules(empty_cabin_holds_guardians=False), tail_s=900)
    (escalation, *_) = [n for n in notes.of(LEFT, "TAG-CID") if n.state is ESCALATED]
    assert "guardian" in roles(escalation)


def test_a_person_the_sweep_explains_upgrades_nobody() -> None:
    """The camera's one person is Cid, whom the sweep heard; Ann's missed read stays counted."""
    day = Day()
    day.morning(alighting=["TAG-BEN"], sweep=[("TAG-CID", -55.0)])
    day.occupancy(END + 90, "bus-1", 1)
    notes = day.run(tail_s=300)
    assert {n.evidence for n in notes.of(LEFT, "TAG-ANN")} == {Evidence.COUNTED}


def test_a_person_seen_with_nobody_counted_goes_to_crew_and_school() -> None:
    day = Day()
    day.morning()
    day.occupancy(END + 90, "bus-1", 1)
    notes = day.run(tail_s=300)
    (person,) = notes.of(LEFT, None, FIRING)
    assert person.evidence is Evidence.SEEN
    assert roles(person) == {"driver", "operator", "school"}


def test_a_door_read_after_the_end_clears_any_alert() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"], sweep=[("TAG-CID", -55.0)])
    day.door(END + 200, "bus-1", "TAG-CID", "out")
    notes = day.run(tail_s=300)
    last = notes.of(LEFT, "TAG-CID")[-1]
    assert (last.state, last.reason) == (RESOLVED, Reason.DOOR_READ_AFTER_END)
    assert guardians(last) == GUARDIANS["TAG-CID"]  # everybody told is told it is over


def test_an_operator_acknowledgement_with_a_reason_clears_seen() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"], sweep=[("TAG-CID", -55.0)])
    first = day.run(tail_s=60).of(LEFT, "TAG-CID")[0]
    day.ack(END + 300, first.fingerprint, by="op-7", reason="found at home, tag in bus")
    notes = day.run()
    last = notes.of(LEFT, "TAG-CID")[-1]
    assert last.state is NotificationState.ACKNOWLEDGED
    assert (last.acknowledged_by, last.note) == ("op-7", "found at home, tag in bus")
    assert [n.state for n in notes.of(LEFT, "TAG-CID")] == [FIRING, NotificationState.ACKNOWLEDGED]


def test_acknowledgements_need_a_reason_and_a_known_alert() -> None:
    from iotmon_alerts.bus import BusSafetyEngine, UnknownAlert
    from tests.utils.bus import at, fleet

    engine = BusSafetyEngine(fleet(), BusRules())
    with pytest.raises(ValueError, match="reason"):
        engine.acknowledge("abc", "op-1", "  ", at(0))
    with pytest.raises(UnknownAlert):
        engine.acknowledge("abc", "op-1", "checked", at(0))


def test_a_weak_sweep_read_is_a_neighbour_and_not_seen() -> None:
    """Crosstalk at the depot: bus-2's child heard faintly through bus-1's sides."""
    day = Day()
    day.morning(sweep=[("TAG-DAN", -80.0)])
    notes = day.run()
    assert notes.of(LEFT) == []
    assert len(notes.of(NotificationKind.BUS_EMPTY)) == 1


def test_a_strong_sweep_read_of_a_child_nobody_counted_is_seen() -> None:
    """Boarded unread (or on the wrong bus), asleep, and heard inside: seen."""
    day = Day()
    day.morning(sweep=[("TAG-DAN", -52.0)])
    (alert,) = day.run(tail_s=60).of(LEFT, "TAG-DAN")
    assert alert.evidence is Evidence.SEEN
    assert guardians(alert) == GUARDIANS["TAG-DAN"]
