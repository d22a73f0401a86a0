"""The onnx detector on a real photo: the people and the bus of Ultralytics' bus.jpg."""

from __future__ import annotations

import pytest

from iotmon_video.detectors import DetectorUnavailable, create_detector
from iotmon_video.detectors.config import NoDetectorConfig, OnnxDetectorConfig
from tests.services.video.support import photo, weights


def test_finds_the_people_and_the_bus_in_bus_jpg() -> None:
    detector = create_detector(OnnxDetectorConfig(type="onnx", model=weights()))
    assert detector is not None
    found = [d for d in detector.detect(photo("bus.jpg")) if d.confidence >= 0.5]
    people = sorted((d for d in found if d.label == "person"), key=lambda d: d.x1)
    buses = [d for d in found if d.label == "bus"]
    assert len(people) == 3, found
    assert len(buses) == 1, found
    # Where they are (the README's reference run): left, middle and right person.
    for person, (x1, y1, x2, y2) in zip(
        people, [(50, 398, 244, 903), (221, 408, 343, 856), (672, 372, 810, 879)], strict=True
    ):
        assert (person.x1, person.y1, person.x2, person.y2) == pytest.approx(
            (x1, y1, x2, y2), abs=12
        )
    assert buses[0].x1 < 60
    assert buses[0].x2 > 760
    assert buses[0].confidence > 0.7


def test_missing_weights_say_so_and_name_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nope.onnx"
    with pytest.raises(DetectorUnavailable, match=r"weights not found: .*nope\.onnx"):
        create_detector(OnnxDetectorConfig(type="onnx", model=missing))
    assert create_detector(NoDetectorConfig(type="none")) is None
