"""``iotmon-video bench``: how many 720p cameras at 5 fps one machine sustains.

Both loops in the same run, on the same synthetic footage: motion-gated (detection
only on frames and regions with motion, and while objects are tracked) and naive
(the detector on every frame). Each camera plays its own MJPEG file through the
production capture path (decode included) in real time; a camera count is sustained
when every camera dropped at most ``--max-drop`` of its frames. Figures go to
docs/benchmarks.md; this is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from iotmon_contract.events import EventEnvelope
from iotmon_video.cameras import (
    CameraConfig,
    ClipConfig,
    FileSource,
    MotionConfig,
    SnapshotConfig,
)
from iotmon_video.detect_queue import DetectorPool
from iotmon_video.detectors.base import Detector, Image
from iotmon_video.detectors.config import OnnxDetectorConfig
from iotmon_video.detectors.registry import create_detector
from iotmon_video.media import MediaStore
from iotmon_video.pipeline import CameraPipeline

WIDTH, HEIGHT = 1280, 720
COUNTS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32, 40, 48)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", type=Path, default=Path("../shared/models/yolov8n_int8.onnx"))
    parser.add_argument("--fps", type=float, default=5.0, help="frames per second per camera")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per step")
    parser.add_argument("--warmup", type=float, default=4.0, help="unmeasured start per step")
    parser.add_argument("--motion-share", type=float, default=0.1, help="time with motion")
    parser.add_argument("--cycle", type=float, default=20.0, help="seconds of footage per file")
    parser.add_argument("--max-drop", type=float, default=0.05, help="dropped share allowed")
    parser.add_argument("--max-cameras", type=int, default=48)
    parser.add_argument("--modes", default="naive,gated", help="naive, gated or both")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    parser.add_argument("--workers", type=int, default=1, help="detector threads")
    parser.add_argument(
        "--max-latency", type=float, default=1.0, help="mean detection latency allowed, s"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")


class _CountingSink:
    """The bench measures the pipeline, not the broker: events are counted, not sent."""

    def __init__(self) -> None:
        self.events = 0
        self._seq = 0
        self._lock = threading.Lock()

    def next_seq(self, camera: str) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def event(self, camera: str, event: EventEnvelope) -> bool:
        with self._lock:
            self.events += 1
        return True

    def camera_state(self, camera: str, up: bool) -> None:
        return None

    def fault(self, camera: str, code: str, detail: str | None, cleared: bool = False) -> None:
        return None


def background(rng: np.random.Generator) -> Image:
    """A street-like still: gradient sky, textured ground, a few static blocks."""
    y = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None, None]
    sky = np.array([200, 170, 140], np.float32) * (1 - y) + np.array([90, 100, 95], np.float32) * y
    image = np.broadcast_to(sky, (HEIGHT, WIDTH, 3)).copy()
    image += rng.normal(0, 6, (HEIGHT, WIDTH, 3)).astype(np.float32)
    out: Image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(8):
        x, yy = int(rng.integers(0, WIDTH - 200)), int(rng.integers(200, HEIGHT - 150))
        colour = tuple(int(c) for c in rng.integers(40, 220, 3))
        cv2.rectangle(out, (x, yy), (x + int(rng.integers(60, 200)), yy + 120), colour, -1)
    return out


def footage(path: Path, fps: float, cycle_s: float, motion_share: float, seed: int) -> None:
    """One camera's file: a person-sized figure crosses the view ``motion_share`` of the
    time, at a phase of its own (cameras see motion at different moments)."""
    rng = np.random.default_rng(seed)
    still = background(rng)
    frames = round(cycle_s * fps)
    moving = max(1, round(frames * motion_share))
    start = int(rng.integers(0, frames))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    try:
        for index in range(frames):
            frame = still.copy()
            step = (index - start) % frames
            if step < moving:
                x = int(100 + (WIDTH - 300) * step / moving)
                cv2.ellipse(frame, (x + 40, 330), (28, 34), 0, 0, 360, (60, 80, 120), -1)
                cv2.rectangle(frame, (x, 360), (x + 80, 560), (30, 30, 160), -1)
                cv2.rectangle(frame, (x + 8, 560), (x + 72, 660), (40, 40, 40), -1)
            writer.write(frame)
    finally:
        writer.release()


@dataclass(frozen=True, slots=True)
class Step:
    mode: str
    cameras: int
    input_fps: float
    processed_fps: float
    detect_fps: float
    dropped_share_worst: float
    dropped_share_mean: float
    inference_ms: float | None
    detect_latency_ms: float | None
    detect_skipped: int
    motion_ratio: float
    sustained: bool


def run_step(
    mode: str,
    cameras: int,
    files: list[Path],
    detector: Detector,
    args: argparse.Namespace,
    media: MediaStore,
) -> Step:
    sink = _CountingSink()
    stop = threading.Event()
    pool = DetectorPool(detector, args.workers)
    pool.start()
    pipelines = []
    for index in range(cameras):
        camera = CameraConfig(
            id=f"cam-{index}",
            source=FileSource(type="file", path=files[index], realtime=True, loop=True),
            fps=args.fps,
            motion=MotionConfig(enabled=mode == "gated"),
            snapshots=SnapshotConfig(enabled=False),
            clips=ClipConfig(enabled=False),
        )
        pipelines.append(CameraPipeline(camera, detector, sink, media, stop, pool))
    for pipeline in pipelines:
        pipeline.start()
    try:
        time.sleep(args.warmup)
        for pipeline in pipelines:
            pipeline.metrics()
        time.sleep(args.seconds)
        windows = [pipeline.metrics() for pipeline in pipelines]
    finally:
        stop.set()
        for pipeline in pipelines:
            pipeline.stop()
        pool.stop()
    shares = [
        w.dropped_frames / max(1.0, w.input_fps * args.seconds) if w.input_fps else 1.0
        for w in windows
    ]
    latencies = [w.inference_ms for w in windows if w.inference_ms is not None]
    waits = [w.detect_latency_ms for w in windows if w.detect_latency_ms is not None]
    wait = round(sum(waits) / len(waits), 1) if waits else None
    return Step(
        mode=mode,
        cameras=cameras,
        input_fps=round(sum(w.input_fps for w in windows), 1),
        processed_fps=round(sum(w.processed_fps for w in windows), 1),
        detect_fps=round(sum(w.detect_fps for w in windows), 2),
        dropped_share_worst=round(max(shares), 3),
        dropped_share_mean=round(sum(shares) / len(shares), 3),
        inference_ms=round(sum(latencies) / len(latencies), 1) if latencies else None,
        detect_latency_ms=wait,
        detect_skipped=sum(w.detect_skipped for w in windows),
        motion_ratio=round(sum(w.motion_ratio for w in windows) / len(windows), 4),
        sustained=max(shares) <= args.max_drop
        and (wait is None or wait <= args.max_latency * 1000)
        and (mode != "naive" or sum(w.detect_skipped for w in windows) == 0),
    )


def run_bench(args: argparse.Namespace) -> int:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if not args.weights.exists():
        sys.stderr.write(f"iotmon-video bench: weights not found: {args.weights}\n")
        return 2
    detector = create_detector(
        OnnxDetectorConfig(type="onnx", model=args.weights, threads=args.threads)
    )
    assert detector is not None
    results: list[Step] = []
    out = sys.stdout
    with tempfile.TemporaryDirectory(prefix="iotmon-video-bench-") as tmp:
        folder = Path(tmp)
        media = MediaStore(folder / "media", "http://127.0.0.1:1")
        needed = min(args.max_cameras, max(COUNTS))
        out.write(f"rendering {needed} cameras' footage ({WIDTH}x{HEIGHT}, {args.fps} fps)...\n")
        seeds = np.random.default_rng(7)
        files = []
        for index in range(needed):
            path = folder / f"cam-{index}.avi"
            footage(path, args.fps, args.cycle, args.motion_share, int(seeds.integers(0, 2**31)))
            files.append(path)
        out.write(
            f"{'mode':6} {'cams':>4} {'in fps':>7} {'proc fps':>8} {'det/s':>6} "
            f"{'drop worst':>10} {'drop mean':>9} {'infer ms':>8} {'wait ms':>8} {'skipped':>7} "
            f"{'motion':>6}  ok\n"
        )
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            for count in (c for c in COUNTS if c <= args.max_cameras):
                step = run_step(mode, count, files, detector, args, media)
                results.append(step)
                out.write(
                    f"{step.mode:6} {step.cameras:>4} {step.input_fps:>7} "
                    f"{step.processed_fps:>8} {step.detect_fps:>6} "
                    f"{step.dropped_share_worst:>10} {step.dropped_share_mean:>9} "
                    f"{step.inference_ms!s:>8} {step.detect_latency_ms!s:>8} "
                    f"{step.detect_skipped:>7} {step.motion_ratio:>6}  "
                    f"{'yes' if step.sustained else 'no'}\n"
                )
                out.flush()
                if not step.sustained:
                    break
    for mode in {s.mode for s in results}:
        best = max((s.cameras for s in results if s.mode == mode and s.sustained), default=0)
        out.write(f"{mode}: {best} camera(s) sustained at {args.fps} fps\n")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(s) for s in results], indent=2))
    return 0
