"""Test footage for the video service: real photos (Ultralytics' bus.jpg and zidane.jpg,
fetched by scripts/setup --dev) and synthetic scenes with a real person cut out of
bus.jpg walking across a synthetic background. Nothing is downloaded here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from iotmon_video.detectors.base import Image

ROOT = Path(__file__).resolve().parents[3]
ASSETS = ROOT / ".state" / "test-assets"
WEIGHTS = ROOT.parent / "shared" / "models" / "yolov8n_int8.onnx"
WIDTH, HEIGHT = 640, 360
PERSON_BOX = (221, 408, 343, 856)
"""A person in bus.jpg (x1, y1, x2, y2), whole and unoccluded."""


def weights() -> Path:
    """The detector weights; a missing file fails the test (never a silent pass)."""
    if not WEIGHTS.is_file():
        pytest.fail(
            f"detector weights missing: {WEIGHTS} (CI and developers have ../shared/models)"
        )
    return WEIGHTS


def photo(name: str) -> Image:
    path = ASSETS / name
    if not path.is_file():
        pytest.fail(f"test photo missing: {path}; run scripts/setup --dev")
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def person(height: int) -> Image:
    x1, y1, x2, y2 = PERSON_BOX
    crop = photo("bus.jpg")[y1:y2, x1:x2]
    scale = height / crop.shape[0]
    return cv2.resize(crop, (round(crop.shape[1] * scale), height), interpolation=cv2.INTER_AREA)


def background(seed: int = 1) -> Image:
    """A still: a floor and a wall with a few boxes, with sensor noise added per frame."""
    rng = np.random.default_rng(seed)
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[:] = (170, 180, 185)
    image[HEIGHT * 2 // 3 :] = (110, 120, 120)
    for _ in range(4):
        x, y = int(rng.integers(0, WIDTH - 80)), int(rng.integers(40, HEIGHT // 2))
        cv2.rectangle(
            image, (x, y), (x + 70, y + 50), tuple(int(c) for c in rng.integers(60, 200, 3)), -1
        )
    return image


def compose(still: Image, figure: Image, x: int, rng: np.random.Generator) -> Image:
    """``still`` with ``figure`` standing at ``x`` (feet near the bottom) and light noise."""
    frame = still.copy()
    h, w = figure.shape[:2]
    top = HEIGHT - h - 10
    x = max(0, min(WIDTH - w, x))
    frame[top : top + h, x : x + w] = figure
    noise = rng.normal(0, 2, frame.shape)
    return np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def walk(xs: Iterable[int], figure: Image | None, seed: int = 1) -> list[Image]:
    still = background(seed)
    rng = np.random.default_rng(seed)
    if figure is None:
        return [compose_empty(still, rng) for _ in xs]
    return [compose(still, figure, x, rng) for x in xs]


def compose_empty(still: Image, rng: np.random.Generator) -> Image:
    noise = rng.normal(0, 2, still.shape)
    return np.clip(still.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def write_clip(path: Path, frames: Sequence[Image], fps: float = 5.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def linear(start: int, end: int, steps: int) -> list[int]:
    return [round(start + (end - start) * i / max(1, steps - 1)) for i in range(steps)]
