"""Many cameras' frames in one inference call, with letterbox, normalisation and NMS
on the GPU (torch), and the CPU only decoding.

Where there is no GPU (``device: auto`` on a CPU machine, as in CI) the same code runs
on torch's CPU tensors: the path is the same, only slower. Needs the ``gpu`` extra
(torch). The model runs in onnxruntime: on CUDA its input and output stay on the
device (I/O binding to torch tensors); a model exported with a static batch of 1 is
run once per image inside the batch (pre- and post-processing stay batched), so
export with ``dynamic=True`` (or ``batch=N``) for one call per batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

from iotmon_video.detectors.base import Detection, Detector, DetectorUnavailable, Image
from iotmon_video.detectors.config import BatchedOnnxDetectorConfig, resolve_model
from iotmon_video.detectors.yolo import PAD_VALUE, names_from_metadata

logger = logging.getLogger(__name__)

CLASS_OFFSET = 8192.0


def resolve_device(wanted: str) -> torch.device:
    """``auto``: the first CUDA device when there is one, else the CPU. A CUDA device
    asked for on a machine without one falls back to the CPU with a warning."""
    if wanted == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    device = torch.device(wanted)
    if device.type == "cuda" and not torch.cuda.is_available():
        logger.warning("%s asked for but no CUDA device is available: running on the CPU", wanted)
        return torch.device("cpu")
    return device


def letterbox_batch(
    images: Sequence[Image], size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """BGR uint8 frames (any sizes) → an N x 3 x size x size float RGB batch in 0..1 on
    ``device``, and per image (scale, pad_x, pad_y) to map boxes back."""
    batch = torch.full((len(images), 3, size, size), PAD_VALUE / 255.0, device=device)
    geometry = torch.empty((len(images), 3), dtype=torch.float32)
    for index, image in enumerate(images):
        height, width = image.shape[:2]
        scale = min(size / height, size / width)
        new_w, new_h = round(width * scale), round(height * scale)
        left, top = round((size - new_w) / 2 - 0.1), round((size - new_h) / 2 - 0.1)
        # Upload as uint8 (a quarter of float32's bytes), then convert on the device.
        tensor = torch.from_numpy(np.ascontiguousarray(image)).to(device, non_blocking=True)
        chw = tensor.permute(2, 0, 1).flip(0).unsqueeze(0).float().div_(255.0)
        resized = F.interpolate(chw, size=(new_h, new_w), mode="bilinear", align_corners=False)
        batch[index, :, top : top + new_h, left : left + new_w] = resized[0]
        geometry[index] = torch.tensor([scale, left, top])
    return batch, geometry


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """Greedy non-maximum suppression in plain torch (no torchvision op needed):
    indices kept, best score first."""
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    ix1 = torch.maximum(x1[:, None], x1[None, :])
    iy1 = torch.maximum(y1[:, None], y1[None, :])
    ix2 = torch.minimum(x2[:, None], x2[None, :])
    iy2 = torch.minimum(y2[:, None], y2[None, :])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    overlap = inter / (areas[:, None] + areas[None, :] - inter).clamp(min=1e-9)
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    # The loop is over survivors only; candidates are capped (max_candidates) upstream.
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlap[i] > iou
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


def postprocess(
    output: torch.Tensor,
    geometry: torch.Tensor,
    shapes: Sequence[tuple[int, int]],
    min_confidence: float,
    iou: float,
    max_candidates: int = 1000,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """A batch's ``[N, 4 + classes, anchors]`` output to per-image (xyxy in image pixels,
    scores, classes) after class-wise NMS, all on the output's device."""
    found = []
    rows = output.transpose(1, 2)  # N x anchors x (4 + classes)
    scores, classes = rows[..., 4:].max(dim=2)
    for index in range(rows.shape[0]):
        mask = scores[index] >= min_confidence
        score, cls, box = scores[index][mask], classes[index][mask], rows[index, mask, :4]
        if score.numel() > max_candidates:
            top = score.topk(max_candidates).indices
            score, cls, box = score[top], cls[top], box[top]
        xyxy = torch.cat([box[:, :2] - box[:, 2:] / 2, box[:, :2] + box[:, 2:] / 2], dim=1)
        scale, pad_x, pad_y = (float(v) for v in geometry[index])
        xyxy = (xyxy - torch.tensor([pad_x, pad_y, pad_x, pad_y], device=xyxy.device)) / scale
        height, width = shapes[index]
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clamp(0, width)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clamp(0, height)
        if score.numel() == 0:
            found.append((xyxy, score, cls))
            continue
        kept = nms(xyxy + cls[:, None].float() * CLASS_OFFSET, score, iou)
        found.append((xyxy[kept], score[kept], cls[kept]))
    return found


