"""The motion gate: a moving figure is found where it moves, never under a mask, and a
still (noisy) scene has none."""

from __future__ import annotations

from iotmon_video.cameras import MotionConfig
from iotmon_video.motion import Motion, MotionDetector, detection_region
from tests.services.video.support import HEIGHT, WIDTH, linear, person, walk


def run(config: MotionConfig, xs: list[int]) -> list[Motion]:
    detector = MotionDetector(config)
    figure = person(150) if xs else None
    frames = walk(xs or [0] * 20, figure)
    return [detector.detect(frame) for frame in frames]


def test_a_moving_figure_is_found_where_it_is() -> None:
    found = run(MotionConfig(), [40] * 8 + linear(40, 500, 12))
    moving = found[-1]
    assert moving.regions
    assert moving.ratio > 0
    region = detection_region(moving.regions, WIDTH, HEIGHT, 64)
    assert region.x1 <= 500 <= region.x2


def test_a_still_noisy_scene_has_no_motion() -> None:
    assert all(not m.regions for m in run(MotionConfig(), []))


def test_masked_areas_never_count() -> None:
    right_half = [[0.45, 0.0], [1.0, 0.0], [1.0, 1.0], [0.45, 1.0]]
    xs = [40] * 8 + linear(300, 560, 12)  # jumps into the right half and moves there
    unmasked = run(MotionConfig(), xs)
    masked = run(MotionConfig(masks=[right_half]), xs)
    assert any(m.regions for m in unmasked[9:])
    assert all(not m.regions for m in masked[9:])
