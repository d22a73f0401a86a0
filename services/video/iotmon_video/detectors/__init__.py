"""Object detectors behind one small interface, chosen by ``type`` in the cameras file.

Frigate's shape: an ABC (``base.Detector``), a registry of plugins and a pydantic
union of their configurations keyed on ``type`` (``config.DetectorConfig``).
"""

from iotmon_video.detectors.base import Detection, Detector, DetectorUnavailable
from iotmon_video.detectors.registry import create_detector

__all__ = ["Detection", "Detector", "DetectorUnavailable", "create_detector"]
