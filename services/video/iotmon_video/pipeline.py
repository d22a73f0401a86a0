"""One camera's pipeline: capture → motion gate → detection → tracking → analytics →
events with snapshots and clips, plus its metrics.

Two threads per camera: capture (``capture.Capture``) and processing (here). When
processing falls behind, capture's one-slot mailbox drops the older frame and counts
it: the pipeline is never behind the camera by more than one frame, and says how many
it skipped in ``video_dropped_frames``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from iotmon_contract import (
    CrowdingEvent,
    DetectionEvent,
    IntrusionEvent,
    LineCrossEvent,
    LoiteringEvent,
    OccupancyEvent,
)
from iotmon_contract.events import EventEnvelope
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
from iotmon_video.cameras import CameraConfig, FileSource
from iotmon_video.capture import Capture, Frame, LatestFrame
from iotmon_video.detect_queue import DetectionJob, DetectionResult, DetectorPool
from iotmon_video.detectors.base import Detection, Detector, Image
from iotmon_video.media import ClipRecorder, MediaStore, media_name, render
from iotmon_video.motion import NO_MOTION, MotionDetector, Region, detection_region
from iotmon_video.outputs import EventSink
from iotmon_video.tracking import TrackedObject, Tracker

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MetricsWindow:
    """One camera's figures over the last interval."""

    input_fps: float
    processed_fps: float
    detect_fps: float
    inference_ms: float | None
    dropped_frames: int
    motion_ratio: float
    tracked_objects: int
    source_up: bool
    detect_latency_ms: float | None = None
    """Submission to result: waiting for the shared detector plus inference."""
    detect_skipped: int = 0
    """Frames that wanted a detection while this camera's last one was still pending."""

    def as_readings(self) -> dict[str, float]:
        values = {
            "video_input_fps": self.input_fps,
            "video_processed_fps": self.processed_fps,
            "video_detect_fps": self.detect_fps,
            "video_dropped_frames": float(self.dropped_frames),
            "video_motion_ratio": self.motion_ratio,
            "video_tracked_objects": float(self.tracked_objects),
            "video_source_up": 1.0 if self.source_up else 0.0,
        }
        if self.inference_ms is not None:
            values["video_inference_ms"] = self.inference_ms
        if self.detect_latency_ms is not None:
            values["video_detect_latency_ms"] = self.detect_latency_ms
        values["video_detect_skipped"] = float(self.detect_skipped)
        return values


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.since = time.monotonic()
        self.processed = 0
        self.detections = 0
        self.inference_s = 0.0
        self.latency_s = 0.0
        self.skipped = 0
        self.motion_sum = 0.0
        self.tracked = 0
        self.frames_in_at_start = 0
        self.dropped_at_start = 0
        # Since the start, never reset (Prometheus counters; the windows above reset)
        self.detections_total = 0
        self.skipped_total = 0
        self.inference_total_s = 0.0


@dataclass(frozen=True, slots=True)
class CameraTotals:
    """One camera's counts since the service started (for /metrics)."""

    frames_in: int
    frames_processed: int
    dropped_frames: int
    detections: int
    detect_skipped: int
    inference_s: float
    tracked_objects: int
    source_up: bool


ErrorListener = Callable[[str, str | None], None]


