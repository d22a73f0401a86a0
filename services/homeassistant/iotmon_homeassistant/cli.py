"""``iotmon-homeassistant``: run the Home Assistant bridge, or check its settings.

    iotmon-homeassistant run
    iotmon-homeassistant config check
    iotmon-homeassistant --version

Settings come from ``IOTMON_HOMEASSISTANT_*`` variables (``…_MQTT__HOST``, ``…_TENANT``…).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from iotmon_homeassistant.bridge import HomeAssistantBridge
from iotmon_homeassistant.config import Settings
from iotmon_runtime.cli import load_settings, service_parser
from iotmon_runtime.log import configure_logging
from iotmon_runtime.workers import EXIT_BAD_CONFIG, EXIT_OK, install_stop_signals

PROGRAM = "iotmon-homeassistant"


def parser() -> argparse.ArgumentParser:
    root = service_parser(
        PROGRAM,
        "iotmon-homeassistant",
        "Home Assistant MQTT discovery for the registry's devices: a retained config and a "
        "state topic per device and metric. Settings come from IOTMON_HOMEASSISTANT_*.",
    )
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run until SIGINT/SIGTERM")
    config_cmd = commands.add_parser("config", help="configuration commands")
    config_commands = config_cmd.add_subparsers(dest="config_command", required=True)
    config_commands.add_parser("check", help="validate the IOTMON_HOMEASSISTANT_* environment")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = load_settings(PROGRAM, Settings)
    if settings is None:
        return EXIT_BAD_CONFIG
    if args.command == "config":
        sys.stdout.write(f"{PROGRAM}: settings OK ({Settings.env_prefix()}*)\n")
        return EXIT_OK
    configure_logging(settings.log_level, settings.log_format, service=PROGRAM)
    stop_event = threading.Event()
    install_stop_signals(stop_event)
    return HomeAssistantBridge(settings, stop_event).run()


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
