"""``iotmon-edge``: run the agent, or check its config without starting it.

    iotmon-edge run [--config edge.yaml]
    iotmon-edge config check edge.yaml

argparse rather than typer keeps the Raspberry Pi install small.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from iotmon_edge.agent import build_agent, default_client_id
from iotmon_edge.config import ConfigError, Settings, load_agent_config
from iotmon_edge.secrets import describe_settings_error

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iotmon-edge",
        description="iotmon edge agent: read device drivers and publish over MQTT. "
        "Broker settings come from IOTMON_EDGE_* environment variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="run the agent until SIGINT/SIGTERM")
    run_cmd.add_argument(
        "--config", type=Path, help="agent YAML (default: IOTMON_EDGE_CONFIG_FILE or edge.yaml)"
    )
    config_cmd = commands.add_parser("config", help="configuration commands")
    config_commands = config_cmd.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate an agent YAML and exit")
    check.add_argument("path", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        _error(f"bad IOTMON_EDGE_* environment:\n{describe_settings_error(exc, Settings)}")
        return EXIT_BAD_CONFIG
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "config":
        return _check(args.path)
    return _run(settings, args.config or settings.config_file)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


def _check(path: Path) -> int:
    try:
        config = load_agent_config(path)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_BAD_CONFIG
    sys.stdout.write(
        f"{path}: OK (tenant {config.tenant}, agent {config.agent_id}, "
        f"{len(config.drivers)} driver(s), {config.device_count()} device(s), "
        f"{config.mode.value} mode every {config.publish_interval_s}s)\n"
    )
    return EXIT_OK


def _run(settings: Settings, path: Path) -> int:
    try:
        config = load_agent_config(path)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_BAD_CONFIG
    agent = build_agent(config, settings.mqtt_options(default_client_id(config)))
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    agent.start()
    # Short waits keep the main thread responsive to signals.
    while not stop.is_set() and not agent.wait(0.5):
        pass
    agent.stop()
    if agent.failure is not None:
        _error(agent.failure)
        return EXIT_FAILED
    return EXIT_OK


def _error(message: str) -> None:
    sys.stderr.write(f"iotmon-edge: {message}\n")
