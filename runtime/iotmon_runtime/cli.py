"""What every service CLI shares: ``--version``, settings errors and exit codes.

argparse rather than typer: the edge agent's install on a Raspberry Pi stays small.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TypeVar

from iotmon_runtime.settings import ServiceSettings, SettingsError
from iotmon_runtime.version import version_line
from iotmon_runtime.workers import EXIT_BAD_CONFIG

S = TypeVar("S", bound=ServiceSettings)


def service_parser(program: str, distribution: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=program, description=description)
    parser.add_argument("--version", action="version", version=version_line(program, distribution))
    return parser


def error(program: str, message: str) -> None:
    sys.stderr.write(f"{program}: {message}\n")


def load_settings(program: str, settings: type[S], **overrides: Any) -> S | None:
    """Settings from the environment, or None after printing every problem with its variable."""
    try:
        return settings.from_environment(**overrides)
    except SettingsError as exc:
        lines = "\n".join(f"  {problem}" for problem in exc.problems)
        error(program, f"invalid settings ({settings.env_prefix()}*):\n{lines}")
        return None


__all__ = ["EXIT_BAD_CONFIG", "error", "load_settings", "service_parser"]