class CameraPipeline:
    """Worker for one camera: ``start`` its threads, ``stop`` them."""

    def __init__(
        self,
        camera: CameraConfig,
        detector: Detector | None,
        outputs: EventSink,
        media: MediaStore,
        stop_event: threading.Event | None = None,
        pool: DetectorPool | None = None,
    ) -> None:
        self._camera = camera
        self._detector = detector
        self._outputs = outputs
        self._media = media
        self._stop = stop_event or threading.Event()
        self._own_stop = threading.Event()
        self._mailbox = LatestFrame()
        self._capture = Capture(camera, self._mailbox, self._on_source_state, self._own_stop)
        self._motion = MotionDetector(camera.motion)
        self.analytics = CameraAnalytics(camera)
        self._tracker: Tracker | None = None
        self._clips = (
            ClipRecorder(camera.clips, camera.fps, camera.blur_people)
            if camera.clips.enabled
            else None
        )
        self._counters = _Counters()
        self._thread: threading.Thread | None = None
        self._source_up = False
        self._last_error: str | None = None
        self._last_detect_at: float | None = None
        self._pool = pool
        # Recorded footage is analysed frame by frame (nothing may be skipped); live
        # sources hand detection to the shared pool and go on.
        source = camera.source
        self._realtime = not isinstance(source, FileSource) or source.realtime
        self._in_flight = False
        self._results: queue.SimpleQueue[DetectionResult] = queue.SimpleQueue()
        self._objects: list[TrackedObject] = []
        self.frames_processed = 0
        self.events_published = 0
        self.errors = 0

    @property
    def camera(self) -> CameraConfig:
        return self._camera

    @property
    def source_up(self) -> bool:
        return self._source_up

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def capture(self) -> Capture:
        return self._capture

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"pipeline-{self._camera.id}", daemon=True
        )
        self._thread.start()
        self._capture.start()

    def stop(self) -> None:
        self._own_stop.set()
        self._capture.stop()
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._clips is not None:
            self._clips.close()

    # -- source state (capture thread) ----------------------------------------------

    def _on_source_state(self, up: bool, error: str | None) -> None:
        was_up, previous = self._source_up, self._last_error
        self._source_up = up
        self._last_error = error
        try:
            if up and not was_up:
                logger.info("camera %s: source up", self._camera.id)
                self._outputs.camera_state(self._camera.id, True)
                if previous is not None:
                    self._outputs.fault(self._camera.id, "source_unavailable", None, cleared=True)
            elif not up and error is None:
                logger.info("camera %s: end of file", self._camera.id)
                self._outputs.camera_state(self._camera.id, False)
            elif not up and (was_up or previous != error):
                logger.error("camera %s: %s", self._camera.id, error)
                self._outputs.camera_state(self._camera.id, False)
                self._outputs.fault(self._camera.id, "source_unavailable", error)
        except Exception:
            logger.exception("camera %s: cannot report source state", self._camera.id)

    # -- metrics ---------------------------------------------------------------------

    def metrics(self) -> MetricsWindow:
        """Figures since the last call (then starts a new window)."""
        c = self._counters
        with c.lock:
            now = time.monotonic()
            elapsed = max(now - c.since, 1e-6)
            frames_in = self._capture.frames_in
            dropped = self._mailbox.dropped
            window = MetricsWindow(
                input_fps=(frames_in - c.frames_in_at_start) / elapsed,
                processed_fps=c.processed / elapsed,
                detect_fps=c.detections / elapsed,
                inference_ms=(c.inference_s / c.detections * 1000) if c.detections else None,
                detect_latency_ms=(c.latency_s / c.detections * 1000) if c.detections else None,
                detect_skipped=c.skipped,
                dropped_frames=dropped - c.dropped_at_start,
                motion_ratio=c.motion_sum / c.processed if c.processed else 0.0,
                tracked_objects=c.tracked,
                source_up=self._source_up,
            )
            c.since, c.processed, c.detections, c.inference_s, c.motion_sum = now, 0, 0, 0.0, 0.0
            c.latency_s, c.skipped = 0.0, 0
            c.frames_in_at_start, c.dropped_at_start = frames_in, dropped
            return window

    def totals(self) -> CameraTotals:
        """Counts since the start (read from another thread: under the counters' lock)."""
        c = self._counters
        with c.lock:
            return CameraTotals(
                frames_in=self._capture.frames_in,
                frames_processed=self.frames_processed,
                dropped_frames=self._mailbox.dropped,
                detections=c.detections_total,
                detect_skipped=c.skipped_total,
                inference_s=c.inference_total_s,
                tracked_objects=c.tracked,
                source_up=bool(self._source_up),
            )

    @property
    def dropped_frames(self) -> int:
        return self._mailbox.dropped

    # -- processing thread -----------------------------------------------------------

    def _run(self) -> None:
        while not (self._stop.is_set() or self._own_stop.is_set()):
            frame = self._mailbox.take(timeout=0.25)
            if frame is None:
                try:
                    self._take_results()  # a source that paused still gets its last result
                except Exception:
                    self.errors += 1
                    logger.exception("camera %s: detection result failed", self._camera.id)
                continue
            try:
                self.process(frame)
            except Exception:
                self.errors += 1
                logger.exception("camera %s: frame %d failed", self._camera.id, frame.index)

    def process(self, frame: Frame) -> list[Finding]:
        """Run one frame through the pipeline; returns the findings it brought (those of a
        detection submitted earlier included)."""
        image = frame.image
        height, width = image.shape[:2]
        if self._tracker is None:
            self._tracker = Tracker(
                self._camera.track, width, height, high=self._camera.detect.min_confidence
            )
        motion = self._motion.detect(image) if self._camera.motion.enabled else NO_MOTION
        findings = self._take_results()
        if self._detector is not None and self._should_detect(motion.regions, frame.at):
            crop, x, y = self._crop(image, motion.regions)
            if self._pool is None or not self._realtime:
                started = time.perf_counter()
                found = self._detector.detect(crop)
                elapsed = time.perf_counter() - started
                self._count_detection(elapsed, elapsed)
                self._last_detect_at = frame.at
                findings += self._apply(frame, [d.shifted(x, y) for d in found])
            elif self._in_flight:
                with self._counters.lock:
                    self._counters.skipped += 1
                    self._counters.skipped_total += 1
            else:
                self._in_flight = True
                self._last_detect_at = frame.at
                self._pool.submit(
                    DetectionJob(
                        self._camera.id, frame, crop, x, y, time.perf_counter(), self._results.put
                    )
                )
        with self._counters.lock:
            self._counters.processed += 1
            self._counters.motion_sum += motion.ratio
            self._counters.tracked = len(self._objects)
        if self._clips is not None:
            self._clips.feed(image, self._objects, frame.at)
        self.frames_processed += 1
        return findings

    def _take_results(self) -> list[Finding]:
        findings: list[Finding] = []
        while True:
            try:
                result = self._results.get_nowait()
            except queue.Empty:
                return findings
            self._in_flight = False
            self._count_detection(result.inference_s, result.latency_s)
            if result.detections is not None:
                findings += self._apply(result.job.frame, result.detections)

    def _count_detection(self, inference_s: float, latency_s: float) -> None:
        with self._counters.lock:
            self._counters.detections += 1
            self._counters.detections_total += 1
            self._counters.inference_s += inference_s
            self._counters.inference_total_s += inference_s
            self._counters.latency_s += latency_s

    def _apply(self, frame: Frame, detections: list[Detection]) -> list[Finding]:
        """Track and analyse the detections of ``frame``; publish what they show."""
        assert self._tracker is not None
        labels = set(self._camera.detect.labels)
        kept = [d for d in detections if d.label in labels]
        objects = self._tracker.update(kept, frame.at)
        findings = self.analytics.update(objects, frame.at, frame.wall)
        self._objects = objects
        if findings:
            self._publish(findings, frame, objects)
        return findings

    def _should_detect(self, regions: list[Region], at: float) -> bool:
        if not self._camera.motion.enabled or regions:
            return True
        assert self._tracker is not None
        since = None if self._last_detect_at is None else at - self._last_detect_at
        if self._tracker.active:
            # Still objects make no motion: look again now and then, so tracks (and
            # loitering) live on without a detection on every frame.
            return since is None or since >= self._camera.detect.stationary_interval_s
        interval = self._camera.detect.idle_interval_s
        cabin = self._camera.cabin
        if cabin is not None and self.analytics.parked:
            interval = min(interval or cabin.idle_interval_s, cabin.idle_interval_s)
        return interval is not None and (since is None or since >= interval)

    def _crop(self, image: Image, regions: list[Region]) -> tuple[Image, int, int]:
        """What the detector looks at: a square around motion, or the whole frame while
        objects are tracked (they may stand still) or without motion."""
        assert self._tracker is not None
        height, width = image.shape[:2]
        if regions and not self._tracker.active:
            area = detection_region(regions, width, height, self._camera.detect.region_min)
            return image[area.y1 : area.y2, area.x1 : area.x2], area.x1, area.y1
        return image, 0, 0

    # -- events ------------------------------------------------------------------------

    def _publish(self, findings: list[Finding], frame: Frame, objects: list[TrackedObject]) -> None:
        camera = self._camera.id
        seqs = [self._outputs.next_seq(camera) for _ in findings]
        snapshot_url = clip_url = None
        wants_media = any(not isinstance(f, NewObject) for f in findings)
        if self._camera.snapshots.enabled:
            try:
                picture = render(frame.image, objects, self._camera.blur_people)
                snapshot_url = self._media.save_snapshot(
                    camera,
                    media_name(frame.wall, seqs[0], "jpg"),
                    picture,
                    self._camera.snapshots.quality,
                )
            except OSError:
                logger.exception("camera %s: snapshot not stored", camera)
        if self._clips is not None and wants_media:
            try:
                path = self._clips.start(
                    self._media.path(camera, media_name(frame.wall, seqs[0], "avi")), frame.at
                )
                clip_url = self._media.url(camera, path.name)
            except OSError:
                logger.exception("camera %s: clip not started", camera)
        for finding, seq in zip(findings, seqs, strict=True):
            event = to_event(finding, seq, frame.wall, snapshot_url, clip_url)
            if event is not None and self._outputs.event(camera, event):
                self.events_published += 1


