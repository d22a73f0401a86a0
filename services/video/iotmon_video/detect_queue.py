"""The shared detector, fed by every camera through one queue (Frigate's shape).

A camera submits at most one job at a time and goes on with its next frames (motion,
clips) while the job waits and runs, so a slow detector delays object events instead
of stalling capture: frames are then dropped by no one. How long a job waited and ran
is reported per camera (``video_detect_latency_ms``); cameras wanting a detection
while theirs is in flight skip it (``video_detect_skipped``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from iotmon_video.capture import Frame
from iotmon_video.detectors.base import Detection, Detector, Image

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DetectionJob:
    camera: str
    frame: Frame
    crop: Image
    offset_x: int
    offset_y: int
    submitted: float
    deliver: Callable[[DetectionResult], None]


@dataclass(frozen=True, slots=True)
class DetectionResult:
    job: DetectionJob
    detections: list[Detection] | None
    """None when the detector failed on this job (logged)."""
    inference_s: float
    latency_s: float
    """From submission to result: queueing plus inference."""


_STOP = object()


class DetectorPool:
    """Worker threads sharing one detector; ``start``/``stop`` like every worker."""

    def __init__(self, detector: Detector, workers: int = 1) -> None:
        self._detector = detector
        self._workers = workers
        self._queue: queue.Queue[object] = queue.Queue()
        self._threads: list[threading.Thread] = []

    @property
    def detector(self) -> Detector:
        return self._detector

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        for index in range(self._workers):
            thread = threading.Thread(target=self._run, name=f"detector-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    def submit(self, job: DetectionJob) -> None:
        self._queue.put(job)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            assert isinstance(job, DetectionJob)
            started = time.perf_counter()
            detections: list[Detection] | None
            try:
                detections = [
                    d.shifted(job.offset_x, job.offset_y) for d in self._detector.detect(job.crop)
                ]
            except Exception:
                logger.exception("camera %s: detection failed", job.camera)
                detections = None
            done = time.perf_counter()
            try:
                job.deliver(DetectionResult(job, detections, done - started, done - job.submitted))
            except Exception:
                logger.exception("camera %s: detection result not taken", job.camera)
