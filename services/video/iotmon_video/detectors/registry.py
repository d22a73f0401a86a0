"""Which plugin serves which ``type``; building one from its configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from iotmon_video.detectors.base import Detector, DetectorUnavailable
from iotmon_video.detectors.config import (
    BatchedOnnxDetectorConfig,
    DetectorConfig,
    NoDetectorConfig,
    OnnxDetectorConfig,
    UltralyticsDetectorConfig,
    resolve_model,
)


def _onnx(config: Any, base: Path) -> Detector:
    from iotmon_video.detectors.onnx import OnnxYoloDetector  # onnxruntime loads ~1 s

    return OnnxYoloDetector.load(config, base)


def _batched(config: Any, base: Path) -> Detector:
    try:
        from iotmon_video.detectors.batched import BatchedOnnxDetector  # imports torch
    except ImportError as exc:
        raise DetectorUnavailable(
            f"detector type 'onnx_batched' needs torch ({exc}); install iotmon-video[gpu]"
        ) from None
    return BatchedOnnxDetector.load(config, base)


def _ultralytics(config: Any, base: Path) -> Detector:
    from iotmon_video.detectors.ultralytics import UltralyticsDetector  # imports torch

    return UltralyticsDetector.load(config, base)


PLUGINS: Mapping[type[Any], Callable[[Any, Path], Detector]] = MappingProxyType(
    {
        OnnxDetectorConfig: _onnx,
        BatchedOnnxDetectorConfig: _batched,
        UltralyticsDetectorConfig: _ultralytics,
    }
)
"""Configuration model → factory. A new plugin: a config model in ``config.py`` added
to ``DetectorConfig``, a ``Detector`` subclass, and a line here."""


def create_detector(config: DetectorConfig, base: Path = Path()) -> Detector | None:
    """The configured detector, or None for ``type: none``. Raises DetectorUnavailable,
    naming the file and what to do, when the weights or the runtime are missing."""
    if isinstance(config, NoDetectorConfig):
        return None
    model = getattr(config, "model", None)
    if isinstance(model, Path):
        path = resolve_model(model, base)
        if not path.exists():
            raise DetectorUnavailable(
                f"weights not found: {path} (detector type {config.type!r}); put the file "
                "there (this service never downloads weights) or set detector.type: none"
            )
    return PLUGINS[type(config)](config, base)
