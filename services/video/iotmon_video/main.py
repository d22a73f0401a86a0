"""What ``iotmon-video run`` does: load the cameras and the detector, run until a signal."""

from __future__ import annotations

import threading

from iotmon_runtime.cli import error
from iotmon_runtime.config_files import ConfigError
from iotmon_runtime.metrics import MetricsServerError
from iotmon_runtime.workers import EXIT_BAD_CONFIG, install_stop_signals
from iotmon_video.cameras import VideoConfig, load_cameras
from iotmon_video.config import VideoSettings
from iotmon_video.service import VideoService, load_detector, with_paths_from


def load_config(settings: VideoSettings) -> VideoConfig:
    """The cameras file with its relative paths resolved; raises ConfigError."""
    path = settings.cameras_file
    return with_paths_from(load_cameras(path), path.resolve().parent)


def run_video(settings: VideoSettings) -> int:
    try:
        config = load_config(settings)
    except ConfigError:
        return EXIT_BAD_CONFIG
    stop_event = threading.Event()
    install_stop_signals(stop_event)
    try:
        return VideoService(settings, config, stop_event, load_detector(config)).run()
    except MetricsServerError as exc:
        error("iotmon-video", str(exc))
        return EXIT_BAD_CONFIG
