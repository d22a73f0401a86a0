"""The operator's view of a bus: derived by the core from the bus's events, counted as the
rules count (duplicates, run ends placed by GPS), with the last sweep read from its events."""

from __future__ import annotations

from iotmon_alerts.bus import BusEvent, BusRules
from iotmon_alerts.bus.view import BusView, RunPhase, bus_view
from tests.utils.bus import Day, at, fleet


def _events(day: Day) -> list[BusEvent]:
    return [item.event for item in day.items() if item.event is not None]


def _view(day: Day, seconds: float, bus: str = "bus-1") -> BusView:
    return bus_view(fleet(), BusRules(), bus, _events(day), at(seconds))


def _aboard(view: BusView) -> list[str | None]:
    return [c.child for c in view.aboard]


def test_mid_run_the_view_counts_who_boarded_and_when() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"])
    view = _view(day, 700)  # after both stops, before school
    assert view.phase is RunPhase.UNDER_WAY
    assert view.run_started_at == at(0)  # the ignition on
    assert view.run_ended_at is None
    assert _aboard(view) == ["ann", "ben", "cid"]
    assert [c.boarded_at for c in view.aboard] == [at(300), at(305), at(600)]
    assert view.ignition_on is True
    assert view.last_sweep is None


def test_after_the_run_the_view_holds_the_child_the_door_left_aboard_and_the_sweep() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"], sweep=[("TAG-CID", -52.0), ("TAG-DAN", -80.0)])
    view = _view(day, 1900)
    assert view.phase is RunPhase.ENDED
    assert view.run_ended_at == at(1800)
    assert view.run_end_place == "depot-1"
    assert _aboard(view) == ["cid"]
    sweep = view.last_sweep
    assert sweep is not None
    assert sweep.sweep_id == "s1"
    assert sweep.complete
    assert sweep.after_run_end
    assert [(r.child, r.inside) for r in sweep.reads] == [("cid", True), ("dan", False)]
    assert view.ignition_on is False
    assert view.position is not None
    assert view.position.place == "depot-1"


def test_a_door_read_after_the_end_takes_the_child_off_the_count() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"])
    day.door(1950, "bus-1", "TAG-CID", "out")
    assert _aboard(_view(day, 1900)) == ["cid"]
    assert _aboard(_view(day, 2000)) == []


def test_repeated_reads_count_once_and_an_unknown_tag_is_counted_without_a_child() -> None:
    day = Day()
    day.ignition(0, "bus-1", True)
    day.fixes(0, 60, "bus-1", "depot-1")
    day.door(100, "bus-1", "TAG-ANN", "in", copies=3)
    day.door(110, "bus-1", "VISITOR-7", None)
    view = _view(day, 200)
    assert [(c.tag, c.child) for c in view.aboard] == [("TAG-ANN", "ann"), ("VISITOR-7", None)]


def test_another_bus_events_and_events_after_now_are_left_out() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"])
    day.morning("bus-2", boarding={"stop-c": ["TAG-DAN"]}, alighting=[])
    bus1 = _view(day, 1900)
    assert _aboard(bus1) == ["cid"]
    assert _aboard(_view(day, 1900, "bus-2")) == ["dan"]
    # at 310 s Ann has boarded (300 s) and Ben (305 s); Cid's boarding at 600 s is ahead
    assert _aboard(_view(day, 310)) == ["ann", "ben"]
    assert _view(day, 310).events < bus1.events


def test_a_camera_count_is_the_latest_one() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN", "TAG-CID"])
    day.occupancy(1815, "bus-1", 1)
    day.occupancy(1830, "bus-1", 0)
    seen = _view(day, 1900).people_seen
    assert seen is not None
    assert (seen.people, seen.ts, seen.device) == (0, at(1830), "bus-1-cam")
