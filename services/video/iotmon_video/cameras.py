"""The cameras file: sources, motion, detection, tracking and analytics per camera.

User YAML validated into these models (``load_cameras``); a bad file fails with the
file, the key path and the line. Coordinates are fractions of the frame (0..1, origin
top-left), so a zone survives a change of resolution.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from iotmon_contract.events import LABEL_PATTERN
from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_runtime.config_files import load_yaml_model
from iotmon_video.detectors.config import DetectorConfig, NoDetectorConfig

Name = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
Label = Annotated[str, Field(pattern=LABEL_PATTERN)]
Coordinate = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Point = tuple[Coordinate, Coordinate]
Polygon = Annotated[list[Point], Field(min_length=3, max_length=64)]

DEFAULT_LABELS = ["person", "bicycle", "car", "motorcycle", "bus", "truck"]


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSource(ConfigModel):
    """A video file, played as a camera would deliver it (or as fast as it can be read)."""

    type: Literal["file"]
    path: Path = Field(description="Video file (anything FFmpeg reads).")
    realtime: bool = Field(
        default=True,
        description="Deliver frames at the file's frame rate like a live camera (frames are "
        "dropped when processing falls behind); false reads every frame, for recorded footage.",
    )
    loop: bool = Field(default=False, description="Start again at the end of the file.")
    fps: float | None = Field(
        default=None, gt=0, le=240, description="Frame rate of the file when its header lies."
    )


class StreamSource(ConfigModel):
    """A network stream: RTSP, HTTP (MJPEG) or anything else FFmpeg opens by URL."""

    type: Literal["stream"]
    url: str = Field(min_length=1, max_length=2048, description="rtsp://, http://… URL.")
    open_timeout_s: float = Field(default=10.0, gt=0, le=120, description="Connect timeout.")
    read_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="A read hanging longer counts as stream loss."
    )


class UsbSource(ConfigModel):
    """A local camera through V4L2 (/dev/videoN)."""

    type: Literal["usb"]
    device: int | str = Field(default=0, description="Index N of /dev/videoN, or the path.")
    width: int | None = Field(default=None, ge=16, le=8192, description="Capture width asked.")
    height: int | None = Field(default=None, ge=16, le=8192, description="Capture height asked.")


SourceConfig = Annotated[FileSource | StreamSource | UsbSource, Field(discriminator="type")]


class MotionConfig(ConfigModel):
    """Background subtraction (OpenCV MOG2) on a small grey copy of each frame."""

    enabled: bool = Field(
        default=True, description="False runs the detector on every processed frame."
    )
    frame_height: int = Field(
        default=120, ge=32, le=1080, description="Height of the copy motion is computed on."
    )
    threshold: float = Field(
        default=24.0, gt=0, le=255, description="MOG2 variance threshold: higher, less motion."
    )
    min_area: float = Field(
        default=0.002, gt=0, le=1, description="Smallest moving blob, as a fraction of the frame."
    )
    history: int = Field(default=300, ge=10, le=10_000, description="MOG2 history, frames.")
    warmup_frames: int = Field(
        default=5, ge=0, le=1000, description="First frames that only teach the background."
    )
    masks: list[Polygon] = Field(
        default_factory=list, description="Areas where motion is ignored (trees, clocks, TVs)."
    )


class DetectConfig(ConfigModel):
    """When and what to detect."""

    labels: list[Label] = Field(
        default_factory=lambda: list(DEFAULT_LABELS), description="Classes kept; others dropped."
    )
    min_confidence: float = Field(
        default=0.4,
        ge=0,
        le=1,
        description="Detections at or above this start tracks; lower ones (from 0.1) only "
        "keep existing tracks alive (ByteTrack's second stage).",
    )
    idle_interval_s: float | None = Field(
        default=None,
        gt=0,
        description="Detect at least this often without motion (a person sitting still in a "
        "bus makes no motion); none: only on motion and while objects are tracked.",
    )
    stationary_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="Without motion, tracked objects are looked at again this often (a still "
        "person keeps its track, and can loiter, without a detection on every frame).",
    )
    region_min: int = Field(
        default=320,
        ge=64,
        le=4096,
        description="Smallest square region (pixels) cut around motion for the detector; "
        "the whole frame when motion is larger.",
    )


class TrackConfig(ConfigModel):
    """Tracker (ByteTrack's two-stage association)."""

    match_iou: float = Field(
        default=0.2, gt=0, le=1, description="Least overlap of a track's predicted box."
    )
    min_hits: int = Field(
        default=2, ge=1, le=100, description="Frames a track is seen before it counts."
    )
    max_lost_s: float = Field(
        default=2.0, gt=0, le=600, description="A track not seen this long is dropped."
    )


class Anchor(StrEnum):
    BOTTOM_CENTER = "bottom_center"
    """Feet of a standing person: where it is on the ground plane (zones on the floor)."""
    CENTER = "center"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


_WEEKDAYS = list(Weekday)


class ScheduleConfig(ConfigModel):
    """When a rule is armed: days and a daily window (which may pass midnight)."""

    days: list[Weekday] = Field(
        default_factory=lambda: list(Weekday), min_length=1, description="Days the window opens."
    )
    start: time = Field(description="Window start, local time (e.g. 18:00).")
    end: time = Field(description="Window end, local time (e.g. 06:30; before start: overnight).")
    timezone: str = Field(default="UTC", description="IANA time zone of start and end.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def armed(self, when: datetime) -> bool:
        """Whether ``when`` (aware) falls in the window; an overnight window belongs to the
        day it opened."""
        local = when.astimezone(ZoneInfo(self.timezone))
        now = local.time()
        day = _WEEKDAYS[local.weekday()]
        if self.start <= self.end:
            return day in self.days and self.start <= now < self.end
        if now >= self.start:
            return day in self.days
        if now < self.end:
            return _WEEKDAYS[(local.weekday() - 1) % 7] in self.days
        return False


class IntrusionConfig(ConfigModel):
    """An object entering the zone while armed is an intrusion."""

    labels: list[Label] = Field(default_factory=lambda: ["person"], description="Classes.")
    schedule: ScheduleConfig | None = Field(
        default=None, description="When the rule is armed; none: always."
    )


class ZoneConfig(ConfigModel):
    name: Name = Field(description="Zone name, used in events.")
    polygon: Polygon = Field(description="Corners as [x, y] fractions of the frame.")
    intrusion: IntrusionConfig | None = Field(default=None, description="Intrusion rule.")
    loiter_s: float | None = Field(
        default=None, gt=0, description="Staying longer than this is loitering."
    )
    loiter_labels: list[Label] = Field(
        default_factory=lambda: ["person"], description="Classes loitering applies to."
    )
    crowd_limit: int | None = Field(
        default=None, ge=0, description="More objects than this at once is crowding."
    )
    crowd_label: Label = Field(default="person", description="Class crowding counts.")


class LineConfig(ConfigModel):
    """A counting line: crossing it from its left to its right (facing start→end) is in."""

    name: Name = Field(description="Line name, used in events.")
    start: Point = Field(description="[x, y] of one end.")
    end: Point = Field(description="[x, y] of the other end.")
    labels: list[Label] = Field(default_factory=lambda: ["person"], description="Classes counted.")

    @model_validator(mode="after")
    def _has_length(self) -> Self:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class CabinConfig(ConfigModel):
    """A camera inside a vehicle: people seen while it is parked after a run end."""

    vehicle: Name = Field(description="The vehicle's device id (its run_end events).")
    zone: Name | None = Field(default=None, description="Zone counted; none: whole view.")
    report_interval_s: float = Field(
        default=30.0, gt=0, description="Repeat the count this often while people are seen."
    )
    idle_interval_s: float = Field(
        default=5.0, gt=0, description="While parked, detect at least this often without motion."
    )


class SnapshotConfig(ConfigModel):
    enabled: bool = Field(default=True, description="Store a JPEG per event.")
    blur_people: bool | None = Field(
        default=None, description="Blur people in stored media; default: on for cabin cameras."
    )
    quality: int = Field(default=85, ge=10, le=100, description="JPEG quality.")


class ClipConfig(ConfigModel):
    enabled: bool = Field(default=True, description="Store a short clip per event.")
    pre_s: float = Field(default=2.0, ge=0, le=30, description="Seconds kept before the event.")
    post_s: float = Field(default=3.0, ge=0, le=60, description="Seconds recorded after it.")
    width: int = Field(default=640, ge=64, le=3840, description="Clip width (pixels).")


class CameraConfig(ConfigModel):
    id: Name = Field(description="Camera id: its device id on the wire.")
    source: SourceConfig = Field(description="Where frames come from.")
    fps: float = Field(
        default=5.0, gt=0, le=240, description="Frames processed per second at most."
    )
    reconnect_min_s: float = Field(default=1.0, gt=0, description="First reconnect delay.")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="Longest reconnect delay.")
    anchor: Anchor = Field(
        default=Anchor.BOTTOM_CENTER, description="Point of a box tested against zones and lines."
    )
    motion: MotionConfig = Field(default_factory=MotionConfig, description="Motion gate.")
    detect: DetectConfig = Field(default_factory=DetectConfig, description="Detection.")
    track: TrackConfig = Field(default_factory=TrackConfig, description="Tracking.")
    zones: list[ZoneConfig] = Field(default_factory=list, description="Polygon zones.")
    lines: list[LineConfig] = Field(default_factory=list, description="Counting lines.")
    cabin: CabinConfig | None = Field(default=None, description="Cabin occupancy.")
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig, description="Snapshots.")
    clips: ClipConfig = Field(default_factory=ClipConfig, description="Clips.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        zones = [zone.name for zone in self.zones]
        if len(set(zones)) != len(zones):
            raise ValueError("zone names must be unique within a camera")
        lines = [line.name for line in self.lines]
        if len(set(lines)) != len(lines):
            raise ValueError("line names must be unique within a camera")
        if self.cabin is not None and self.cabin.zone is not None and self.cabin.zone not in zones:
            raise ValueError(f"cabin.zone {self.cabin.zone!r} is not one of the zones")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must not be below reconnect_min_s")
        return self

    @property
    def blur_people(self) -> bool:
        if self.snapshots.blur_people is None:
            return self.cabin is not None
        return self.snapshots.blur_people


class VideoConfig(ConfigModel):
    tenant: Name = Field(description="Tenant the cameras belong to.")
    detector: DetectorConfig = Field(
        default_factory=lambda: NoDetectorConfig(type="none"),
        description="One detector shared by every camera.",
    )
    detector_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Threads running the shared detector (live cameras queue their jobs).",
    )
    cameras: list[CameraConfig] = Field(default_factory=list, description="The cameras.")

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [camera.id for camera in self.cameras]
        if len(set(ids)) != len(ids):
            raise ValueError("camera ids must be unique")
        return self


def load_cameras(path: Path) -> VideoConfig:
    """Read and validate the cameras file; raises ConfigError naming file, key and line."""
    return load_yaml_model(path, VideoConfig)
