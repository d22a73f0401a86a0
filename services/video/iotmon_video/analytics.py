"""Zone, line and cabin analytics: tracked objects of one frame in, findings out.

Pure logic, no I/O: ``CameraAnalytics.update`` takes the confirmed tracks of a frame
and its time and returns what happened, as named records the pipeline turns into
contract events. One instance per camera; not thread-safe except ``set_parked``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from iotmon_contract import Direction
from iotmon_video.cameras import Anchor, CameraConfig, LineConfig, ZoneConfig
from iotmon_video.geometry import Point, inside, segments_cross, side
from iotmon_video.tracking import TrackedObject


@dataclass(frozen=True, slots=True)
class NewObject:
    """A track was confirmed: a detection event."""

    obj: TrackedObject
    zone: str | None


@dataclass(frozen=True, slots=True)
class Intrusion:
    zone: str
    obj: TrackedObject


@dataclass(frozen=True, slots=True)
class LineCrossing:
    line: str
    direction: Direction
    obj: TrackedObject
    count_in: int
    count_out: int


@dataclass(frozen=True, slots=True)
class Loitering:
    zone: str
    obj: TrackedObject
    dwell_s: float


@dataclass(frozen=True, slots=True)
class Crowding:
    zone: str | None
    label: str
    count: int
    limit: int


@dataclass(frozen=True, slots=True)
class CabinOccupancy:
    vehicle: str
    zone: str | None
    people: int
    confidence: float | None


Finding = NewObject | Intrusion | LineCrossing | Loitering | Crowding | CabinOccupancy


def anchor_of(obj: TrackedObject, anchor: Anchor) -> Point:
    x1, y1, x2, y2 = obj.box
    if anchor is Anchor.CENTER:
        return ((x1 + x2) / 2, (y1 + y2) / 2)
    return ((x1 + x2) / 2, y2)


@dataclass(slots=True)
class _LineState:
    config: LineConfig
    count_in: int = 0
    count_out: int = 0
    last: dict[int, Point] = field(default_factory=dict)


@dataclass(slots=True)
class _ZoneState:
    config: ZoneConfig
    entered: dict[int, float] = field(default_factory=dict)
    """Track id → time it entered (while inside)."""
    loitered: set[int] = field(default_factory=set)
    crowded: bool = False


class CameraAnalytics:
    def __init__(self, camera: CameraConfig) -> None:
        self._camera = camera
        self._zones = [_ZoneState(zone) for zone in camera.zones]
        self._lines = [_LineState(line) for line in camera.lines]
        self._announced: set[int] = set()
        self._parked = False
        self._parked_lock = threading.Lock()
        self._cabin_people = 0
        self._cabin_reported_at: float | None = None

    # -- the vehicle's state, from its events (MQTT thread) -------------------------

    def set_parked(self, parked: bool) -> None:
        with self._parked_lock:
            self._parked = parked

    @property
    def parked(self) -> bool:
        with self._parked_lock:
            return self._parked

    @property
    def counts(self) -> dict[str, tuple[int, int]]:
        """Line name → (in, out) since start."""
        return {s.config.name: (s.count_in, s.count_out) for s in self._lines}

    # -- one frame ---------------------------------------------------------------------

    def update(self, objects: Sequence[TrackedObject], at: float, wall: datetime) -> list[Finding]:
        """Findings of one frame; ``at`` is monotonic seconds, ``wall`` the frame's time."""
        findings: list[Finding] = []
        anchors = {obj.track_id: anchor_of(obj, self._camera.anchor) for obj in objects}
        zones_of: dict[int, list[str]] = {obj.track_id: [] for obj in objects}
        for state in self._zones:
            findings.extend(self._zone(state, objects, anchors, zones_of, at, wall))
        for line in self._lines:
            findings.extend(self._line(line, objects, anchors))
        for obj in objects:
            if obj.track_id not in self._announced:
                self._announced.add(obj.track_id)
                zones = zones_of.get(obj.track_id)
                findings.insert(0, NewObject(obj, zones[0] if zones else None))
        live = {obj.track_id for obj in objects}
        self._announced &= live
        if self._camera.cabin is not None:
            findings.extend(self._cabin(objects, zones_of, at))
        return findings

    def _zone(
        self,
        state: _ZoneState,
        objects: Sequence[TrackedObject],
        anchors: dict[int, Point],
        zones_of: dict[int, list[str]],
        at: float,
        wall: datetime,
    ) -> list[Finding]:
        zone = state.config
        found: list[Finding] = []
        inside_now: dict[int, TrackedObject] = {}
        for obj in objects:
            if inside(anchors[obj.track_id], zone.polygon):
                inside_now[obj.track_id] = obj
                zones_of[obj.track_id].append(zone.name)
        for track_id, obj in inside_now.items():
            if track_id not in state.entered:
                state.entered[track_id] = at
                rule = zone.intrusion
                armed = rule is not None and (rule.schedule is None or rule.schedule.armed(wall))
                if rule is not None and armed and obj.label in rule.labels:
                    found.append(Intrusion(zone.name, obj))
            dwell = at - state.entered[track_id]
            if (
                zone.loiter_s is not None
                and dwell > zone.loiter_s
                and track_id not in state.loitered
                and obj.label in zone.loiter_labels
            ):
                state.loitered.add(track_id)
                found.append(Loitering(zone.name, obj, dwell))
        for track_id in list(state.entered):
            if track_id not in inside_now:
                del state.entered[track_id]
                state.loitered.discard(track_id)
        if zone.crowd_limit is not None:
            count = sum(1 for obj in inside_now.values() if obj.label == zone.crowd_label)
            if count > zone.crowd_limit and not state.crowded:
                state.crowded = True
                found.append(Crowding(zone.name, zone.crowd_label, count, zone.crowd_limit))
            elif count <= zone.crowd_limit:
                state.crowded = False
        return found

    def _line(
        self, state: _LineState, objects: Sequence[TrackedObject], anchors: dict[int, Point]
    ) -> list[Finding]:
        line = state.config
        found: list[Finding] = []
        for obj in objects:
            if obj.label not in line.labels:
                continue
            now = anchors[obj.track_id]
            before = state.last.get(obj.track_id)
            state.last[obj.track_id] = now
            if before is None:
                continue
            was, is_ = side(before, line.start, line.end), side(now, line.start, line.end)
            if was == 0 or is_ == 0 or (was > 0) == (is_ > 0):
                continue
            if not segments_cross(before, now, line.start, line.end):
                continue
            if is_ > 0:
                state.count_in += 1
                direction = Direction.IN
            else:
                state.count_out += 1
                direction = Direction.OUT
            found.append(LineCrossing(line.name, direction, obj, state.count_in, state.count_out))
        live = {obj.track_id for obj in objects}
        for track_id in list(state.last):
            if track_id not in live:
                del state.last[track_id]
        return found

    def _cabin(
        self, objects: Sequence[TrackedObject], zones_of: dict[int, list[str]], at: float
    ) -> list[Finding]:
        cabin = self._camera.cabin
        assert cabin is not None
        if not self.parked:
            self._cabin_people = 0
            self._cabin_reported_at = None
            return []
        people = [
            obj
            for obj in objects
            if obj.label == "person"
            and (cabin.zone is None or cabin.zone in zones_of[obj.track_id])
        ]
        count = len(people)
        due = (
            count > 0
            and self._cabin_reported_at is not None
            and at - self._cabin_reported_at >= cabin.report_interval_s
        )
        if count == self._cabin_people and not due:
            return []
        self._cabin_people = count
        self._cabin_reported_at = at
        best = max((p.confidence for p in people), default=None)
        return [CabinOccupancy(cabin.vehicle, cabin.zone, count, best)]


def label_counts(objects: Sequence[TrackedObject]) -> Counter[str]:
    return Counter(obj.label for obj in objects)
