"""Occupancy unknown: a door reader or cabin scanner not online at the run end, or offline
for a minute or more mid-run, is a warning to driver and operator, and that run is never
called empty. A bus parked for the night with its readers off is nobody's business."""

from __future__ import annotations

from iotmon_alerts.bus import NotificationKind, NotificationState, Reason
from iotmon_contract.alerts import AlertSeverity
from tests.utils.bus import Day, roles, seconds_after

UNKNOWN = NotificationKind.OCCUPANCY_UNKNOWN
OFFLINE = NotificationKind.READER_OFFLINE
EMPTY = NotificationKind.BUS_EMPTY
END = 1800.0


def test_a_scanner_offline_at_the_run_end_leaves_occupancy_unknown() -> None:
    day = Day()
    day.status(1500, "bus-1-cabin", "offline")
    day.morning(sweep=None)
    day.lines = [line for line in day.lines if "sweep" not in line]  # it cannot sweep
    notes = day.run(tail_s=120)
    (warning,) = notes.of(UNKNOWN, state=NotificationState.FIRING)
    assert warning.severity is AlertSeverity.WARNING
    assert roles(warning) == {"driver", "operator"}
    assert seconds_after(warning, END) <= 60
    assert notes.of(EMPTY) == []


def test_a_door_reader_offline_a_minute_mid_run_warns_and_blocks_bus_empty() -> None:
    day = Day()
    day.status(400, "bus-1-door", "offline")
    day.status(470, "bus-1-door", "online")
    day.morning()
    notes = day.run(tail_s=120)
    firing, resolved = notes.of(OFFLINE)
    assert (firing.device, firing.state) == ("bus-1-door", NotificationState.FIRING)
    assert roles(firing) == {"driver", "operator"}
    assert 60 <= seconds_after(firing, 400) <= 62
    assert (resolved.state, resolved.reason) == (NotificationState.RESOLVED, Reason.READER_ONLINE)
    assert len(notes.of(UNKNOWN, state=NotificationState.FIRING)) == 1
    assert notes.of(EMPTY) == []


def test_a_reader_blip_under_a_minute_is_not_an_outage() -> None:
    day = Day()
    day.status(400, "bus-1-door", "offline")
    day.status(440, "bus-1-door", "online")
    day.morning()
    notes = day.run(tail_s=120)
    assert notes.of(OFFLINE) == []
    assert notes.of(UNKNOWN) == []
    assert len(notes.of(EMPTY)) == 1


def test_a_fault_counts_as_offline_until_cleared() -> None:
    day = Day()
    fault = {"type": "fault", "component": "reader", "code": "antenna", "severity": "error"}
    day.event(400, "bus-1-door", fault)
    day.event(500, "bus-1-door", {**fault, "cleared": True})
    day.morning()
    notes = day.run(tail_s=120)
    assert [n.state for n in notes.of(OFFLINE)] == [
        NotificationState.FIRING,
        NotificationState.RESOLVED,
    ]
    assert notes.of(EMPTY) == []


def test_readers_powered_off_overnight_are_no_alarm() -> None:
    day = Day()
    day.status(-8 * 3600, "bus-1-door", "offline")  # last evening
    day.status(-8 * 3600, "bus-1-cabin", "offline")
    day.status(10, "bus-1-door", "online")  # they boot with the ignition
    day.status(12, "bus-1-cabin", "online")
    day.morning()
    day.status(END + 1800, "bus-1-door", "offline")  # and power down after the run
    notes = day.run()
    assert notes.alerts() == []
    assert len(notes.of(EMPTY)) == 1


def test_the_gateway_down_mid_run_warns_but_its_backlog_keeps_occupancy_known() -> None:
    """The edge agent's link drops for five minutes; its queue replays the reads after."""
    day = Day()
    day.status(400, "bus-1-edge", "offline", will=True)
    day.status(700, "bus-1-edge", "online")
    day.morning()
    notes = day.run(tail_s=120)
    assert [n.device for n in notes.of(OFFLINE)] == ["bus-1-edge", "bus-1-edge"]
    assert notes.of(UNKNOWN) == []
    assert len(notes.of(EMPTY)) == 1


def test_the_walkthrough_resolves_occupancy_unknown() -> None:
    day = Day()
    day.status(1500, "bus-1-cabin", "offline")
    day.morning()
    day.walkthrough(END + 100, "bus-1")
    notes = day.run(tail_s=300)
    assert [(n.state, n.reason) for n in notes.of(UNKNOWN)] == [
        (NotificationState.FIRING, Reason.RUN_END),
        (NotificationState.RESOLVED, Reason.WALKTHROUGH),
    ]


def test_a_sweep_that_fails_after_the_end_leaves_occupancy_unknown() -> None:
    """The cabin scanner's driver reports an unfinished sweep as a fault, not as empty."""
    day = Day()
    day.morning(sweep=None)
    day.lines = [line for line in day.lines if "sweep" not in line]
    fault = {"type": "fault", "component": "cabin_sweep", "code": "sweep_incomplete",
             "severity": "error"}  # fmt: skip
    day.event(END + 25, "bus-1-cabin", fault)
    notes = day.run(tail_s=120)
    assert len(notes.of(UNKNOWN, state=NotificationState.FIRING)) == 1
    assert notes.of(EMPTY) == []
