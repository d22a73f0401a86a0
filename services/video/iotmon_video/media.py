"""Snapshots and clips of events, stored per camera with retention, served by URL.

Files are named ``<camera>/<UTC stamp>-<seq>.jpg|.avi``; the media server serves only
names of that shape. People are blurred in stored media where the camera asks (on by
default for cabin cameras: children).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from iotmon_video.cameras import ClipConfig
from iotmon_video.detectors.base import Image
from iotmon_video.tracking import TrackedObject

logger = logging.getLogger(__name__)

MEDIA_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9]{1,20}\.(jpg|avi)$")
CONTENT_TYPES = {"jpg": "image/jpeg", "avi": "video/x-msvideo"}
_COLOURS = {"person": (0, 200, 255)}
_DEFAULT_COLOUR = (255, 160, 0)


def media_name(wall: datetime, seq: int, extension: str) -> str:
    return f"{wall.strftime('%Y%m%dT%H%M%SZ')}-{seq}.{extension}"


def blur_people(image: Image, objects: Sequence[TrackedObject]) -> Image:
    """A copy with every person's box pixelated beyond recognition."""
    out = image.copy()
    height, width = out.shape[:2]
    for obj in objects:
        if obj.label != "person":
            continue
        x1, y1 = int(obj.box[0] * width), int(obj.box[1] * height)
        x2, y2 = int(np.ceil(obj.box[2] * width)), int(np.ceil(obj.box[3] * height))
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        patch = out[y1:y2, x1:x2]
        # Pixelate then blur: a blur alone leaves faces guessable at low strength.
        small = cv2.resize(
            patch, (max(1, (x2 - x1) // 16), max(1, (y2 - y1) // 16)), interpolation=cv2.INTER_AREA
        )
        blocky = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
        out[y1:y2, x1:x2] = cv2.GaussianBlur(blocky, (0, 0), 3)
    return out


def draw_boxes(image: Image, objects: Sequence[TrackedObject]) -> Image:
    out = image.copy()
    height, width = out.shape[:2]
    thickness = max(1, round(min(height, width) / 360))
    for obj in objects:
        colour = _COLOURS.get(obj.label, _DEFAULT_COLOUR)
        p1 = (int(obj.box[0] * width), int(obj.box[1] * height))
        p2 = (int(obj.box[2] * width), int(obj.box[3] * height))
        cv2.rectangle(out, p1, p2, colour, thickness)
        text = f"{obj.label} #{obj.track_id} {obj.confidence:.2f}"
        cv2.putText(
            out,
            text,
            (p1[0], max(12, p1[1] - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thickness,
            colour,
            thickness,
        )
    return out


def render(image: Image, objects: Sequence[TrackedObject], blur: bool) -> Image:
    return draw_boxes(blur_people(image, objects) if blur else image, objects)


class MediaStore:
    """Where a camera's media goes and the URL it is served at."""

    def __init__(self, root: Path, base_url: str) -> None:
        self._root = root
        self._base_url = base_url.rstrip("/")

    @property
    def root(self) -> Path:
        return self._root

    def path(self, camera: str, name: str) -> Path:
        return self._root / camera / name

    def url(self, camera: str, name: str) -> str:
        return f"{self._base_url}/media/{camera}/{name}"

    def save_snapshot(self, camera: str, name: str, image: Image, quality: int) -> str:
        path = self.path(camera, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise OSError(f"JPEG encoding failed for {path}")
        partial = path.with_suffix(".part")
        partial.write_bytes(data.tobytes())
        os.replace(partial, path)  # never serve half a file
        return self.url(camera, name)


@dataclass(slots=True)
class _Recording:
    writer: cv2.VideoWriter
    path: Path
    until: float
    frames: int = 0


class ClipRecorder:
    """Keeps the last ``pre_s`` seconds of processed frames; on an event, writes them and
    the next ``post_s`` seconds to an MJPEG AVI (OpenCV's own writer: no codec needed).
    Events during a recording extend it and share its clip."""

    def __init__(self, config: ClipConfig, fps: float, blur: bool) -> None:
        self._config = config
        self._fps = fps
        self._blur = blur
        self._ring: deque[tuple[Image, list[TrackedObject]]] = deque(
            maxlen=max(1, round(config.pre_s * fps))
        )
        self._recording: _Recording | None = None
        self._lock = threading.Lock()
        self.written = 0

    @property
    def active_path(self) -> Path | None:
        return self._recording.path if self._recording else None

    def _small(self, image: Image) -> Image:
        height, width = image.shape[:2]
        if width <= self._config.width:
            return image
        scale = self._config.width / width
        return cv2.resize(
            image,
            (self._config.width, round(height * scale) // 2 * 2),
            interpolation=cv2.INTER_AREA,
        )

    def feed(self, image: Image, objects: Sequence[TrackedObject], at: float) -> None:
        small = self._small(image)
        with self._lock:
            recording = self._recording
            if recording is None:
                self._ring.append((small, list(objects)))
                return
            self._write(recording, small, objects)
            if at >= recording.until:
                self._finish()

    def start(self, path: Path, at: float) -> Path:
        """Begin (or extend) a clip; returns the file the event's clip is in."""
        with self._lock:
            if self._recording is not None:
                self._recording.until = max(self._recording.until, at + self._config.post_s)
                return self._recording.path
            path.parent.mkdir(parents=True, exist_ok=True)
            first = self._ring[0][0] if self._ring else None
            if first is None:
                raise OSError("no frame to start a clip with")
            height, width = first.shape[:2]
            writer = cv2.VideoWriter(
                str(path), cv2.VideoWriter.fourcc(*"MJPG"), self._fps, (width, height)
            )
            if not writer.isOpened():
                raise OSError(f"cannot write clip {path}")
            self._recording = _Recording(writer, path, at + self._config.post_s)
            for image, objects in self._ring:
                self._write(self._recording, image, objects)
            self._ring.clear()
            return path

    def close(self) -> None:
        with self._lock:
            if self._recording is not None:
                self._finish()

    def _write(self, recording: _Recording, image: Image, objects: Sequence[TrackedObject]) -> None:
        frame = render(image, objects, self._blur)
        _height, _width = frame.shape[:2]
        recording.writer.write(frame)
        recording.frames += 1

    def _finish(self) -> None:
        assert self._recording is not None
        self._recording.writer.release()
        self.written += 1
        self._recording = None


def sweep(root: Path, max_age_s: float, max_bytes: int, now: float | None = None) -> int:
    """Delete media older than ``max_age_s``, then the oldest until under ``max_bytes``;
    returns how many files went."""
    now = time.time() if now is None else now
    files = []
    for path in root.glob("*/*"):
        if not path.is_file() or not MEDIA_NAME.match(path.name):
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        files.append((stat.st_mtime, stat.st_size, path))
    files.sort()
    removed = 0
    total = sum(size for _, size, _ in files)
    for mtime, size, path in files:
        if now - mtime <= max_age_s and total <= max_bytes:
            break
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        total -= size
        removed += 1
    return removed
