"""One school day of the simulated fleet: every bus's morning and afternoon run, as device
emissions at true times (delivery, skew and outages come later) and as ground truth."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from iotmon_devices.simulators.school_bus.config import RateRange, SchoolBusSimConfig
from iotmon_devices.simulators.school_bus.truth import LeftAboard, TruthPassage, TruthRun
from iotmon_devices.simulators.school_bus.world import Point, SimBus, SimChild, World, to_latlon

GPS_INTERVAL_S = 15.0
PARKED_GPS_INTERVAL_S = 300.0
REMINDER_S = 180.0
"""When the platform reminds the driver and operator (BusRules.walkthrough_reminder_s)."""
PRESENCE_REPORTS_S = (90.0, 210.0, 330.0)
"""Camera/radar reports after the run end: armed once the driver has locked up."""
DAY_END_H = 19


@dataclass(slots=True)
class Emit:
    """Something a device sends, at the true time it happened."""

    true: float
    device: str
    kind: Literal["event", "status"]
    body: dict[str, Any]
    will: bool = False
    """A status the broker publishes for a vanished client: it carries no timestamp."""


@dataclass(slots=True)
class Outage:
    bus: str
    start: float
    end: float


@dataclass(slots=True)
class Inside:
    """A person or a tag inside a bus from ``since`` until ``until`` (None: still there)."""

    item: LeftAboard
    since: float
    until: float | None = None
    hidden: bool = False
    """A camera/radar cannot see this child."""

    def at(self, t: float) -> bool:
        return self.since <= t and (self.until is None or t < self.until)


@dataclass(slots=True)
class SweepPlan:
    bus: SimBus
    sweep_id: str
    t: float
    reads: list[tuple[str, float]] = field(default_factory=list)


@dataclass(slots=True)
class DayResult:
    emits: list[Emit]
    runs: list[TruthRun]
    link_outages: list[Outage]


class _Trajectory:
    """Where a bus is at a true time: legs of straight driving and standing."""

    def __init__(self, start: float, at: Point) -> None:
        self.legs: list[tuple[float, float, Point, Point]] = []
        self.t = start
        self.at = at

    def stand(self, seconds: float) -> float:
        self.legs.append((self.t, self.t + seconds, self.at, self.at))
        self.t += seconds
        return self.t

    def drive(self, to: Point, rng: random.Random) -> float:
        speed = rng.uniform(7.0, 11.0)
        seconds = max(20.0, self.at.distance(to) * 1.3 / speed)
        self.legs.append((self.t, self.t + seconds, self.at, to))
        self.t += seconds
        self.at = to
        return self.t

    def position(self, t: float) -> Point:
        for t0, t1, p0, p1 in self.legs:
            if t0 <= t <= t1:
                f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return Point(p0.x + (p1.x - p0.x) * f, p0.y + (p1.y - p0.y) * f)
        return self.at


def _rate(rng: random.Random, rate: RateRange) -> float:
    return rng.uniform(rate.low, rate.high)


class _BusDay:
    """One bus's day: its rates, its clock and what it emits."""

    def __init__(self, sim: _DaySimulation, bus: SimBus) -> None:
        self.sim = sim
        self.bus = bus
        f = sim.config.faults
        rng = sim.rng(bus.id, "rates")
        self.door_miss = _rate(rng, f.door_miss)
        self.door_dup = _rate(rng, f.door_duplicate)
        self.sweep_miss = _rate(rng, f.sweep_miss)
        self.late = _rate(rng, f.walkthrough_late)
        self.never = _rate(rng, f.walkthrough_never)
        self.reader_down: list[tuple[str, float, float]] = []
        self.inside: list[Inside] = []
        self.gps_gaps: list[tuple[float, float]] = []
        self.ignition_off: list[tuple[float, float]] = []
        """Spans with the ignition off (parked fixes every 5 min)."""

    # -- devices ----------------------------------------------------------------------

    def emit(self, t: float, device: str, body: dict[str, Any]) -> None:
        self.sim.emits.append(Emit(t, device, "event", body))

    def status(self, t: float, device: str, state: str, *, will: bool = False) -> None:
        self.sim.emits.append(Emit(t, device, "status", {"state": state}, will=will))

    def down(self, device: str, t: float) -> bool:
        return any(d == device and a <= t < b for d, a, b in self.reader_down)

    def passage(
        self,
        rng: random.Random,
        tag: str,
        direction: str,
        t: float,
        run: TruthRun,
        place: str,
        child: str | None,
        *,
        reads: bool = True,
    ) -> bool:
        """A tag passing the door at ``t``; whether the reader read it."""
        f = self.sim.config.faults
        miss = rng.random() < self.door_miss
        dup = rng.random() < self.door_dup
        copies = rng.randint(2, 4) if dup else 1
        read = reads and not miss and not self.down(self.bus.door_reader, t)
        if read:
            offset = 0.0
            for _ in range(copies):
                known = rng.random() >= f.direction_unknown
                body: dict[str, Any] = {
                    "type": "tag_read",
                    "tag": tag,
                    "rssi": round(rng.gauss(-50.0, 4.0), 1),
                }
                if known:
                    body["direction"] = direction
                self.emit(t + offset, self.bus.door_reader, body)
                offset += rng.uniform(0.3, 2.5)
        else:
            for _ in range(copies):
                rng.random()  # keep the stream aligned whatever happened
        run.passages.append(TruthPassage(child, tag if reads else None, place, direction, t, read))
        return read


