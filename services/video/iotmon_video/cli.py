"""``iotmon-video``: run the video service, check its configuration, or benchmark it.

    iotmon-video run [--log-level LEVEL]
    iotmon-video config check
    iotmon-video bench [--seconds S] [--weights FILE] …
    iotmon-video --version

Settings come from ``IOTMON_VIDEO_*`` variables; cameras from IOTMON_VIDEO_CAMERAS_FILE.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from iotmon_runtime.cli import error, load_settings, service_parser
from iotmon_runtime.config_files import ConfigError
from iotmon_runtime.log import configure_logging
from iotmon_runtime.workers import EXIT_BAD_CONFIG, EXIT_OK
from iotmon_video.config import VideoSettings
from iotmon_video.detectors.config import NoDetectorConfig, resolve_model
from iotmon_video.main import load_config, run_video

PROGRAM = "iotmon-video"


def parser() -> argparse.ArgumentParser:
    root = service_parser(
        PROGRAM,
        "iotmon-video",
        "iotmon video: motion-gated detection, tracking and zone/line analytics per camera, "
        "published as contract events. Settings come from IOTMON_VIDEO_*.",
    )
    commands = root.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="run until SIGINT/SIGTERM")
    run_cmd.add_argument(
        "--log-level", help="DEBUG, INFO, WARNING… (default IOTMON_VIDEO_LOG_LEVEL)"
    )
    config_cmd = commands.add_parser("config", help="configuration commands")
    config_commands = config_cmd.add_subparsers(dest="config_command", required=True)
    config_commands.add_parser(
        "check", help="validate the IOTMON_VIDEO_* environment and the cameras file"
    )
    bench_cmd = commands.add_parser("bench", help="CPU benchmark: cameras sustained (see docs)")
    from iotmon_video.bench import add_arguments

    add_arguments(bench_cmd)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "bench":
        from iotmon_video.bench import run_bench

        return run_bench(args)
    overrides: dict[str, Any] = {}
    if args.command == "run" and args.log_level is not None:
        overrides["log_level"] = args.log_level
    settings = load_settings(PROGRAM, VideoSettings, **overrides)
    if settings is None:
        return EXIT_BAD_CONFIG
    try:
        config = load_config(settings)
    except ConfigError as exc:
        error(PROGRAM, f"invalid cameras file:\n{exc}")
        return EXIT_BAD_CONFIG
    if args.command == "config":
        detector = config.detector
        if not isinstance(detector, NoDetectorConfig):
            weights = resolve_model(detector.model, settings.cameras_file.parent)
            if not weights.exists():
                sys.stdout.write(
                    f"{PROGRAM}: weights {weights} not found: the service would run motion-only\n"
                )
        sys.stdout.write(
            f"{PROGRAM}: settings OK ({VideoSettings.env_prefix()}*), "
            f"{len(config.cameras)} camera(s)\n"
        )
        return EXIT_OK
    configure_logging(settings.log_level, settings.log_format, service=PROGRAM)
    return run_video(settings)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
