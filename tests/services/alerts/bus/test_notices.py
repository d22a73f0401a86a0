"""Boarded/alighted notices: the stop nearest a fix close in time, within 60 s, to that
child's guardians only; duplicated reads never flip a child's state."""

from __future__ import annotations

from iotmon_alerts.bus import NotificationKind, NotificationState
from tests.utils.bus import GUARDIANS, Day, guardians, seconds_after

BOARDED = NotificationKind.BOARDED
ALIGHTED = NotificationKind.ALIGHTED


def test_a_boarding_is_told_to_that_childs_guardians_with_its_stop_within_a_minute() -> None:
    day = Day()
    day.morning()
    notes = day.run()
    boarded = notes.of(BOARDED, "TAG-CID")
    assert len(boarded) == 1
    (notice,) = boarded
    assert notice.stop == "stop-b"
    assert guardians(notice) == {"g-cid"}
    assert {r.role.value for r in notice.recipients} == {"guardian"}
    assert notice.state is NotificationState.FIRING
    assert 0 <= seconds_after(notice, 600) <= 60  # Cid boards at 600 s
    (alighted,) = notes.of(ALIGHTED, "TAG-CID")
    assert alighted.stop == "school-1"


def test_siblings_share_guardians_and_a_guardian_hears_of_another_familys_child() -> None:
    day = Day()
    day.morning()
    day.door(300, "bus-2", "TAG-DAN", "in")
    day.fixes(270, 360, "bus-2", "stop-c")
    notes = day.run()
    for tag in ("TAG-ANN", "TAG-BEN", "TAG-DAN"):
        (notice,) = notes.of(BOARDED, tag)
        assert guardians(notice) == GUARDIANS[tag]
    # the step-parent is told about Dan, the others of Ann and Ben's family are not
    (dan,) = notes.of(BOARDED, "TAG-DAN")
    assert "g-ann-ben-1" not in guardians(dan)
    assert dan.stop == "stop-c"
    assert dan.bus == "bus-2"


def test_every_notice_goes_only_to_guardians_of_its_child() -> None:
    day = Day()
    day.morning()
    for notice in day.run().all:
        if notice.kind in (BOARDED, ALIGHTED):
            assert notice.child_tag is not None
            assert guardians(notice) == GUARDIANS[notice.child_tag]


def test_duplicated_reads_never_flip_a_child() -> None:
    """2 to 4 reads of one passage within seconds, directions known or not, redelivered."""
    day = Day()
    day.morning(boarding={"stop-a": ["TAG-ANN"]}, alighting=[])
    day.door(301, "bus-1", "TAG-ANN", "in", copies=3)  # the reader's repeats
    day.door(306, "bus-1", "TAG-ANN", None, copies=2)  # repeats without a direction
    day.lines.append(day.lines[-1])  # the broker's redelivery of one of them
    day.door(920, "bus-1", "TAG-ANN", "out", copies=4)
    day.door(925, "bus-1", "TAG-ANN", None)
    notes = day.run()
    assert len(notes.of(BOARDED, "TAG-ANN")) == 1
    assert len(notes.of(ALIGHTED, "TAG-ANN")) == 1
    # and she is off: nothing about her at the run end
    assert notes.of(NotificationKind.CHILD_LEFT_ABOARD, "TAG-ANN") == []
    assert len(notes.of(NotificationKind.BUS_EMPTY)) == 1


def test_a_read_without_direction_toggles_once_per_passage() -> None:
    day = Day()
    day.morning(boarding={}, alighting=[])
    day.fixes(270, 360, "bus-1", "stop-a")
    day.door(300, "bus-1", "TAG-BEN", None, copies=3)
    day.door(920, "bus-1", "TAG-BEN", None, copies=2)
    notes = day.run()
    (boarded,) = notes.of(BOARDED, "TAG-BEN")
    (alighted,) = notes.of(ALIGHTED, "TAG-BEN")
    assert (boarded.stop, alighted.stop) == ("stop-a", "school-1")


def test_the_notice_waits_briefly_for_a_fix_and_goes_without_a_stop_when_none_comes() -> None:
    day = Day()
    day.ignition(0, "bus-1", True)
    day.fix(0, "bus-1", "depot-1")
    day.door(600, "bus-1", "TAG-ANN", "in")  # GPS dropout: no fix for minutes
    day.fix(900, "bus-1", "stop-b")
    (notice,) = day.run().of(BOARDED, "TAG-ANN")
    assert notice.stop is None
    assert 15 <= seconds_after(notice, 600) <= 60


def test_a_parked_bus_is_where_its_last_fix_was() -> None:
    """Telematics report rarely with the ignition off; the bus has not moved."""
    day = Day()
    day.ignition(0, "bus-1", True)
    day.fixes(0, 600, "bus-1", "school-1")
    day.ignition(610, "bus-1", False)
    day.door(1200, "bus-1", "TAG-ANN", "in")  # ten minutes after the last fix
    (notice,) = day.run().of(BOARDED, "TAG-ANN")
    assert notice.stop == "school-1"


def test_weak_door_reads_are_another_bus_and_tell_nobody() -> None:
    """Buses lined up at school: bus-1's reader hears bus-2's boarding, weakly."""
    day = Day()
    day.ignition(0, "bus-1", True)
    day.fixes(0, 400, "bus-1", "school-1")
    day.door(300, "bus-1", "TAG-DAN", "in", rssi=-82.0)
    notes = day.run()
    assert notes.of(BOARDED) == []
