"""Motion gate: OpenCV MOG2 background subtraction on a small grey copy of each frame.

Returns the moving regions in full-frame pixels and the share of the frame that moved;
masked areas (a tree, a clock) never count.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from iotmon_video.cameras import MotionConfig
from iotmon_video.detectors.base import Image


@dataclass(frozen=True, slots=True)
class Region:
    """A box in full-frame pixels."""

    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1


@dataclass(frozen=True, slots=True)
class Motion:
    regions: list[Region]
    ratio: float
    """Share of the (unmasked) frame that moved, 0..1."""


NO_MOTION = Motion([], 0.0)


class MotionDetector:
    """One per camera (it learns that camera's background); not thread-safe."""

    def __init__(self, config: MotionConfig) -> None:
        self._config = config
        self._subtractor = cv2.createBackgroundSubtractorMOG2(
            history=config.history, varThreshold=config.threshold, detectShadows=False
        )
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._mask: npt.NDArray[np.uint8] | None = None
        self._shape: tuple[int, int] | None = None
        self._frames = 0

    def detect(self, frame: Image) -> Motion:
        height, width = frame.shape[:2]
        small_h = min(self._config.frame_height, height)
        scale = small_h / height
        small_w = max(1, round(width * scale))
        grey = cv2.cvtColor(
            cv2.resize(frame, (small_w, small_h), interpolation=cv2.INTER_AREA),
            cv2.COLOR_BGR2GRAY,
        )
        grey = cv2.GaussianBlur(grey, (5, 5), 0)
        if self._shape != (small_h, small_w):
            self._shape = (small_h, small_w)
            self._mask = self._build_mask(small_w, small_h)
        foreground = self._subtractor.apply(grey)
        self._frames += 1
        if self._frames <= self._config.warmup_frames:
            return NO_MOTION
        if self._mask is not None:
            foreground = cv2.bitwise_and(foreground, self._mask)
        foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, self._kernel)
        foreground = cv2.dilate(foreground, self._kernel, iterations=2)
        moving = int(cv2.countNonZero(foreground))
        area = small_w * small_h if self._mask is None else max(1, cv2.countNonZero(self._mask))
        min_pixels = self._config.min_area * small_w * small_h
        contours, _ = cv2.findContours(foreground, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        regions = []
        for contour in contours:
            if cv2.contourArea(contour) < min_pixels:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            regions.append(
                Region(
                    int(x / scale),
                    int(y / scale),
                    min(width, int(np.ceil((x + w) / scale))),
                    min(height, int(np.ceil((y + h) / scale))),
                )
            )
        if not regions:
            return Motion([], moving / area if moving else 0.0)
        return Motion(regions, moving / area)

    def _build_mask(self, width: int, height: int) -> npt.NDArray[np.uint8] | None:
        if not self._config.masks:
            return None
        mask = np.full((height, width), 255, dtype=np.uint8)
        for polygon in self._config.masks:
            points = np.array([[x * width, y * height] for x, y in polygon], dtype=np.int32)
            cv2.fillPoly(mask, [points], 0)
        return mask


def detection_region(regions: list[Region], width: int, height: int, minimum: int) -> Region:
    """One square-ish box around all motion, at least ``minimum`` pixels a side (small
    objects stay big enough for the model), kept inside the frame."""
    x1 = min(r.x1 for r in regions)
    y1 = min(r.y1 for r in regions)
    x2 = max(r.x2 for r in regions)
    y2 = max(r.y2 for r in regions)
    side = max(x2 - x1, y2 - y1, minimum)
    # Some margin: motion boxes hug the moving part (legs), not the whole object.
    side = int(side * 1.25)
    if side >= width and side >= height:
        return Region(0, 0, width, height)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = min(side, width), min(side, height)
    left = int(min(max(cx - w / 2, 0), width - w))
    top = int(min(max(cy - h / 2, 0), height - h))
    return Region(left, top, left + w, top + h)
