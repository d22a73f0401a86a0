"""Factories for the school-bus core's tests: a small fleet, delivered events built as
JSON lines and parsed by the replay's own parser, and a run of the core over them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from iotmon_alerts.bus import (
    BusRules,
    Fleet,
    Notification,
    NotificationKind,
    NotificationState,
    RecipientRole,
    parse_fleet,
)
from iotmon_alerts.bus.replay import ReplayItem, parse_line, replay

FLEET_YAML = """\
tenant: demo
operator: dispatch
depots:
  - {id: depot-1, lat: 52.0907, lon: 5.1214, radius_m: 150}
schools:
  - {id: school-1, lat: 52.1100, lon: 5.1214}
routes:
  - id: route-1
    school: school-1
    stops:
      - {id: stop-a, lat: 52.0950, lon: 5.1300}
      - {id: stop-b, lat: 52.1000, lon: 5.1300}
  - id: route-2
    school: school-1
    stops:
      - {id: stop-c, lat: 52.0950, lon: 5.1100}
buses:
  - id: bus-1
    depot: depot-1
    driver: driver-1
    route: route-1
    devices:
      telematics: bus-1-gps
      door_reader: bus-1-door
      cabin_scanner: bus-1-cabin
      presence: [bus-1-cam]
      gateway: bus-1-edge
  - id: bus-2
    depot: depot-1
    driver: driver-2
    route: route-2
    devices: {telematics: bus-2-gps, door_reader: bus-2-door, cabin_scanner: bus-2-cabin}
children:
  - {id: ann, tags: [TAG-ANN], school: school-1, bus: bus-1, stop: stop-a}
  - {id: ben, tags: [TAG-BEN], school: school-1, bus: bus-1, stop: stop-a}
  - {id: cid, tags: [TAG-CID], school: school-1, bus: bus-1, stop: stop-b}
  - {id: dan, tags: [TAG-DAN], school: school-1, bus: bus-2, stop: stop-c}
guardians:
  - {id: g-ann-ben-1, children: [ann, ben]}
  - {id: g-ann-ben-2, children: [ann, ben, dan]}
  - {id: g-cid, children: [cid]}
  - {id: g-dan, children: [dan]}
