"""Any weights Ultralytics loads (.pt, ONNX, OpenVINO, NCNN), through its own predictor.

Optional: ``pip install iotmon-video[ultralytics]`` (pulls torch). Set YOLO_OFFLINE=1
where the machine cannot reach the internet: Ultralytics otherwise tries downloads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iotmon_video.detectors.base import Detection, Detector, DetectorUnavailable, Image
from iotmon_video.detectors.config import UltralyticsDetectorConfig, resolve_model
from iotmon_video.detectors.yolo import label_name


class UltralyticsDetector(Detector):
    name = "ultralytics"

    def __init__(self, model: Any, config: UltralyticsDetectorConfig) -> None:
        self._model = model
        self._config = config
        names = getattr(model, "names", {}) or {}
        self._labels = [label_name(str(names[i])) for i in sorted(names)]
        self._lock = threading.Lock()

    @classmethod
    def load(cls, config: UltralyticsDetectorConfig, base: Path) -> UltralyticsDetector:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        try:
            from ultralytics import YOLO
        except ImportError as exc:
            raise DetectorUnavailable(
                f"detector type 'ultralytics' needs the ultralytics package ({exc}); "
                "install iotmon-video[ultralytics], or use type: onnx with an .onnx export"
            ) from None
        path = resolve_model(config.model, base)
        try:
            model = YOLO(str(path), task="detect")
        except Exception as exc:  # noqa: BLE001 - Ultralytics raises many kinds
            raise DetectorUnavailable(f"cannot load {path}: {exc}") from None
        return cls(model, config)

    @property
    def labels(self) -> Sequence[str]:
        return self._labels

    def detect(self, image: Image) -> list[Detection]:
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[Image]) -> list[list[Detection]]:
        with self._lock:
            results = self._model.predict(
                list(images),
                imgsz=self._config.input_size,
                conf=self._config.min_confidence,
                iou=self._config.iou,
                device=self._config.device,
                verbose=False,
            )
        found: list[list[Detection]] = []
        for result in results:
            boxes = result.boxes
            xyxy = boxes.xyxy.cpu().numpy()
            scores = boxes.conf.cpu().numpy()
            classes = boxes.cls.cpu().numpy().astype(int)
            found.append(
                [
                    Detection(self._labels[c], float(s), *(float(v) for v in box))
                    for box, s, c in zip(xyxy, scores, classes, strict=True)
                ]
            )
        return found
