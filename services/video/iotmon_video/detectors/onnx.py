"""YOLO exported to ONNX, run by onnxruntime (the int8 YOLOv8n among others)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from iotmon_video.detectors.base import Detection, Detector, DetectorUnavailable, Image
from iotmon_video.detectors.config import OnnxDetectorConfig, resolve_model
from iotmon_video.detectors.yolo import decode, letterbox, names_from_metadata, to_input


class OnnxYoloDetector(Detector):
    name = "onnx"

    def __init__(
        self, session: ort.InferenceSession, config: OnnxDetectorConfig, labels: list[str]
    ) -> None:
        self._session = session
        self._config = config
        self._labels = labels
        model_input = session.get_inputs()[0]
        self._input_name = model_input.name
        shape = model_input.shape
        self._size = shape[2] if isinstance(shape[2], int) else 640
        # A static batch of 1 (what a plain export gives) takes images one by one.
        self._batch = shape[0] if isinstance(shape[0], int) else None
        # One run at a time: cameras share the detector, and on a small machine two
        # concurrent runs only fight over the same cores.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, config: OnnxDetectorConfig, base: Path) -> OnnxYoloDetector:
        path = resolve_model(config.model, base)
        options = ort.SessionOptions()
        if config.threads is not None:
            options.intra_op_num_threads = config.threads
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), options, providers=config.providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise DetectorUnavailable(f"cannot load {path}: {exc}") from None
        labels = names_from_metadata(session.get_modelmeta().custom_metadata_map)
        outputs = session.get_outputs()[0].shape
        classes = outputs[1] - 4 if isinstance(outputs[1], int) else 80
        return cls(session, config, labels or [f"class_{i}" for i in range(classes)])

    @property
    def labels(self) -> Sequence[str]:
        return self._labels

    @property
    def input_size(self) -> int:
        return self._size

    def detect(self, image: Image) -> list[Detection]:
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[Image]) -> list[list[Detection]]:
        boxed = [letterbox(image, self._size) for image in images]
        outputs: list[np.ndarray] = []
        step = self._batch or len(boxed)
        for start in range(0, len(boxed), step):
            chunk = to_input([canvas for canvas, _ in boxed[start : start + step]])
            with self._lock:
                (out,) = self._session.run(None, {self._input_name: chunk})[:1]
            outputs.extend(out)
        return [
            decode(out, box, self._labels, self._config.min_confidence, self._config.iou, img.shape)
            for out, (_, box), img in zip(outputs, boxed, images, strict=True)
        ]
