"""Run end: the end-of-run button, or ignition off inside the depot radius; ignition off
anywhere else (waiting at school) ends nothing."""

from __future__ import annotations

from iotmon_alerts.bus import Evidence, NotificationKind, NotificationState
from tests.utils.bus import Day, roles, seconds_after

LEFT = NotificationKind.CHILD_LEFT_ABOARD


def _ann_stays(day: Day) -> None:
    """Ann boards at stop-a and her alighting is never read: counted aboard."""
    day.ignition(0, "bus-1", True)
    day.fixes(270, 360, "bus-1", "stop-a")
    day.door(300, "bus-1", "TAG-ANN", "in")


def test_ignition_off_waiting_at_school_does_not_end_the_run() -> None:
    day = Day()
    _ann_stays(day)
    day.fixes(900, 1000, "bus-1", "school-1")
    day.ignition(1000, "bus-1", False)
    day.fix(1000.5, "bus-1", "school-1")
    day.sweep(1010, "bus-1", [])
    notes = day.run()
    assert notes.alerts() == []
    assert notes.of(NotificationKind.BUS_EMPTY) == []


def test_ignition_off_inside_the_depot_radius_ends_the_run() -> None:
    day = Day()
    _ann_stays(day)
    day.fixes(1700, 1800, "bus-1", "depot-edge")  # 122 m out, radius 150 m
    day.ignition(1800, "bus-1", False)
    notes = day.run()
    (alert, *_) = notes.of(LEFT, "TAG-ANN")
    assert alert.evidence is Evidence.COUNTED
    assert alert.stop == "depot-1"
    assert 0 <= seconds_after(alert, 1800) <= 60


def test_ignition_off_just_outside_the_depot_radius_ends_nothing() -> None:
    day = Day()
    _ann_stays(day)
    day.fixes(1700, 1800, "bus-1", "outside-depot")  # 256 m out
    day.ignition(1800, "bus-1", False)
    assert day.run().alerts() == []


def test_an_ignition_off_placed_by_a_fix_that_arrives_after_it() -> None:
    """The telematics' fix at the ignition off can arrive after the off itself."""
    day = Day()
    _ann_stays(day)
    day.fix(1000, "bus-1", "school-1")
    day.ignition(1800, "bus-1", False, arrive=1800.5)
    day.fix(1801, "bus-1", "depot-1", arrive=1830)
    (alert, *_) = day.run().of(LEFT, "TAG-ANN")
    assert 0 <= seconds_after(alert, 1830) <= 60


def test_the_end_button_ends_the_run_wherever_the_bus_is() -> None:
    day = Day()
    _ann_stays(day)
    day.fixes(900, 1000, "bus-1", "school-1")
    day.run_end(1000, "bus-1", run_id="r-1")
    day.sweep(1010, "bus-1", [])
    (alert, *_) = day.run().of(LEFT, "TAG-ANN")
    assert alert.run == "r-1"
    assert alert.stop == "school-1"


def test_the_button_then_the_ignition_off_in_the_depot_are_one_run_end() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"])  # Cid's alighting is missed
    notes = day.run()
    firing = notes.of(LEFT, state=NotificationState.FIRING)
    assert [(n.child_tag, n.reason.value) for n in firing][:1] == [("TAG-CID", "run_end")]
    assert len({n.fingerprint for n in notes.of(LEFT)}) == 1


def test_an_empty_bus_is_said_once_to_driver_and_operator() -> None:
    day = Day()
    day.morning()
    notes = day.run()
    (empty,) = notes.of(NotificationKind.BUS_EMPTY)
    assert roles(empty) == {"driver", "operator"}
    assert notes.alerts() == []
