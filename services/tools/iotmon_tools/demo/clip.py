"""The demo cameras' footage, drawn at run time with OpenCV (nothing is downloaded): a
corridor with a figure walking across it and back, looped by the video service."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 320, 240
FPS = 5.0


def _frame(still: np.ndarray, x: int, rng: np.random.Generator) -> np.ndarray:
    frame = still.copy()
    top = HEIGHT - 150
    cv2.rectangle(frame, (x, top + 30), (x + 36, HEIGHT - 20), (60, 70, 160), -1)  # body
    cv2.circle(frame, (x + 18, top + 15), 15, (150, 170, 210), -1)  # head
    noise = rng.normal(0, 2, frame.shape)
    return np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def write_clip(path: Path, seed: int = 1, seconds: float = 12.0) -> Path:
    """A clip of ``seconds``: still at first (the background is learnt), then someone walks
    across and back. MJPG in AVI: OpenCV writes it without any codec installed."""
    rng = np.random.default_rng(seed)
    still = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    still[:] = (170, 180, 185)
    still[HEIGHT * 2 // 3 :] = (110, 120, 120)
    for _ in range(3):
        x, y = int(rng.integers(0, WIDTH - 60)), int(rng.integers(20, HEIGHT // 2))
        colour = tuple(int(c) for c in rng.integers(60, 200, 3))
        cv2.rectangle(still, (x, y), (x + 50, y + 35), colour, -1)
    frames = int(seconds * FPS)
    quiet = frames // 3
    walk = frames - quiet
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for _ in range(quiet):
            writer.write(_frame(still, -100, rng))
        half = walk // 2
        for i in range(walk):
            step = i if i < half else walk - 1 - i
            writer.write(_frame(still, 10 + step * (WIDTH - 60) // max(1, half), rng))
    finally:
        writer.release()
    return path
