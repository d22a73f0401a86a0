"""Multi-object tracking in the manner of ByteTrack, in numpy.

Two-stage association: confident detections are matched to the predicted tracks
first, then the low-score ones (often a partly hidden object) to the tracks still
unmatched, so a track survives a dip in confidence. Boxes move with a constant
velocity scaled by the time between frames: frames dropped under load leave a
larger step, which the prediction covers.

Why not a library: Ultralytics' trackers import torch through ``ultralytics.utils``;
supervision moved ByteTrack to the ``trackers`` package, which needs opencv-python
(the GUI build, which clashes with the headless wheel) and matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from iotmon_video.cameras import TrackConfig
from iotmon_video.detectors.base import Detection

LOW_CONFIDENCE = 0.1


@dataclass(slots=True)
class Track:
    """An object followed across frames; boxes in frame pixels."""

    track_id: int
    label: str
    confidence: float
    box: npt.NDArray[np.float64]
    first_seen: float
    last_seen: float
    hits: int = 1
    velocity: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(4))

    def predicted(self, at: float) -> npt.NDArray[np.float64]:
        return self.box + self.velocity * (at - self.last_seen)


@dataclass(frozen=True, slots=True)
class TrackedObject:
    """What the analytics see of a confirmed track in one frame (frame fractions)."""

    track_id: int
    label: str
    confidence: float
    box: tuple[float, float, float, float]
    """x1, y1, x2, y2 as fractions of the frame."""
    first_seen: float
    seen_now: bool
    """Matched a detection in this frame (not only predicted)."""


def iou_matrix(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Intersection over union of every box in ``a`` with every box in ``b`` (xyxy)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def greedy_match(scores: npt.NDArray[np.float64], threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, column) taken best score first, each row and column once."""
    pairs: list[tuple[int, int]] = []
    if scores.size == 0:
        return pairs
    order = np.dstack(np.unravel_index(np.argsort(-scores, axis=None), scores.shape))[0]
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    for row, col in order:
        if scores[row, col] < threshold:
            break
        if row in used_rows or col in used_cols:
            continue
        used_rows.add(int(row))
        used_cols.add(int(col))
        pairs.append((int(row), int(col)))
    return pairs


class Tracker:
    """One per camera; ``update`` once per processed frame with that frame's detections."""

    def __init__(self, config: TrackConfig, width: int, height: int, high: float = 0.5) -> None:
        self._config = config
        self._high = high
        self._width = width
        self._height = height
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def active(self) -> bool:
        """Whether anything is being followed (worth detecting without motion)."""
        return bool(self._tracks)

    def update(self, detections: list[Detection], at: float) -> list[TrackedObject]:
        """Associate, start and drop tracks; the confirmed ones, in fractions."""
        boxes = np.array([[d.x1, d.y1, d.x2, d.y2] for d in detections], dtype=np.float64)
        boxes = boxes.reshape(-1, 4)
        scores = np.array([d.confidence for d in detections])
        high = [i for i, s in enumerate(scores) if s >= self._high]
        low = [i for i, s in enumerate(scores) if LOW_CONFIDENCE <= s < self._high]
        matched: set[int] = set()
        unmatched_tracks = list(range(len(self._tracks)))
        for stage, threshold in ((high, self._config.match_iou), (low, 0.5)):
            if not stage or not unmatched_tracks:
                continue
            predicted = np.array([self._tracks[t].predicted(at) for t in unmatched_tracks])
            overlap = iou_matrix(predicted, boxes[stage])
            for row, col in enumerate(stage):
                for t_row, track_index in enumerate(unmatched_tracks):
                    if self._tracks[track_index].label != detections[col].label:
                        overlap[t_row, row] = 0.0
            pairs = greedy_match(overlap, threshold)
            for t_row, d_col in pairs:
                self._refresh(
                    self._tracks[unmatched_tracks[t_row]],
                    detections[stage[d_col]],
                    boxes[stage[d_col]],
                    at,
                )
                matched.add(unmatched_tracks[t_row])
            unmatched_tracks = [t for t in unmatched_tracks if t not in matched]
            used = {stage[d] for _, d in pairs}
            if stage is high:
                high = [i for i in high if i not in used]
        seen_now = set(matched)
        self._tracks = [
            t
            for i, t in enumerate(self._tracks)
            if i in seen_now or at - t.last_seen <= self._config.max_lost_s
        ]
        kept_seen = {id(t) for i, t in enumerate(self._tracks) if t.last_seen == at}
        for index in high:
            detection = detections[index]
            self._tracks.append(
                Track(self._next_id, detection.label, detection.confidence, boxes[index], at, at)
            )
            kept_seen.add(id(self._tracks[-1]))
            self._next_id += 1
        return [
            self._view(track, at, id(track) in kept_seen)
            for track in self._tracks
            if track.hits >= self._config.min_hits
        ]

    def _refresh(
        self, track: Track, detection: Detection, box: npt.NDArray[np.float64], at: float
    ) -> None:
        dt = at - track.last_seen
        if dt > 0:
            velocity = (box - track.box) / dt
            # Smoothed: one noisy box should not fling the prediction.
            track.velocity = velocity if track.hits == 1 else 0.5 * track.velocity + 0.5 * velocity
        track.box = box
        track.last_seen = at
        track.hits += 1
        track.confidence = detection.confidence

    def _view(self, track: Track, at: float, seen_now: bool) -> TrackedObject:
        box = track.box if seen_now else track.predicted(at)
        w, h = self._width, self._height
        x1, y1, x2, y2 = (float(v) for v in box)
        return TrackedObject(
            track.track_id,
            track.label,
            track.confidence,
            (
                min(max(x1 / w, 0.0), 1.0),
                min(max(y1 / h, 0.0), 1.0),
                min(max(x2 / w, 0.0), 1.0),
                min(max(y2 / h, 0.0), 1.0),
            ),
            track.first_seen,
            seen_now,
        )
