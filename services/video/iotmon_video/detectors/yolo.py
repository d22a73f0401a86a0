"""YOLO pre- and post-processing in numpy and OpenCV: letterbox, decode, NMS.

Ultralytics' detect head exports as ``[batch, 4 + classes, anchors]``: box centre,
width and height in input pixels, then one score per class, NMS not included.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from iotmon_video.detectors.base import Detection, Image

PAD_VALUE = 114
"""Grey Ultralytics pads with; the model was trained on it."""

COCO_FALLBACK = "object"


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image was fitted into the square input: scale, then padding."""

    scale: float
    pad_x: float
    pad_y: float

    def to_image(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Input-pixel xyxy boxes back to the original image's pixels."""
        out = x.copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        return out


def letterbox(image: Image, size: int) -> tuple[Image, Letterbox]:
    """Resize keeping the aspect ratio and pad to ``size`` x ``size``, centred."""
    height, width = image.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = round(width * scale), round(height * scale)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    left, top = round(pad_x - 0.1), round(pad_y - 0.1)
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas, Letterbox(scale, float(left), float(top))


def to_input(images: Sequence[Image]) -> npt.NDArray[np.float32]:
    """Letterboxed BGR images to the model's NCHW float RGB in 0..1."""
    batch = np.stack(images)[..., ::-1].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32) / np.float32(255.0)


def decode(
    output: npt.NDArray[np.float32],
    box: Letterbox,
    labels: Sequence[str],
    min_confidence: float,
    iou: float,
    image_shape: tuple[int, ...],
) -> list[Detection]:
    """One image's ``[4 + classes, anchors]`` output to detections after class-wise NMS."""
    rows = output.T  # anchors x (4 + classes)
    scores = rows[:, 4:]
    classes = scores.argmax(axis=1)
    best = scores[np.arange(len(rows)), classes]
    keep = best >= min_confidence
    if not keep.any():
        return []
    rows, classes, best = rows[keep], classes[keep], best[keep]
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    xyxy = box.to_image(xyxy.astype(np.float32))
    height, width = image_shape[:2]
    np.clip(xyxy[:, [0, 2]], 0, width, out=xyxy[:, [0, 2]])
    np.clip(xyxy[:, [1, 3]], 0, height, out=xyxy[:, [1, 3]])
    chosen = nms(xyxy, best, classes, iou)
    return [
        Detection(
            labels[c] if c < len(labels) else COCO_FALLBACK,
            float(best[i]),
            *(float(v) for v in xyxy[i]),
        )
        for i in chosen
        for c in (int(classes[i]),)
    ]


def nms(
    xyxy: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    classes: npt.NDArray[np.int64],
    iou: float,
) -> list[int]:
    """Indices kept by class-wise non-maximum suppression, best score first."""
    # Offsetting each class far apart makes one NMS pass class-wise (Ultralytics' trick).
    offset = classes[:, None].astype(np.float32) * 8192.0
    shifted = xyxy + offset
    xywh = np.concatenate([shifted[:, :2], shifted[:, 2:] - shifted[:, :2]], axis=1)
    kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, iou)
    order = sorted((int(i) for i in np.asarray(kept).reshape(-1)), key=lambda i: -scores[i])
    return order


def label_name(name: str) -> str:
    """A class name as the contract spells labels: snake_case ("traffic light" → traffic_light)."""
    cleaned = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"class_{cleaned}"
    return cleaned[:64]


def names_from_metadata(metadata: Mapping[str, str]) -> list[str] | None:
    """Class names from an Ultralytics export's ``names`` metadata (a dict literal)."""
    raw = metadata.get("names")
    if raw is None:
        return None
    try:
        parsed = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if not isinstance(parsed, dict):
        return None
    return [label_name(str(parsed[i])) for i in sorted(parsed)]