"""
"""Ann and Ben are siblings; their second guardian is also Dan's (another family's child)."""

PLACES = {
    "depot-1": (52.0907, 5.1214),
    "depot-edge": (52.0918, 5.1214),  # 122 m from the depot: still inside its radius
    "outside-depot": (52.0930, 5.1214),  # 256 m: outside
    "school-1": (52.1100, 5.1214),
    "stop-a": (52.0950, 5.1300),
    "stop-b": (52.1000, 5.1300),
    "stop-c": (52.0950, 5.1100),
}
GUARDIANS = {
    "TAG-ANN": {"g-ann-ben-1", "g-ann-ben-2"},
    "TAG-BEN": {"g-ann-ben-1", "g-ann-ben-2"},
    "TAG-CID": {"g-cid"},
    "TAG-DAN": {"g-ann-ben-2", "g-dan"},
}
T0 = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def fleet() -> Fleet:
    return parse_fleet(FLEET_YAML, source="fleet.yaml")


def iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Day:
    """Delivered events of a test, in the replay's line format.

    Times are seconds after T0. An event happens at ``t`` on the device and arrives
    ``latency`` later unless ``arrive`` says when; ``skew`` offsets a device's clock.
    """

    latency: float = 0.5
    skew: dict[str, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    _seq: dict[str, int] = field(default_factory=dict)

    def event(
        self, t: float, device: str, body: dict[str, Any], *, arrive: float | None = None
    ) -> str:
        seq = self._seq.get(device, 0) + 1
        self._seq[device] = seq
        ts = at(t + self.skew.get(device, 0.0))
        event = {"ts": iso(ts), "seq": seq, **body}
        line = json.dumps(
            {
                "at": iso(at(arrive if arrive is not None else t + self.latency)),
                "tenant": "demo",
                "device": device,
                "event": event,
            }
        )
        self.lines.append(line)
        return line

    def status(
        self, t: float, device: str, state: str, *, arrive: float | None = None, will: bool = False
    ) -> None:
        status: dict[str, Any] = {"state": state}
        if not will:
            status["ts"] = iso(at(t + self.skew.get(device, 0.0)))
        self.lines.append(
            json.dumps(
                {
                    "at": iso(at(arrive if arrive is not None else t + self.latency)),
                    "tenant": "demo",
                    "device": device,
                    "status": status,
                }
            )
        )

    # -- what buses do ------------------------------------------------------------------

    def ignition(self, t: float, bus: str, on: bool, **kw: Any) -> None:
        self.event(t, f"{bus}-gps", {"type": "ignition", "on": on}, **kw)

    def fix(self, t: float, bus: str, place: str, **kw: Any) -> None:
        lat, lon = PLACES[place]
        self.event(t, f"{bus}-gps", {"type": "position", "lat": lat, "lon": lon}, **kw)

    def fixes(self, start: float, end: float, bus: str, place: str) -> None:
        """A fix every 15 s from ``start`` to ``end`` at ``place``."""
        t = start
        while t <= end:
            self.fix(t, bus, place)
            t += 15

    def door(
        self,
        t: float,
        bus: str,
        tag: str,
        direction: str | None,
        *,
        rssi: float = -50.0,
        copies: int = 1,
        **kw: Any,
    ) -> None:
        body: dict[str, Any] = {"type": "tag_read", "tag": tag, "rssi": rssi}
        if direction is not None:
            body["direction"] = direction
        for copy in range(copies):
            arrive = kw.get("arrive")
            self.event(
                t + copy * 1.5,
                f"{bus}-door",
                body,
                arrive=None if arrive is None else arrive + copy * 1.5,
            )

    def run_start(self, t: float, bus: str, run_id: str | None = None, **kw: Any) -> None:
        body: dict[str, Any] = {"type": "run_start"}
        if run_id:
            body["run_id"] = run_id
        self.event(t, f"{bus}-gps", body, **kw)

    def run_end(self, t: float, bus: str, run_id: str | None = None, **kw: Any) -> None:
        body: dict[str, Any] = {"type": "run_end"}
        if run_id:
            body["run_id"] = run_id
        self.event(t, f"{bus}-gps", body, **kw)

    def sweep(
        self, t: float, bus: str, reads: list[tuple[str, float]], sweep_id: str = "s1", **kw: Any
    ) -> None:
        for i, (tag, rssi) in enumerate(reads):
            body = {"type": "sweep_read", "sweep_id": sweep_id, "tag": tag, "rssi": rssi}
            self.event(t + 0.1 * i, f"{bus}-cabin", body, **kw)
        body2 = {"type": "sweep_complete", "sweep_id": sweep_id, "reads": len(reads)}
        self.event(t + 0.1 * len(reads) + 0.5, f"{bus}-cabin", body2, **kw)

    def walkthrough(self, t: float, bus: str, **kw: Any) -> None:
        self.event(t, f"{bus}-gps", {"type": "walkthrough_check"}, **kw)

    def occupancy(self, t: float, bus: str, people: int, **kw: Any) -> None:
        self.event(t, f"{bus}-cam", {"type": "occupancy", "people": people}, **kw)

    def ack(self, t: float, fingerprint: str, by: str = "op-1", reason: str = "checked") -> None:
        self.lines.append(
            json.dumps(
                {
                    "at": iso(at(t)),
                    "ack": {"fingerprint": fingerprint, "by": by, "reason": reason},
                }
            )
        )

    def morning(
        self,
        bus: str = "bus-1",
        *,
        boarding: dict[str, list[str]] | None = None,
        alighting: list[str] | None = None,
        end: float = 1800.0,
        sweep: list[tuple[str, float]] | None = None,
    ) -> float:
        """A morning run: on at the depot, stops, the school, back; ends at ``end``.

        ``boarding`` maps a stop to the tags that board there (read once, in); those in
        ``alighting`` get off at school (read once, out). The cabin scanner sweeps 10 s
        after the end and hears ``sweep`` (nothing by default). Returns the end's time.
        """
        if boarding is None:
            boarding = {"stop-a": ["TAG-ANN", "TAG-BEN"], "stop-b": ["TAG-CID"]}
        if alighting is None:
            alighting = [tag for tags in boarding.values() for tag in tags]
        self.ignition(0, bus, True)
        self.run_start(5, bus)
        self.fixes(0, 60, bus, "depot-1")
        t = 300.0
        for stop, tags in boarding.items():
            self.fixes(t - 30, t + 60, bus, stop)
            for i, tag in enumerate(tags):
                self.door(t + 5 * i, bus, tag, "in")
            t += 300
        self.fixes(900, 1000, bus, "school-1")
        for i, tag in enumerate(alighting):
            self.door(920 + 4 * i, bus, tag, "out")
        self.fixes(end - 60, end + 30, bus, "depot-1")
        self.run_end(end, bus)
        self.ignition(end + 20, bus, False)
        self.sweep(end + 10, bus, sweep or [])
        return end

    def items(self) -> list[ReplayItem]:
        parsed = [parse_line(line, n) for n, line in enumerate(self.lines, start=1)]
        return sorted(parsed, key=lambda item: (item.at, item.number))

    def run(self, rules: BusRules | None = None, tail_s: float = 3600.0) -> Notes:
        result = replay(fleet(), rules or BusRules(), self.items(), tail=timedelta(seconds=tail_s))
        assert not result.errors, result.errors
        return Notes(result.notifications)


@dataclass
class Notes:
    """Notifications of a test run, with the questions tests ask of them."""

    all: list[Notification]

    def of(
        self,
        kind: NotificationKind,
        tag: str | None = "*",
        state: NotificationState | None = None,
    ) -> list[Notification]:
        """Notifications of a kind, about ``tag`` ("*": any, None: no tag), in a state."""
        return [
            n
            for n in self.all
            if n.kind is kind
            and (tag == "*" or n.child_tag == tag)
            and (state is None or n.state is state)
        ]

    def alerts(self) -> list[Notification]:
        return [n for n in self.all if not n.is_notice]

    def kinds(self) -> list[tuple[str, str, str | None]]:
        return [(n.kind.value, n.state.value, n.child_tag) for n in self.alerts()]


def roles(notification: Notification) -> set[str]:
    return {r.role.value for r in notification.recipients}


def guardians(notification: Notification) -> set[str]:
    return {r.id for r in notification.recipients if r.role is RecipientRole.GUARDIAN}


def seconds_after(notification: Notification, t: float) -> float:
    return (notification.time - at(t)).total_seconds()
