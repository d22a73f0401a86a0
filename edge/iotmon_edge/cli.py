"""``iotmon-edge``: run the agent, or check its config without starting it.

    iotmon-edge run [--config edge.yaml]
    iotmon-edge config check edge.yaml
    iotmon-edge --version

Broker settings come from ``IOTMON_EDGE_*`` variables (``IOTMON_EDGE_MQTT__HOST``…).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from iotmon_edge.agent import agent_mqtt_settings, build_agent
from iotmon_edge.checks import deployment_problems, describe
from iotmon_edge.config import AgentConfig, ConfigError, Settings, load_agent_config
from iotmon_edge.watchdog import SystemdNotifier
from iotmon_runtime.cli import error, load_settings, service_parser
from iotmon_runtime.log import configure_logging
from iotmon_runtime.workers import (
    EXIT_BAD_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    install_stop_signals,
)

PROGRAM = "iotmon-edge"


def parser() -> argparse.ArgumentParser:
    parser = service_parser(
        PROGRAM,
        "iotmon-edge",
        "iotmon edge agent: read device drivers and publish over MQTT. "
        "Broker settings come from IOTMON_EDGE_* environment variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="run the agent until SIGINT/SIGTERM")
    run_cmd.add_argument(
        "--config", type=Path, help="agent YAML (default: IOTMON_EDGE_CONFIG_FILE or edge.yaml)"
    )
    config_cmd = commands.add_parser("config", help="configuration commands")
    config_commands = config_cmd.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser(
        "check", help="validate an agent YAML and the IOTMON_EDGE_* environment, then exit"
    )
    check.add_argument("path", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = load_settings(PROGRAM, Settings)
    if settings is None:
        return EXIT_BAD_CONFIG
    configure_logging(settings.log_level, settings.log_format, service=PROGRAM)
    if args.command == "config":
        return _check(settings, args.path)
    return _run(settings, args.config or settings.config_file)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


def _load(settings: Settings, path: Path) -> AgentConfig | None:
    """The agent YAML, checked with what it needs from the machine; None after saying why."""
    try:
        config = load_agent_config(path)
    except ConfigError as exc:
        error(PROGRAM, str(exc))
        return None
    problems = deployment_problems(config, settings, str(path))
    for problem in problems:
        error(PROGRAM, problem)
    return None if problems else config


def _check(settings: Settings, path: Path) -> int:
    config = _load(settings, path)
    if config is None:
        return EXIT_BAD_CONFIG
    bridge = f", Zigbee2MQTT on {config.zigbee2mqtt.base_topic}/#" if config.zigbee2mqtt else ""
    sys.stdout.write(
        f"{path}: OK (tenant {config.tenant}, agent {config.agent_id}, "
        f"{len(config.drivers)} driver(s), {config.device_count()} device(s), "
        f"{config.mode.value} mode every {config.publish_interval_s}s{bridge})\n"
    )
    username = agent_mqtt_settings(config, settings.mqtt).username
    for line in describe(config, settings, username):
        sys.stdout.write(f"  {line}\n")
    return EXIT_OK


def _run(settings: Settings, path: Path) -> int:
    config = _load(settings, path)
    if config is None:
        return EXIT_BAD_CONFIG
    notifier = SystemdNotifier.from_environment()
    agent = build_agent(config, settings.mqtt, notifier=notifier, zigbee2mqtt=settings.zigbee2mqtt)
    stop = threading.Event()
    install_stop_signals(stop)
    agent.start()
    if notifier is not None:
        notifier.ready(f"agent {config.tenant}/{config.agent_id}: {len(agent.device_ids)} devices")
    # Short waits keep the main thread responsive to signals.
    while not stop.is_set() and not agent.wait(0.5):
        pass
    if notifier is not None:
        notifier.stopping()
    agent.stop()
    if agent.failure is not None:
        error(PROGRAM, agent.failure)
        return EXIT_FAILED
    return EXIT_OK