class BatchedOnnxDetector(Detector):
    name = "onnx_batched"

    def __init__(
        self,
        session: ort.InferenceSession,
        config: BatchedOnnxDetectorConfig,
        labels: list[str],
        device: torch.device,
    ) -> None:
        self._session = session
        self._config = config
        self._labels = labels
        self._device = device
        model_input = session.get_inputs()[0]
        self._input_name = model_input.name
        self._output_name = session.get_outputs()[0].name
        shape = model_input.shape
        self._size = shape[2] if isinstance(shape[2], int) else 640
        self._static_batch = shape[0] if isinstance(shape[0], int) else None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, config: BatchedOnnxDetectorConfig, base: Path) -> BatchedOnnxDetector:
        path = resolve_model(config.model, base)
        device = resolve_device(config.device)
        providers: list[Any] = ["CPUExecutionProvider"]
        if device.type == "cuda":
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
        try:
            session = ort.InferenceSession(str(path), providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise DetectorUnavailable(f"cannot load {path}: {exc}") from None
        labels = names_from_metadata(session.get_modelmeta().custom_metadata_map) or []
        return cls(session, config, labels, device)

    @property
    def labels(self) -> Sequence[str]:
        return self._labels

    @property
    def device(self) -> torch.device:
        return self._device

    def detect(self, image: Image) -> list[Detection]:
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[Image]) -> list[list[Detection]]:
        if not images:
            return []
        with torch.inference_mode():
            batch, geometry = letterbox_batch(images, self._size, self._device)
            with self._lock:
                output = self._infer(batch)
            results = postprocess(
                output,
                geometry,
                [image.shape[:2] for image in images],
                self._config.min_confidence,
                self._config.iou,
            )
        found = []
        for boxes, scores, classes in results:
            rows = torch.cat([boxes, scores[:, None], classes[:, None].float()], dim=1).cpu()
            found.append(
                [
                    Detection(
                        self._label(int(c)), float(s), float(x1), float(y1), float(x2), float(y2)
                    )
                    for x1, y1, x2, y2, s, c in rows.tolist()
                ]
            )
        return found

    def _label(self, index: int) -> str:
        return self._labels[index] if index < len(self._labels) else f"class_{index}"

    def _infer(self, batch: torch.Tensor) -> torch.Tensor:
        step = self._static_batch or batch.shape[0]
        outputs = []
        for start in range(0, batch.shape[0], step):
            chunk = batch[start : start + step].contiguous()
            if self._device.type == "cuda":
                outputs.append(self._infer_on_device(chunk))
            else:
                (out,) = self._session.run([self._output_name], {self._input_name: chunk.numpy()})
                outputs.append(torch.from_numpy(out))
        return torch.cat(outputs)

    def _infer_on_device(self, chunk: torch.Tensor) -> torch.Tensor:
        """Input and output stay in GPU memory: onnxruntime reads and writes torch's buffers.
        Not run in CI (no GPU there); the CPU branch above is what the tests exercise."""
        declared = self._session.get_outputs()[0].shape
        out = torch.empty(
            [chunk.shape[0], *(int(d) for d in declared[1:])],
            dtype=torch.float32,
            device=chunk.device,
        )
        binding = self._session.io_binding()
        index = chunk.device.index or 0
        binding.bind_input(
            self._input_name, "cuda", index, np.float32, list(chunk.shape), chunk.data_ptr()
        )
        binding.bind_output(
            self._output_name, "cuda", index, np.float32, list(out.shape), out.data_ptr()
        )
        self._session.run_with_iobinding(binding)
        return out