@dataclass(slots=True)
class _Rider:
    child: SimChild
    badge: bool
    home_stop: str
    """Where they get on (morning) or off (afternoon) on this bus."""
    boarding_read: bool = False


class _DaySimulation:
    def __init__(self, world: World, config: SchoolBusSimConfig, day: dt.date) -> None:
        self.world = world
        self.config = config
        self.day = day
        self.midnight = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC).timestamp()
        self.emits: list[Emit] = []
        self.runs: list[TruthRun] = []
        self.link_outages: list[Outage] = []
        self.sweeps: list[SweepPlan] = []
        self.buses = {bus.id: _BusDay(self, bus) for bus in world.buses}

    def rng(self, *parts: str) -> random.Random:
        return random.Random(
            f"school-bus:{self.config.seed}:{self.day.isoformat()}:{':'.join(parts)}"
        )

    def run(self) -> DayResult:
        f = self.config.faults
        present: dict[str, bool] = {}
        wrong_bus: dict[str, str] = {}
        rng = self.rng("attendance")
        for child in self.world.children:
            present[child.id] = rng.random() >= f.absent
            same_school = [
                b for b in self.world.buses if b.school.id == child.school and b.id != child.bus
            ]
            if same_school and rng.random() < f.wrong_bus:
                wrong_bus[child.id] = rng.choice(same_school).id
        for bus in self.world.buses:
            riders = [_Rider(c, True, c.stop) for c in self.world.riders(bus.id) if present[c.id]]
            self._morning(self.buses[bus.id], riders)
        for bus in self.world.buses:
            riders = [
                _Rider(c, True, c.stop)
                for c in self.world.riders(bus.id)
                if present[c.id] and c.id not in wrong_bus
            ]
            for child in self.world.children:
                if present[child.id] and wrong_bus.get(child.id) == bus.id:
                    # off at this bus's stop nearest their own
                    own = next(
                        s
                        for b in self.world.buses
                        if b.id == child.bus
                        for s in b.stops
                        if s.id == child.stop
                    )
                    nearest = min(bus.stops, key=lambda s: s.at.distance(own.at))
                    riders.append(_Rider(child, True, nearest.id))
            self._afternoon(self.buses[bus.id], riders)
        self._sweeps()
        day_end = self.midnight + DAY_END_H * 3600
        for bd in self.buses.values():
            for inside in bd.inside:
                if inside.until is None:
                    # the cleaners find it in the evening
                    inside.until = day_end
                    inside.item.found_at = inside.item.found_at or day_end
        return DayResult(self.emits, self.runs, self.link_outages)

    # -- the two runs -----------------------------------------------------------------

    def _start(
        self, bd: _BusDay, period: str, t_on: float, first: bool
    ) -> tuple[TruthRun, _Trajectory]:
        bus = bd.bus
        rng = self.rng(bus.id, period, "start")
        run_id = f"{self.day.isoformat()}-{period}-{bus.id}"
        run = TruthRun(
            bus=bus.id,
            period=period,
            day=self.day.isoformat(),
            run_id=run_id,
            start=t_on,
            end=t_on,
            explicit_end=False,
            driver="prompt",
        )
        if first:
            bd.status(t_on + rng.uniform(2, 6), bus.gateway, "online")
            bd.status(t_on + rng.uniform(5, 20), bus.door_reader, "online")
            bd.status(t_on + rng.uniform(5, 20), bus.cabin_scanner, "online")
        # whatever is still in the bus is found when the driver gets on
        for inside in bd.inside:
            if inside.until is None and inside.since < t_on:
                inside.until = t_on - 60
                inside.item.found_at = inside.item.found_at or t_on - 60
                if inside.item.tag is not None:
                    bd.passage(
                        rng, inside.item.tag, "out", t_on - 60, run, self.world.depot.id,
                        inside.item.child,
                    )  # fmt: skip
        bd.emit(t_on, bus.telematics, {"type": "ignition", "on": True})
        if rng.random() < 0.9:
            bd.emit(
                t_on + rng.uniform(3, 15), bus.telematics, {"type": "run_start", "run_id": run_id}
            )
        trajectory = _Trajectory(t_on, bus.slot)
        trajectory.stand(rng.uniform(60, 180))
        return run, trajectory

    def _morning(self, bd: _BusDay, riders: list[_Rider]) -> None:
        bus = bd.bus
        rng = self.rng(bus.id, "am", "story")
        t_on = self.midnight + 6.5 * 3600 + rng.uniform(0, 900) + bus.index * 120
        run, trajectory = self._start(bd, "am", t_on, first=True)
        self._badges(rng, riders)
        sleeper = self._sleeper(rng, riders)
        lost = self._lost(rng, riders, sleeper)
        visitor, visitor_left = self._visitor(rng)
        visitor_stop = rng.randrange(len(bus.stops))
        by_stop: dict[str, list[_Rider]] = {}
        for rider in riders:
            by_stop.setdefault(rider.home_stop, []).append(rider)
        aboard: list[_Rider] = []
        for index, stop in enumerate(bus.stops):
            arrive = trajectory.drive(stop.at, rng)
            t = arrive + rng.uniform(4, 8)
            for rider in by_stop.get(stop.id, []):
                rider.boarding_read = bd.passage(
                    rng, rider.child.tag, "in", t, run, stop.id, rider.child.id, reads=rider.badge
                )
                aboard.append(rider)
                t += rng.uniform(3, 6)
            if visitor is not None and index == visitor_stop:
                bd.passage(rng, visitor, "in", t, run, stop.id, None)
                t += 4
            trajectory.stand(t - trajectory.t + rng.uniform(3, 8))
        arrive = trajectory.drive(bus.school.at, rng)
        t = arrive + rng.uniform(5, 10)
        for rider in aboard:
            if rider is sleeper:
                continue
            bd.passage(
                rng, rider.child.tag, "out", t, run, bus.school.id, rider.child.id,
                reads=rider.badge and rider is not lost,
            )  # fmt: skip
            t += rng.uniform(2, 4)
        if visitor is not None and not visitor_left:
            bd.passage(rng, visitor, "out", t, run, bus.school.id, None)
            t += 3
        trajectory.stand(t - trajectory.t + rng.uniform(5, 20))
        if rng.random() < 0.6:
            off = trajectory.t
            wait = rng.uniform(120, 480)
            self._ignition_off(bd, off, trajectory.stand(wait), trajectory)
        else:
            trajectory.stand(rng.uniform(60, 240))
        pending = self._inside(bd, run, aboard, sleeper, lost, visitor if visitor_left else None)
        self._finish(bd, run, trajectory, rng, pending)

    def _afternoon(self, bd: _BusDay, riders: list[_Rider]) -> None:
        bus = bd.bus
        rng = self.rng(bus.id, "pm", "story")
        t_on = self.midnight + 14.5 * 3600 + rng.uniform(0, 900) + bus.index * 120
        run, trajectory = self._start(bd, "pm", t_on, first=False)
        self._badges(rng, riders)
        sleeper = self._sleeper(rng, riders)
        lost = self._lost(rng, riders, sleeper)
        visitor, visitor_left = self._visitor(rng)
        visitor_stop = rng.randrange(len(bus.stops))
        trajectory.drive(bus.school.at, rng)
        wait = rng.uniform(300, 900)
        if rng.random() < 0.8:
            off = trajectory.t
            self._ignition_off(bd, off, trajectory.stand(wait), trajectory)
        else:
            trajectory.stand(wait)
        t = trajectory.t - 20 - 5 * len(riders)
        neighbours = [b for b in self.world.neighbours(bus) if b.school.id == bus.school.id]
        crosstalk = self.config.faults.door_crosstalk
        for rider in riders:
            rider.boarding_read = bd.passage(
                rng, rider.child.tag, "in", t, run, bus.school.id, rider.child.id,
                reads=rider.badge,
            )  # fmt: skip
            if neighbours and rider.badge and rng.random() < crosstalk:
                other = rng.choice(neighbours)
                self.buses[other.id].emit(
                    t + rng.uniform(0, 1),
                    other.door_reader,
                    {"type": "tag_read", "tag": rider.child.tag,
                     "rssi": round(rng.gauss(-80.0, 4.0), 1), "direction": "in"},
                )  # fmt: skip
            t += rng.uniform(3, 5)
        if visitor is not None:
            bd.passage(rng, visitor, "in", t, run, bus.school.id, None)
        trajectory.stand(rng.uniform(20, 40))
        by_stop: dict[str, list[_Rider]] = {}
        for rider in riders:
            by_stop.setdefault(rider.home_stop, []).append(rider)
        for index, stop in enumerate(bus.stops):
            arrive = trajectory.drive(stop.at, rng)
            t = arrive + rng.uniform(4, 8)
            for rider in by_stop.get(stop.id, []):
                if rider is sleeper:
                    continue
                bd.passage(
                    rng, rider.child.tag, "out", t, run, stop.id, rider.child.id,
                    reads=rider.badge and rider is not lost,
                )  # fmt: skip
                t += rng.uniform(3, 6)
            if visitor is not None and not visitor_left and index == visitor_stop:
                bd.passage(rng, visitor, "out", t, run, stop.id, None)
                t += 4
            trajectory.stand(t - trajectory.t + rng.uniform(3, 8))
        pending = self._inside(bd, run, riders, sleeper, lost, visitor if visitor_left else None)
        self._finish(bd, run, trajectory, rng, pending)
        # the readers and the edge agent power down in the evening
        evening = max(run.end + 1800, (run.walkthrough_at or 0) + 60)
        for device in (bus.door_reader, bus.cabin_scanner, bus.gateway):
            bd.status(evening + rng.uniform(0, 30), device, "offline")

    # -- the day's surprises ----------------------------------------------------------

    def _badges(self, rng: random.Random, riders: list[_Rider]) -> None:
        for rider in riders:
            rider.badge = rng.random() >= self.config.faults.no_badge

    def _sleeper(self, rng: random.Random, riders: list[_Rider]) -> _Rider | None:
        asleep = rng.random() < self.config.faults.asleep
        pick = rng.randrange(len(riders)) if riders else 0
        return riders[pick] if asleep and riders else None

    def _lost(
        self, rng: random.Random, riders: list[_Rider], sleeper: _Rider | None
    ) -> _Rider | None:
        lost = rng.random() < self.config.faults.lost_tag
        candidates = [r for r in riders if r.badge and r is not sleeper]
        pick = rng.randrange(len(candidates)) if candidates else 0
        return candidates[pick] if lost and candidates else None

    def _visitor(self, rng: random.Random) -> tuple[str | None, bool]:
        f = self.config.faults
        rides = rng.random() < f.unknown_rider
        left = rng.random() < f.unknown_left
        tag = rng.choice(self.world.visitor_tags)
        if left:
            return tag, True
        return (tag if rides else None), False

    def _inside(
        self,
        bd: _BusDay,
        run: TruthRun,
        aboard: list[_Rider],
        sleeper: _Rider | None,
        lost: _Rider | None,
        visitor_left: str | None,
    ) -> list[Inside]:
        """Who and what stays in the bus past the run end (``since`` is set at the end)."""
        rng = self.rng(bd.bus.id, run.period, "presence")
        pending: list[Inside] = []
        if sleeper is not None:
            item = LeftAboard(
                child=sleeper.child.id,
                tag=sleeper.child.tag if sleeper.badge else None,
                registered=True,
                door_evidence=sleeper.boarding_read,
            )
            hidden = rng.random() < self.config.faults.presence_hidden
            pending.append(Inside(item, since=0.0, hidden=hidden))
        else:
            rng.random()
        if lost is not None:
            item = LeftAboard(None, lost.child.tag, True, door_evidence=lost.boarding_read)
            pending.append(Inside(item, since=0.0, hidden=True))
        if visitor_left is not None:
            pending.append(Inside(LeftAboard(None, visitor_left, False, True), 0.0, hidden=True))
        run.left_aboard = [p.item for p in pending]
        del aboard
        return pending

    def _ignition_off(self, bd: _BusDay, off: float, on: float, trajectory: _Trajectory) -> None:
        bus = bd.bus
        bd.emit(off, bus.telematics, {"type": "ignition", "on": False})
        bd.emit(on, bus.telematics, {"type": "ignition", "on": True})
        bd.ignition_off.append((off, on))
        del trajectory

    # -- the run end and what follows -------------------------------------------------

    def _finish(
        self,
        bd: _BusDay,
        run: TruthRun,
        trajectory: _Trajectory,
        rng: random.Random,
        pending: list[Inside],
    ) -> None:
        bus = bd.bus
        f = self.config.faults
        depart_depot = run.start
        arrive = trajectory.drive(bus.slot, rng)
        explicit = rng.random() < 0.6
        end_press = arrive + rng.uniform(3, 20)
        off = arrive + rng.uniform(20, 60)
        end = min(end_press, off) if explicit else off
        run.end = end
        run.explicit_end = explicit
        if explicit:
            bd.emit(end_press, bus.telematics, {"type": "run_end", "run_id": run.run_id})
        bd.emit(off, bus.telematics, {"type": "ignition", "on": False})
        parked_until = end + 3600
        trajectory.stand(parked_until - trajectory.t)
        bd.ignition_off.append((off, parked_until))
        # faults of the readers
        outage_rng = self.rng(bus.id, run.period, "outages")
        if outage_rng.random() < f.reader_outage_mid_run:
            device = bus.door_reader if outage_rng.random() < 0.6 else bus.cabin_scanner
            a = outage_rng.uniform(depart_depot + 120, max(depart_depot + 121, arrive - 700))
            b = a + outage_rng.uniform(30, 600)
            bd.reader_down.append((device, a, b))
            bd.status(a, device, "offline")
            bd.status(b, device, "online")
            run.reader_outage_mid = device
        else:
            outage_rng.random()
            outage_rng.random()
            outage_rng.random()
            outage_rng.random()
        if outage_rng.random() < f.reader_outage_at_end:
            device = bus.door_reader if outage_rng.random() < 0.5 else bus.cabin_scanner
            a = end - outage_rng.uniform(0, 300)
            b = end + outage_rng.uniform(300, 2400)
            bd.reader_down.append((device, a, b))
            bd.status(a, device, "offline")
            bd.status(b, device, "online")
            run.reader_outage_end = device
        else:
            outage_rng.random()
            outage_rng.random()
            outage_rng.random()
        if outage_rng.random() < f.gps_dropout:
            a = outage_rng.uniform(depart_depot + 60, max(depart_depot + 61, arrive - 400))
            bd.gps_gaps.append((a, a + outage_rng.uniform(60, 300)))
            run.gps_dropout = True
        else:
            outage_rng.random()
            outage_rng.random()
        if outage_rng.random() < f.link_outage:
            a = outage_rng.uniform(depart_depot + 60, end + 120)
            b = a + outage_rng.uniform(120, 900)
            self.link_outages.append(Outage(bus.id, a, b))
            run.link_outage = True
        else:
            outage_rng.random()
            outage_rng.random()
        # who is inside from the end on
        for inside in pending:
            inside.since = end
            bd.inside.append(inside)
        # the cabin sweep, the camera/radar, the driver
        sweep_t = end + rng.uniform(3, 15)
        if not bd.down(bus.cabin_scanner, sweep_t):
            plan = SweepPlan(bus, f"{run.run_id}-sweep", sweep_t)
            self.sweeps.append(plan)
            run.swept = True
        self._driver(bd, run, rng)
        self._gps(bd, run, trajectory, rng)
        if bus.presence is not None:
            self._presence(bd, run, end)
        self.runs.append(run)

    def _driver(self, bd: _BusDay, run: TruthRun, rng: random.Random) -> None:
        bus = bd.bus
        f = self.config.faults
        drv = self.rng(bus.id, run.period, "driver")
        u = drv.random()
        response = drv.random()
        response_delay = drv.uniform(30, 150)
        prompt_at = run.end + drv.uniform(40, 150)
        late_at = run.end + drv.uniform(300, 1500)
        find = [drv.random() for _ in range(3)]
        if u < bd.never:
            run.driver, press = "never", None
        elif u < bd.never + bd.late:
            run.driver, press = "late", late_at
        else:
            run.driver, press = "prompt", prompt_at
        if run.driver != "prompt" and response < f.reminder_response:
            reminded = run.end + REMINDER_S + response_delay
            if press is None or reminded < press:
                press, run.reminded_press = reminded, True
        run.walkthrough_at = press
        if press is None:
            return
        chances = (f.driver_finds_child, 0.5, 0.5)
        for inside in [i for i in bd.inside if i.until is None and i.since <= press]:
            kind = 0 if inside.item.child is not None else (1 if inside.item.registered else 2)
            if find[kind] >= chances[kind]:
                continue
            taken = press - rng.uniform(5, 20)
            inside.until = taken
            inside.item.found_at = taken
            if inside.item.tag is not None:
                bd.passage(
                    rng, inside.item.tag, "out", taken, run, self.world.depot.id, inside.item.child
                )
        bd.emit(press, bus.telematics, {"type": "walkthrough_check"})

    def _presence(self, bd: _BusDay, run: TruthRun, end: float) -> None:
        bus = bd.bus
        assert bus.presence is not None
        rng = self.rng(bus.id, run.period, "presence-reports")
        f = self.config.faults
        for offset in PRESENCE_REPORTS_S:
            t = end + offset
            people = 0
            for inside in bd.inside:
                if inside.item.child is None or not inside.at(t):
                    continue
                if not inside.hidden and rng.random() >= 0.02:
                    people += 1
                    inside.item.presence_seen = True
            if rng.random() < f.presence_false_positive:
                people += 1
            bd.emit(t, bus.presence, {"type": "occupancy", "people": people, "zone": "cabin"})

    def _gps(self, bd: _BusDay, run: TruthRun, trajectory: _Trajectory, rng: random.Random) -> None:
        bus = bd.bus
        t = run.start
        stop = run.end + 1800
        offs = [(a, b) for a, b in bd.ignition_off if a >= run.start and a <= stop]
        while t <= stop:
            parked = any(a <= t < b for a, b in offs)
            gap = any(a <= t < b for a, b in bd.gps_gaps)
            if not gap:
                p = trajectory.position(t)
                lat, lon = to_latlon(p.x + rng.gauss(0, 4), p.y + rng.gauss(0, 4))
                body = {
                    "type": "position",
                    "lat": round(lat, 6),
                    "lon": round(lon, 6),
                    "speed_kmh": 0.0 if parked else round(rng.uniform(20, 40), 1),
                    "satellites": rng.randint(6, 12),
                }
                bd.emit(t, bus.telematics, body)
            t += PARKED_GPS_INTERVAL_S if parked else GPS_INTERVAL_S
        for a, _ in offs:
            # a fix at every ignition off
            p = trajectory.position(a)
            lat, lon = to_latlon(p.x, p.y)
            bd.emit(
                a + 0.5,
                bus.telematics,
                {"type": "position", "lat": round(lat, 6), "lon": round(lon, 6), "speed_kmh": 0.0},
            )

    # -- sweeps, with what the neighbours' cabins leak --------------------------------

    def _sweeps(self) -> None:
        f = self.config.faults
        for plan in self.sweeps:
            bd = self.buses[plan.bus.id]
            rng = self.rng(plan.bus.id, plan.sweep_id, "sweep")
            for inside in bd.inside:
                tag = inside.item.tag
                if tag is None or not inside.at(plan.t):
                    continue
                if rng.random() < bd.sweep_miss:
                    continue
                rssi = round(rng.gauss(-52.0, 5.0), 1)
                plan.reads.append((tag, rssi))
                best = inside.item.sweep_rssi
                inside.item.sweep_rssi = rssi if best is None else max(best, rssi)
            for other in self.world.neighbours(plan.bus):
                for inside in self.buses[other.id].inside:
                    tag = inside.item.tag
                    if tag is not None and inside.at(plan.t) and rng.random() < 0.8:
                        plan.reads.append((tag, round(rng.gauss(-79.0, 4.0), 1)))
            if rng.random() < f.depot_stray_read:
                plan.reads.append((rng.choice(self.world.depot_tags), round(rng.gauss(-84, 3), 1)))
            t = plan.t
            for tag, rssi in plan.reads:
                t += rng.uniform(0.05, 0.4)
                bd.emit(
                    t,
                    plan.bus.cabin_scanner,
                    {"type": "sweep_read", "sweep_id": plan.sweep_id, "tag": tag, "rssi": rssi},
                )
            bd.emit(
                t + 1.0,
                plan.bus.cabin_scanner,
                {"type": "sweep_complete", "sweep_id": plan.sweep_id, "reads": len(plan.reads)},
            )


def simulate_day(world: World, config: SchoolBusSimConfig, day: dt.date) -> DayResult:
    return _DaySimulation(world, config, day).run()
