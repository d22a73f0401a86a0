"""``iotmon-alerts``: run the alert service, or check its settings and rule files.

    iotmon-alerts run [--log-level LEVEL]
    iotmon-alerts config check [--rules DIR]
    iotmon-alerts --version

Settings come from ``IOTMON_ALERTS_*`` variables; rules from ``IOTMON_ALERTS_RULES_DIR``
(one ``<tenant>.yaml`` each). SIGHUP reloads the rule files at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iotmon_alerts.adapters.database import DatabaseUnavailable
from iotmon_alerts.config import AlertsSettings
from iotmon_alerts.rules_loader import load_all
from iotmon_alerts.service import AlertService, default_bus_factory
from iotmon_runtime.cli import error, load_settings, service_parser
from iotmon_runtime.config_files import ConfigError
from iotmon_runtime.log import configure_logging
from iotmon_runtime.metrics import MetricsServerError
from iotmon_runtime.workers import EXIT_BAD_CONFIG, EXIT_FAILED, EXIT_OK, install_stop_signals

PROGRAM = "iotmon-alerts"


def parser() -> argparse.ArgumentParser:
    root = service_parser(
        PROGRAM,
        "iotmon-alerts",
        "iotmon alerts: rules on the MQTT stream, alert lifecycle in SQL, signed webhooks. "
        "Settings come from IOTMON_ALERTS_*.",
    )
    commands = root.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="run until SIGINT/SIGTERM (SIGHUP: reload rules)")
    run_cmd.add_argument(
        "--log-level", help="DEBUG, INFO, WARNING… (default IOTMON_ALERTS_LOG_LEVEL)"
    )
    config_cmd = commands.add_parser("config", help="configuration commands")
    config_commands = config_cmd.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser(
        "check", help="validate the IOTMON_ALERTS_* environment and every rule file"
    )
    check.add_argument("--rules", type=Path, help="rules folder (default IOTMON_ALERTS_RULES_DIR)")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.command == "run" and args.log_level is not None:
        overrides["log_level"] = args.log_level
    if args.command == "config" and args.rules is not None:
        overrides["rules_dir"] = args.rules
    settings = load_settings(PROGRAM, AlertsSettings, **overrides)
    if settings is None:
        return EXIT_BAD_CONFIG
    try:
        loaded = load_all(settings.rules_dir, default_bus_factory())
    except ConfigError as exc:
        error(PROGRAM, f"invalid rule files:\n{exc}")
        return EXIT_BAD_CONFIG
    if args.command == "config":
        rules = sum(len(r.file.rules) for r in loaded)
        sys.stdout.write(
            f"{PROGRAM}: settings OK ({AlertsSettings.env_prefix()}*); "
            f"{len(loaded)} rule file(s), {rules} rule(s) in {settings.rules_dir}\n"
        )
        return EXIT_OK
    configure_logging(settings.log_level, settings.log_format, service=PROGRAM)
    stop_event = threading.Event()
    install_stop_signals(stop_event)
    service = AlertService(settings, stop_event)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda _s, _f: service.request_reload())
    try:
        return service.run()
    except (ConfigError, DatabaseUnavailable, MetricsServerError) as exc:
        error(PROGRAM, str(exc))
        return EXIT_FAILED if isinstance(exc, DatabaseUnavailable) else EXIT_BAD_CONFIG


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
