"""Process settings of the video service: one ``VideoSettings`` built in ``main()``.

Environment variables use the prefix ``IOTMON_VIDEO_`` and ``__`` for nesting, e.g.
``IOTMON_VIDEO_MQTT__HOST``. The cameras, their analytics and the detector are user
YAML (``IOTMON_VIDEO_CAMERAS_FILE``, see ``cameras.py``).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from iotmon_contract.events import MEDIA_URL_PATTERN
from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_runtime.metrics import MetricsSettings
from iotmon_runtime.mqtt import MqttSettings
from iotmon_runtime.settings import ServiceSettings

SERVICE_NAME = "video"


def default_instance_id() -> str:
    """The host name squeezed into a contract identifier: stable across restarts of one host."""
    cleaned = re.sub(r"[^a-z0-9_.-]", "-", socket.gethostname().lower()).strip("-._")
    return (cleaned or "video")[:48]


class VideoMetricsSettings(MetricsSettings):
    """The video service's /metrics (its media server serves only media)."""

    port: int = Field(
        default=9104,
        ge=0,
        le=65535,
        description="TCP port of /metrics; 0 picks a free one. A port that is taken stops "
        "the service at start.",
    )


class VideoSettings(ServiceSettings):
    """Everything one video process needs besides its cameras file."""

    model_config = SettingsConfigDict(env_prefix="IOTMON_VIDEO_")
    service_name: ClassVar[str] = "iotmon-video"

    instance_id: str = Field(
        default_factory=default_instance_id,
        pattern=IDENTIFIER_PATTERN,
        description="Names this process: client id, availability topic and logs derive from it.",
    )
    cameras_file: Path = Field(
        default=Path("video.yaml"), description="YAML of the cameras, analytics and detector."
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="How to reach the broker.")
    media_dir: Path = Field(
        default=Path(".state/video/media"),
        description="Where snapshots and clips are stored (one folder per camera).",
    )
    http_host: str = Field(default="127.0.0.1", description="Address the media server binds.")
    http_port: int = Field(
        default=8090, ge=0, le=65535, description="Media server port; 0 picks a free one."
    )
    public_url: str | None = Field(
        default=None,
        pattern=MEDIA_URL_PATTERN,
        max_length=512,
        description="Base URL of the media server as viewers reach it (behind a proxy, "
        "in compose); default http://<http_host>:<port>.",
    )
    media_retention_s: float = Field(
        default=7 * 86_400.0, gt=0, description="Snapshots and clips older than this are deleted."
    )
    media_max_bytes: int = Field(
        default=2 * 1024**3,
        ge=1024 * 1024,
        description="Most bytes of media kept; the oldest files go first above it.",
    )
    metrics: VideoMetricsSettings = Field(
        default_factory=VideoMetricsSettings,
        description="Prometheus metrics on http://<host>:<port>/metrics (docs/metrics.md).",
    )
    metrics_interval_s: float = Field(
        default=10.0, gt=0, le=3600, description="How often each camera's metrics are published."
    )

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"iotmon-video-{self.instance_id}"


Settings = VideoSettings
"""Every service's config module names its settings class ``Settings``."""
