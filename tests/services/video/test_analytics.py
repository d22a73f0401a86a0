"""Zone, line, loitering, crowding and cabin analytics, and the tracker, on made-up tracks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from iotmon_contract import Direction
from iotmon_runtime.config_files import ConfigError, parse_yaml_model
from iotmon_video.analytics import (
    CabinOccupancy,
    CameraAnalytics,
    Crowding,
    Finding,
    Intrusion,
    LineCrossing,
    Loitering,
    NewObject,
)
from iotmon_video.cameras import CameraConfig, ScheduleConfig, VideoConfig
from iotmon_video.detectors.base import Detection
from iotmon_video.tracking import TrackedObject, Tracker

WALL = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)


def camera(**extra: object) -> CameraConfig:
    return CameraConfig.model_validate(
        {"id": "cam-1", "source": {"type": "file", "path": "x.avi"}, **extra}
    )


def obj(track_id: int, x: float, label: str = "person", width: float = 0.1) -> TrackedObject:
    """An object whose feet are at (x, 0.9)."""
    return TrackedObject(track_id, label, 0.9, (x - width / 2, 0.5, x + width / 2, 0.9), 0.0, True)


def run(
    analytics: CameraAnalytics, frames: list[list[TrackedObject]], dt: float = 0.2
) -> list[Finding]:
    found: list[Finding] = []
    for index, objects in enumerate(frames):
        found += analytics.update(objects, index * dt, WALL + timedelta(seconds=index * dt))
    return found


def test_a_line_counts_each_direction_once_per_crossing() -> None:
    cam = camera(lines=[{"name": "door", "start": [0.5, 1.0], "end": [0.5, 0.0]}])
    analytics = CameraAnalytics(cam)
    right = [[obj(1, x)] for x in (0.2, 0.4, 0.6, 0.8)]
    back = [[obj(1, x)] for x in (0.7, 0.45, 0.3)]
    other = [[obj(2, x)] for x in (0.3, 0.7)]
    crossings = [f for f in run(analytics, right + back + other) if isinstance(f, LineCrossing)]
    assert [(c.direction, c.count_in, c.count_out) for c in crossings] == [
        (Direction.IN, 1, 0),
        (Direction.OUT, 1, 1),
        (Direction.IN, 2, 1),
    ]
    assert analytics.counts == {"door": (2, 1)}


def test_passing_beside_the_end_of_a_line_is_no_crossing() -> None:
    cam = camera(lines=[{"name": "door", "start": [0.5, 0.0], "end": [0.5, 0.5]}])
    found = run(CameraAnalytics(cam), [[obj(1, x)] for x in (0.2, 0.8)])
    assert not [f for f in found if isinstance(f, LineCrossing)]


def test_intrusion_once_per_entry_loitering_after_its_time_crowding_over_the_limit() -> None:
    zone = {
        "name": "yard",
        "polygon": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]],
        "intrusion": {},
        "loiter_s": 1.0,
        "crowd_limit": 1,
    }
    analytics = CameraAnalytics(camera(zones=[zone]))
    frames = [[obj(1, 0.3)], [obj(1, 0.7)]] + [[obj(1, 0.7)]] * 6 + [[obj(1, 0.7), obj(2, 0.8)]]
    found = run(analytics, frames)
    assert [f.obj.track_id for f in found if isinstance(f, Intrusion)] == [1, 2]
    loiter = [f for f in found if isinstance(f, Loitering)]
    assert [(f.obj.track_id, f.zone) for f in loiter] == [(1, "yard")]
    assert loiter[0].dwell_s > 1.0
    assert [(f.count, f.limit) for f in found if isinstance(f, Crowding)] == [(2, 1)]
    assert [f.obj.track_id for f in found if isinstance(f, NewObject)] == [1, 2]


def test_an_intrusion_rule_with_a_schedule_is_armed_only_in_its_window() -> None:
    zone = {
        "name": "yard",
        "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
        "intrusion": {"schedule": {"start": "18:00", "end": "06:30"}},
    }
    night = CameraAnalytics(camera(zones=[zone])).update([obj(1, 0.5)], 0.0, WALL)
    noon = CameraAnalytics(camera(zones=[zone])).update([obj(1, 0.5)], 0.0, WALL.replace(hour=12))
    assert any(isinstance(f, Intrusion) for f in night)
    assert not any(isinstance(f, Intrusion) for f in noon)


@pytest.mark.parametrize(
    ("when", "armed"),
    [
        (datetime(2026, 11, 27, 23, 0, tzinfo=UTC), True),  # Friday night
        (datetime(2026, 11, 28, 3, 0, tzinfo=UTC), True),  # Saturday small hours: Friday's
        (datetime(2026, 11, 29, 3, 0, tzinfo=UTC), False),  # Sunday small hours: Saturday's
        (datetime(2026, 11, 27, 12, 0, tzinfo=UTC), False),
    ],
)
def test_overnight_windows_belong_to_the_day_they_open(when: datetime, armed: bool) -> None:
    schedule = ScheduleConfig.model_validate(
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "18:00", "end": "06:30"}
    )
    assert schedule.armed(when) is armed


def test_cabin_occupancy_only_while_parked_and_on_change() -> None:
    analytics = CameraAnalytics(camera(cabin={"vehicle": "bus-12", "report_interval_s": 10}))
    assert run(analytics, [[obj(1, 0.5)]]) == [NewObject(obj(1, 0.5), None)]
    analytics.set_parked(True)
    found = [
        f
        for f in run(analytics, [[obj(1, 0.5)], [obj(1, 0.5)], [obj(1, 0.5), obj(2, 0.2)], []])
        if isinstance(f, CabinOccupancy)
    ]
    assert [(f.vehicle, f.people) for f in found] == [("bus-12", 1), ("bus-12", 2), ("bus-12", 0)]


def test_the_tracker_keeps_an_id_through_dropped_frames_and_a_confidence_dip() -> None:
    tracker = Tracker(camera().track, 640, 360, high=0.5)
    ids = set()
    for step, (x, score) in enumerate([(100, 0.9), (130, 0.9), (190, 0.3), (250, 0.8)]):
        at = [0.0, 0.2, 0.6, 1.0][step]
        objects = tracker.update([Detection("person", score, x, 100, x + 60, 300)], at)
        ids |= {o.track_id for o in objects}
    assert ids == {1}


def test_bad_camera_yaml_names_the_key_and_the_line() -> None:
    text = (
        "tenant: acme\n"
        "cameras:\n"
        "  - id: gate\n"
        "    source: {type: file, path: a.avi}\n"
        "    zones:\n"
        "      - name: yard\n"
        "        polygon: [[0, 0], [1, 0]]\n"
    )
    with pytest.raises(ConfigError) as error:
        parse_yaml_model(text, VideoConfig, source="video.yaml")
    assert "video.yaml: cameras.0.zones.0.polygon:" in str(error.value)
    assert "(line 7)" in str(error.value)
    with pytest.raises(ConfigError, match=r"cameras\.0\.source\.type"):
        parse_yaml_model(
            "tenant: acme\ncameras:\n  - {id: x, source: {type: ftp}}\n", VideoConfig, "v.yaml"
        )