def _box(obj: TrackedObject) -> list[float]:
    x1, y1, x2, y2 = obj.box
    return [round(x1, 4), round(y1, 4), round(max(x2 - x1, 0.0), 4), round(max(y2 - y1, 0.0), 4)]


def to_event(
    finding: Finding, seq: int, wall: datetime, snapshot: str | None, clip: str | None
) -> EventEnvelope | None:
    """The contract event of a finding."""
    if isinstance(finding, NewObject):
        o = finding.obj
        return DetectionEvent(
            type="detection",
            ts=wall,
            seq=seq,
            label=o.label,
            confidence=round(o.confidence, 4),
            box=_box(o),
            track_id=o.track_id,
            zone=finding.zone,
            snapshot_url=snapshot,
        )
    if isinstance(finding, Intrusion):
        o = finding.obj
        return IntrusionEvent(
            type="intrusion",
            ts=wall,
            seq=seq,
            zone=finding.zone,
            label=o.label,
            confidence=round(o.confidence, 4),
            box=_box(o),
            track_id=o.track_id,
            snapshot_url=snapshot,
            clip_url=clip,
        )
    if isinstance(finding, LineCrossing):
        o = finding.obj
        return LineCrossEvent(
            type="line_cross",
            ts=wall,
            seq=seq,
            line=finding.line,
            direction=finding.direction,
            label=o.label,
            confidence=round(o.confidence, 4),
            box=_box(o),
            track_id=o.track_id,
            count_in=finding.count_in,
            count_out=finding.count_out,
            snapshot_url=snapshot,
            clip_url=clip,
        )
    if isinstance(finding, Loitering):
        o = finding.obj
        return LoiteringEvent(
            type="loitering",
            ts=wall,
            seq=seq,
            zone=finding.zone,
            dwell_s=round(finding.dwell_s, 3),
            label=o.label,
            confidence=round(o.confidence, 4),
            box=_box(o),
            track_id=o.track_id,
            snapshot_url=snapshot,
            clip_url=clip,
        )
    if isinstance(finding, Crowding):
        return CrowdingEvent(
            type="crowding",
            ts=wall,
            seq=seq,
            zone=finding.zone,
            label=finding.label,
            count=finding.count,
            limit=finding.limit,
            snapshot_url=snapshot,
            clip_url=clip,
        )
    if isinstance(finding, CabinOccupancy):
        return OccupancyEvent(
            type="occupancy",
            ts=wall,
            seq=seq,
            people=finding.people,
            zone=finding.zone,
            vehicle=finding.vehicle,
            confidence=None if finding.confidence is None else round(finding.confidence, 4),
            snapshot_url=snapshot,
        )
    return None  # pragma: no cover - every Finding is handled above


def resolve(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else base / path
