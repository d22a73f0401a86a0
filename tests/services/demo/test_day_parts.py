"""The day scenario's own parts without a broker: its clock and the bus replay driver."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from iotmon_contract.events import Direction
from iotmon_devices.base import AvailabilityChange, DriverEvent, DriverOutput
from iotmon_devices.simulators.school_bus import Line
from iotmon_tools.demo.bus_replay import BusDevices, BusReplayDriver
from iotmon_tools.demo.clock import DemoClock, last_school_day
from iotmon_tools.demo.day_plan import plan_day
from iotmon_tools.demo.zigbee import states

T0 = datetime(2026, 12, 1, 6, 20, tzinfo=UTC)


def test_the_day_is_the_last_weekday_before_today() -> None:
    assert last_school_day(date(2026, 12, 2)) == date(2026, 12, 1)  # Wednesday → Tuesday
    assert last_school_day(date(2026, 12, 7)) == date(2026, 12, 4)  # Monday → Friday
    assert last_school_day(date(2026, 12, 6)) == date(2026, 12, 4)  # Sunday → Friday


def test_the_clock_runs_fast_from_the_day_start_and_never_passes_the_wall_clock() -> None:
    wall = [datetime(2026, 12, 2, 17, 0, tzinfo=UTC).timestamp()]
    started = datetime.fromtimestamp(wall[0], UTC)
    clock = DemoClock(T0, 60, started, wall=lambda: wall[0], monotonic=lambda: wall[0])
    assert clock() == T0
    wall[0] += 60  # a real minute is a simulated hour
    assert clock() == T0 + timedelta(hours=1)
    wall[0] += 3600  # a real hour later the simulated day (60 h on) has caught up with now
    assert clock() == datetime.fromtimestamp(wall[0], UTC)
    assert DemoClock.for_day(60, started).epoch == T0


def line(at: datetime, order: int, device: str, **data: Any) -> Line:
    return Line(at.timestamp(), order, {"tenant": "demo", "device": device, **data})


BUS = BusDevices(vehicle="bus-1", gateway="bus-1-gw", devices=("bus-1-gps", "bus-1-door"))


def test_bus_replay_hands_over_what_is_due_in_the_contract_types() -> None:
    ts = "2026-12-01T06:30:00.000Z"
    lines = [
        line(T0 + timedelta(minutes=10), 0, "bus-1-gps",
             event={"type": "position", "ts": ts, "seq": 7, "lat": 52.1, "lon": 5.1,
                    "speed_kmh": 30.0}),
        line(T0 + timedelta(minutes=11), 1, "bus-1-door",
             event={"type": "tag_read", "ts": ts, "seq": 3, "tag": "E2801160600002084A3C1F2B",
                    "rssi": -50.0, "direction": "in"}),
        line(T0 + timedelta(minutes=11), 2, "bus-1-door", status={"state": "offline"}),
        line(T0 + timedelta(minutes=11), 3, "bus-1-gw", status={"state": "offline"}),
        line(T0 + timedelta(minutes=11), 4, "bus-2-door", status={"state": "offline"}),
        line(T0 + timedelta(minutes=12), 5, "bus-1-door",
             event={"type": "tag_read", "ts": ts, "seq": 4, "tag": "not a tag", "rssi": -50.0}),
        line(T0 + timedelta(hours=2), 6, "bus-1-gps",
             event={"type": "ignition", "ts": ts, "seq": 8, "on": False}),
    ]  # fmt: skip
    driver = BusReplayDriver(BUS, lines)
    got: list[DriverOutput] = []
    driver.attach(got.append)
    assert driver.read(T0 + timedelta(minutes=5)) == [
        r for r in driver.read(T0 + timedelta(minutes=5)) if r.metric in ("boardings", "alightings")
    ]
    assert got == []
    readings = {r.metric: r.value for r in driver.read(T0 + timedelta(minutes=13))}
    assert readings == {
        "boardings": 1.0, "alightings": 0.0, "latitude": 52.1, "longitude": 5.1, "speed": 30.0,
    }  # fmt: skip
    events = [o for o in got if isinstance(o, DriverEvent)]
    assert [e.type for e in events] == ["position", "tag_read"]
    assert events[1].data["direction"] is Direction.IN
    assert "seq" not in events[0].data
    # Only the bus's own devices, and never the agent itself (it speaks for itself).
    assert [o.device for o in got if isinstance(o, AvailabilityChange)] == ["bus-1-door"]
    assert driver.invalid == 1
    assert driver.remaining == 1
    # The next cycle's door counts start again from zero.
    assert {r.metric: r.value for r in driver.read(T0 + timedelta(minutes=14))}["boardings"] == 0


def test_the_day_plan_has_every_layer() -> None:
    plan = plan_day("demo", 4, 1.0, T0, seed=1)
    assert len(plan.buses) == 3
    assert plan.sensors.zigbee2mqtt is not None
    devices = {d for driver in plan.depot_meters.drivers for d in driver.declared_device_ids()}
    assert "meter-depot-water" in devices
    # The simulator leaves children aboard today, whose guardians the demo subscribes.
    assert plan.guardians_of_left_children


def test_zigbee_leak_sensor_is_wet_only_in_its_window() -> None:
    wet = [states(T0.replace(hour=13, minute=m))["boiler room/leak"]["water_leak"] for m in (0, 19)]
    dry = [states(T0.replace(hour=h))["boiler room/leak"]["water_leak"] for h in (7, 12, 14)]
    assert wet == [True, True]
    assert dry == [False, False, False]
