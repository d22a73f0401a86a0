"""The detector interface: an image in, labelled boxes out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

Image = npt.NDArray[Any]
"""A BGR frame, height x width x 3, as OpenCV decodes it."""


class DetectorUnavailable(RuntimeError):
    """The detector cannot run (weights missing, a runtime not installed); the message says
    what to do. The service then runs motion-only."""


@dataclass(frozen=True, slots=True)
class Detection:
    """One object, in pixels of the image it was found in."""

    label: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float

    def shifted(self, dx: float, dy: float) -> Detection:
        return Detection(
            self.label, self.confidence, self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy
        )


class Detector(ABC):
    """Finds objects in images. Implementations are thread-safe: cameras share one."""

    name: str = "detector"

    @property
    @abstractmethod
    def labels(self) -> Sequence[str]:
        """Every class the model knows, by class index."""

    @abstractmethod
    def detect(self, image: Image) -> list[Detection]:
        """Objects in one BGR image, best first."""

    def detect_many(self, images: Sequence[Image]) -> list[list[Detection]]:
        """Objects in several images; batched where the backend can."""
        return [self.detect(image) for image in images]

    def close(self) -> None:  # noqa: B027 - optional hook, most detectors hold nothing
        """Release what the detector holds."""
