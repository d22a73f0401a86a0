"""Detector configurations: one model per plugin, a union keyed on ``type``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _DetectorModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoDetectorConfig(_DetectorModel):
    """Motion only: events need a detector, metrics and motion still run."""

    type: Literal["none"]


class OnnxDetectorConfig(_DetectorModel):
    """A YOLO model exported to ONNX (Ultralytics ``export(format="onnx")``), run by
    onnxruntime with our own letterbox and NMS: no torch needed."""

    type: Literal["onnx"]
    model: Path = Field(description="The .onnx weights file (relative to the cameras file).")
    iou: float = Field(default=0.45, gt=0, le=1, description="NMS overlap threshold.")
    min_confidence: float = Field(
        default=0.1, ge=0, le=1, description="Lowest score decoded (tracks use low ones too)."
    )
    threads: int | None = Field(
        default=None, ge=1, le=256, description="onnxruntime intra-op threads; none: its default."
    )
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        min_length=1,
        description="onnxruntime execution providers, in order of preference.",
    )


class UltralyticsDetectorConfig(_DetectorModel):
    """Any weights Ultralytics loads (.pt, .onnx, OpenVINO or NCNN folders) through its
    predictor. Needs the ``ultralytics`` extra (and torch)."""

    type: Literal["ultralytics"]
    model: Path = Field(description="Weights file or export folder (relative to the cameras file).")
    iou: float = Field(default=0.45, gt=0, le=1, description="NMS overlap threshold.")
    min_confidence: float = Field(default=0.1, ge=0, le=1, description="Lowest score kept.")
    input_size: int = Field(default=640, ge=32, le=4096, description="Inference size, pixels.")
    device: str = Field(default="cpu", description="cpu, cuda:0, …")


class BatchedOnnxDetectorConfig(_DetectorModel):
    """An ONNX YOLO export run on batches of frames from many cameras, with letterbox,
    normalisation and NMS on the GPU (torch; the ``gpu`` extra). ``device: auto`` takes
    the GPU where there is one and the CPU elsewhere."""

    type: Literal["onnx_batched"]
    model: Path = Field(description="The .onnx weights file (relative to the cameras file).")
    device: str = Field(
        default="auto", pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$", description="auto, cpu, cuda:N."
    )
    batch: int = Field(
        default=16, ge=1, le=256, description="Most queued jobs taken into one inference call."
    )
    iou: float = Field(default=0.45, gt=0, le=1, description="NMS overlap threshold.")
    min_confidence: float = Field(default=0.1, ge=0, le=1, description="Lowest score decoded.")


DetectorConfig = Annotated[
    NoDetectorConfig | OnnxDetectorConfig | BatchedOnnxDetectorConfig | UltralyticsDetectorConfig,
    Field(discriminator="type"),
]


def resolve_model(model: Path, base: Path) -> Path:
    """A weights path from the cameras file: relative ones are relative to ``base``."""
    return model if model.is_absolute() else base / model
