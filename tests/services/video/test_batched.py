"""The batched path (letterbox, normalisation and NMS in torch, many frames per call)
on this machine's CPU: what CI has. It must find what the plain detector finds."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest
import torch

from iotmon_video.capture import Frame
from iotmon_video.detect_queue import DetectionJob, DetectionResult, DetectorPool
from iotmon_video.detectors import Detection, Detector, create_detector
from iotmon_video.detectors.base import Image
from iotmon_video.detectors.batched import BatchedOnnxDetector, nms
from iotmon_video.detectors.config import BatchedOnnxDetectorConfig, OnnxDetectorConfig
from iotmon_video.detectors.yolo import nms as cv2_nms
from tests.services.video.support import photo, weights


def _strong(found: list[Detection]) -> list[tuple[str, tuple[float, ...], float]]:
    return sorted(
        (d.label, (d.x1, d.y1, d.x2, d.y2), d.confidence) for d in found if d.confidence >= 0.5
    )


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


@pytest.fixture(scope="module")
def batched() -> BatchedOnnxDetector:
    # cuda:0 is asked for; with no GPU here it must fall back to the CPU, not fail.
    detector = create_detector(
        BatchedOnnxDetectorConfig(type="onnx_batched", model=weights(), device="cuda:0")
    )
    assert isinstance(detector, BatchedOnnxDetector)
    return detector


def test_a_missing_gpu_falls_back_to_the_cpu(batched: BatchedOnnxDetector) -> None:
    assert batched.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_one_batch_of_several_cameras_finds_what_the_plain_detector_finds(
    batched: BatchedOnnxDetector,
) -> None:
    plain = create_detector(OnnxDetectorConfig(type="onnx", model=weights()))
    assert plain is not None
    bus, zidane = photo("bus.jpg"), photo("zidane.jpg")
    small = cv2.resize(bus, (405, 540))
    images = [bus, zidane, small]
    together = batched.detect_many(images)
    assert len(together) == 3
    for image, found in zip(images, together, strict=True):
        expected = _strong(plain.detect(image))
        got = _strong(found)
        assert [label for label, _, _ in got] == [label for label, _, _ in expected]
        for (_, box, score), (_, want_box, want_score) in zip(got, expected, strict=True):
            # Resizing differs a little between torch and OpenCV (fixed-point rounding),
            # and the int8 model amplifies it: the same box, within a few pixels.
            assert _iou(box, want_box) > 0.95, (box, want_box)
            assert score == pytest.approx(want_score, abs=0.03)
    labels = [d.label for d in together[0] if d.confidence >= 0.5]
    assert sorted(labels) == ["bus", "person", "person", "person"]


def test_torch_nms_keeps_what_opencv_keeps() -> None:
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 500, (300, 2)).astype(np.float32)
    wh = rng.uniform(10, 120, (300, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.uniform(0.1, 1.0, 300).astype(np.float32)
    classes = rng.integers(0, 3, 300)
    expected = cv2_nms(boxes, scores, classes, 0.45)
    offset = torch.from_numpy(classes)[:, None].float() * 8192.0
    kept = nms(torch.from_numpy(boxes) + offset, torch.from_numpy(scores), 0.45)
    assert kept.tolist() == expected


class _Counting(Detector):
    """The real detector, with its batch calls counted."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.calls: list[int] = []

    @property
    def labels(self) -> Sequence[str]:
        return self.inner.labels

    def detect(self, image: Image) -> list[Detection]:
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[Image]) -> list[list[Detection]]:
        self.calls.append(len(images))
        return self.inner.detect_many(images)


def test_the_pool_puts_waiting_cameras_into_one_call(batched: BatchedOnnxDetector) -> None:
    counting = _Counting(batched)
    pool = DetectorPool(counting, workers=1, batch=8)
    results: list[DetectionResult] = []
    done = threading.Event()

    def deliver(result: DetectionResult) -> None:
        results.append(result)
        if len(results) == 4:
            done.set()

    bus = photo("bus.jpg")
    frame = Frame(bus, 0, 0.0, datetime.now(UTC))
    for index in range(4):  # queued before the worker starts: all wait together
        pool.submit(DetectionJob(f"cam-{index}", frame, bus, 10 * index, 0, 0.0, deliver))
    pool.start()
    try:
        assert done.wait(120)
    finally:
        pool.stop()
    assert counting.calls == [4]
    shifts = {r.job.camera: r.detections for r in results}
    base = min(d.x1 for d in shifts["cam-0"] or [] if d.label == "bus")
    assert min(d.x1 for d in shifts["cam-3"] or [] if d.label == "bus") == pytest.approx(base + 30)
