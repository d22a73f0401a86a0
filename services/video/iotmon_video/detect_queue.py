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

    def __init__(self, detector: Detector, workers: int = 1, batch: int = 1) -> None:
        self._detector = detector
        self._workers = workers
        self._batch = batch
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
            first = self._queue.get()
            if first is _STOP:
                return
            jobs = [first]
            # Whatever else is waiting goes into the same call (up to the batch size):
            # one inference for many cameras is where a GPU earns its keep.
            while len(jobs) < self._batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                jobs.append(more)
            self._serve([job for job in jobs if isinstance(job, DetectionJob)])

    def _serve(self, jobs: list[DetectionJob]) -> None:
        started = time.perf_counter()
        found: list[list[Detection] | None]
        try:
            batches = self._detector.detect_many([job.crop for job in jobs])
            found = [
                [d.shifted(job.offset_x, job.offset_y) for d in detections]
                for job, detections in zip(jobs, batches, strict=True)
            ]
        except Exception:
            logger.exception("detection failed for %s", ", ".join(job.camera for job in jobs))
            found = [None] * len(jobs)
        done = time.perf_counter()
        for job, detections in zip(jobs, found, strict=True):
            try:
                job.deliver(
                    DetectionResult(
                        job, detections, (done - started) / len(jobs), done - job.submitted
                    )
                )
            except Exception:
                logger.exception("camera %s: detection result not taken", job.camera)
