"""``iotmon-ingest``: run the ingest service, or check its settings without starting.

    iotmon-ingest run [--workers N] [--log-level LEVEL]
    iotmon-ingest config check
    iotmon-ingest health
    iotmon-ingest --version

Settings come from ``IOTMON_INGEST_*`` variables (``IOTMON_INGEST_MQTT__HOST``…).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from iotmon_ingest.config import IngestSettings
from iotmon_ingest.health import HealthUnreadable, judge, read_health
from iotmon_ingest.main import run_ingest
from iotmon_ingest.registry import RegistryError, load_registry
from iotmon_runtime.cli import error, load_settings, service_parser
from iotmon_runtime.log import configure_logging
from iotmon_runtime.workers import EXIT_BAD_CONFIG, EXIT_FAILED, EXIT_OK

PROGRAM = "iotmon-ingest"
EXIT_UNHEALTHY = EXIT_FAILED


def parser() -> argparse.ArgumentParser:
    root = service_parser(
        PROGRAM,
        "iotmon-ingest",
        "iotmon ingest: MQTT telemetry and status, validated, written to the time-series "
        "store and acknowledged after the write. Settings come from IOTMON_INGEST_*.",
    )
    commands = root.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="run until SIGINT/SIGTERM")
    run_cmd.add_argument(
        "--workers", "-w", type=int, help="worker processes (default IOTMON_INGEST_WORKERS or 1)"
    )
    run_cmd.add_argument(
        "--log-level", help="DEBUG, INFO, WARNING… (default IOTMON_INGEST_LOG_LEVEL)"
    )
    config_cmd = commands.add_parser("config", help="configuration commands")
    config_commands = config_cmd.add_subparsers(dest="config_command", required=True)
    config_commands.add_parser(
        "check", help="validate the IOTMON_INGEST_* environment and the device registry"
    )
    commands.add_parser(
        "health",
        help="read the running ingest's health file(s): exit 0 when ok or degraded but "
        "taking messages, 1 when intake is paused, the file is stale or missing",
    )
    return root


def health(settings: IngestSettings) -> int:
    """Judge every worker's health file; one line each on stdout."""
    healthy = True
    now = time.time()
    for path in settings.health_files():
        try:
            verdict = judge(read_health(path), now)
        except HealthUnreadable as exc:
            sys.stdout.write(f"{PROGRAM}: unhealthy: {exc}\n")
            healthy = False
            continue
        sys.stdout.write(f"{PROGRAM}: {'healthy' if verdict.healthy else 'unhealthy'}: ")
        sys.stdout.write(f"{verdict.summary}\n")
        healthy = healthy and verdict.healthy
    return EXIT_OK if healthy else EXIT_UNHEALTHY


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.command == "run":
        if args.workers is not None:
            overrides["workers"] = args.workers
        if args.log_level is not None:
            overrides["log_level"] = args.log_level
    settings = load_settings(PROGRAM, IngestSettings, **overrides)
    if settings is None:
        return EXIT_BAD_CONFIG
    if args.command == "health":
        return health(settings)
    try:
        if settings.device_registry:
            load_registry(settings.device_registry)
    except RegistryError as exc:
        error(PROGRAM, f"invalid device registry:\n{exc}")
        return EXIT_BAD_CONFIG
    if args.command == "config":
        sys.stdout.write(f"{PROGRAM}: settings OK ({IngestSettings.env_prefix()}*)\n")
        return EXIT_OK
    configure_logging(settings.log_level, settings.log_format, service=PROGRAM)
    return run_ingest(settings)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
